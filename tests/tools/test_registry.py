"""ToolRegistry: argument parsing, timeouts, errors, output cap, cancellation, schemas."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest
import structlog.testing
from pydantic import BaseModel

from opencode_api.settings import Settings
from opencode_api.tools import (
    Tool,
    ToolContext,
    ToolError,
    ToolOutput,
    ToolRegistry,
    default_registry,
)
from tests.tools.fakes import FakeContext


class EchoParams(BaseModel):
    text: str
    times: int = 1


class EchoTool(Tool[EchoParams]):
    name = "echo"
    description = "Echo the text."
    params = EchoParams
    max_output_chars: ClassVar[int] = 20

    async def run(self, params: EchoParams, ctx: ToolContext) -> ToolOutput:
        return ToolOutput(text=params.text * params.times, title="echoed")


class BlockParams(BaseModel):
    mode: str = "block"


class BlockingTool(Tool[BlockParams]):
    """Waits forever (until cancelled); or fails, depending on ``mode``."""

    name = "block"
    description = "Block."
    params = BlockParams
    timeout: ClassVar[float] = 0.05

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.cancelled = False
        self.closed = False

    async def run(self, params: BlockParams, ctx: ToolContext) -> ToolOutput:
        if params.mode == "tool_error":
            raise ToolError("the page does not exist")
        if params.mode == "crash":
            raise KeyError("boom")
        self.entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def registry() -> ToolRegistry:
    return ToolRegistry([EchoTool(), BlockingTool()])


async def test_runs_a_tool(registry: ToolRegistry, ctx: FakeContext) -> None:
    result = await registry.execute("c1", "echo", '{"text": "hi", "times": 2}', ctx)
    assert (result.tool_call_id, result.name, result.text, result.is_error) == (
        "c1",
        "echo",
        "hihi",
        False,
    )
    assert result.arguments == {"text": "hi", "times": 2}
    assert result.title == "echoed"


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("nope", "{}", "unknown tool 'nope'; available tools: echo, block"),
        ("echo", "{not json", "invalid arguments for tool echo: not valid JSON"),
        ("echo", "[1, 2]", "expected a JSON object, got list"),
        ("echo", "{}", "invalid arguments for tool echo: text: Field required"),
        ("echo", '{"text": "a", "times": "x"}', "times: Input should be a valid integer"),
    ],
    ids=["unknown-tool", "invalid-json", "not-an-object", "missing-field", "wrong-type"],
)
async def test_bad_calls_are_error_results(
    registry: ToolRegistry, ctx: FakeContext, name: str, arguments: str, expected: str
) -> None:
    result = await registry.execute("c1", name, arguments, ctx)
    assert result.is_error
    assert expected in result.text


async def test_empty_arguments_mean_no_parameters(ctx: FakeContext) -> None:
    registry = default_registry(Settings())
    result = await registry.execute("c1", "todoread", "", ctx)
    assert not result.is_error
    assert result.text == "[]"


async def test_timeout(registry: ToolRegistry, ctx: FakeContext) -> None:
    result = await registry.execute("c1", "block", "{}", ctx)
    assert result.is_error
    assert result.text == "tool block timed out after 0.05 s"


async def test_tool_error_is_the_message(registry: ToolRegistry, ctx: FakeContext) -> None:
    result = await registry.execute("c1", "block", '{"mode": "tool_error"}', ctx)
    assert (result.is_error, result.text) == (True, "the page does not exist")


async def test_crash_is_an_internal_error(registry: ToolRegistry, ctx: FakeContext) -> None:
    result = await registry.execute("c1", "block", '{"mode": "crash"}', ctx)
    assert result.is_error
    assert result.text == "internal error in tool block: KeyError: 'boom'"


async def test_output_is_capped(registry: ToolRegistry, ctx: FakeContext) -> None:
    result = await registry.execute("c1", "echo", '{"text": "abcde", "times": 5}', ctx)
    assert not result.is_error
    assert result.text == "abcdeabcdeabcdeabcde\n\n... (output truncated, 5 more characters)"


async def test_cancellation_propagates(registry: ToolRegistry, ctx: FakeContext) -> None:
    tool = registry.get("block")
    assert isinstance(tool, BlockingTool)
    # A long timeout so only the abort can end the call.
    type(tool).timeout = 60.0
    try:
        task = asyncio.create_task(registry.execute("c1", "block", "{}", ctx))
        await tool.entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert tool.cancelled
    finally:
        type(tool).timeout = 0.05


async def test_aclose_closes_every_tool(registry: ToolRegistry) -> None:
    await registry.aclose()
    tool = registry.get("block")
    assert isinstance(tool, BlockingTool) and tool.closed


async def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        ToolRegistry([EchoTool(), EchoTool()])


async def test_default_registry_schemas() -> None:
    registry = default_registry(Settings(_env_file=None))
    try:
        schemas = registry.schemas()
        names = [s["function"]["name"] for s in schemas]
        assert names == ["webfetch", "websearch", "todowrite", "todoread", "question"]
        for schema in schemas:
            assert schema["type"] == "function"
            params = schema["function"]["parameters"]
            assert params["type"] == "object"
            text = repr(params)
            # Self-contained and provider-friendly: no refs, no null alternatives, no titles.
            assert "$ref" not in text and "'null'" not in text and "'title'" not in text
            assert len(schema["function"]["description"]) > 200
        fetch = schemas[0]["function"]["parameters"]
        assert fetch["required"] == ["url"]
        assert fetch["properties"]["format"]["enum"] == ["text", "markdown", "html"]
        question = schemas[4]["function"]["parameters"]["properties"]["questions"]["items"]
        assert question["properties"]["header"]["maxLength"] == 30
    finally:
        await registry.aclose()


async def test_crash_is_logged_with_its_traceback(registry: ToolRegistry, ctx: FakeContext) -> None:
    with structlog.testing.capture_logs() as logs:
        await registry.execute("c9", "block", '{"mode": "crash"}', ctx)
    [entry] = logs
    assert entry["event"] == "tool.internal_error"
    assert (entry["tool"], entry["tool_call_id"], entry["log_level"]) == ("block", "c9", "error")
    assert entry["exc_info"] is True


def test_public_names() -> None:
    import opencode_api.tools as tools

    assert tools.__all__ == sorted(tools.__all__)
    public = {
        name
        for name, value in vars(tools).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith(tools.__name__)
    }
    lazy = set(tools._LAZY)  # the MCP SDK's classes load on first use
    assert public == set(tools.__all__) - {"Lookup", "ToolFactory"} - lazy
    assert all(getattr(tools, name).__name__ == name for name in lazy)
