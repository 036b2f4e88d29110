"""Turns that call MCP tools: the Runtime with MCP_CONFIG, the scripted provider over HTTP, and a
real MCP server from the SDK over stdio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from opencode_api.actors import Runtime, TurnEvent
from opencode_api.settings import Settings
from opencode_api.testing import FakeLLMServer, Reply, ToolCall
from opencode_api.tools import McpConfigError, McpServers
from tests.tools.fakes import FakeContext
from tests.tools.mcp_processes import stdio_config, write_config


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(tokens=5) as server:
        yield server


def make_settings(tmp_path: Path, fake: FakeLLMServer, **overrides: Any) -> Settings:
    config = write_config(tmp_path / "mcp.json", {"srv": stdio_config()})
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'opencode.db'}",
        "openai_api_base": fake.base_url,
        "openai_api_key": "sk-test",
        "default_model": "openai/gpt-4o-mini",
        "llm_fast_path": "off",
        "auto_title": False,
        "shutdown_grace": 2.0,
        "mcp_config": str(config),
        "mcp_reconnect_base_delay": 0.05,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def mcp_of(runtime: Runtime) -> McpServers:
    assert runtime.tools.mcp is not None
    return runtime.tools.mcp


async def collect(stream: Any) -> list[TurnEvent]:
    return [event async for event in stream]


async def test_a_turn_calls_an_mcp_tool_and_reads_its_result(
    tmp_path: Path, fake: FakeLLMServer
) -> None:
    fake.enqueue(
        Reply(tool_calls=[ToolCall("srv_add", {"a": 20, "b": 22}, id="call_m", fragments=3)]),
        Reply(text="It is 42."),
    )
    async with Runtime.open(make_settings(tmp_path, fake)) as runtime:
        await mcp_of(runtime).wait_for("srv", "connected")
        session = await runtime.create_session()
        events = await collect(runtime.send(session.id, "add them"))
        assert events[-1].to_dict()["stop_reason"] == "stop"
        result = next(e.to_dict() for e in events if e.type == "tool_result")
        assert (result["tool_call_id"], result["is_error"]) == ("call_m", False)
        # The model was offered the MCP tool with the server's schema, and read its output.
        offered = {t["function"]["name"]: t["function"] for t in fake.requests[0]["tools"]}
        assert set(offered["srv_add"]["parameters"]["properties"]) == {"a", "b"}
        assert fake.requests[1]["messages"][-1] == {
            "role": "tool",
            "tool_call_id": "call_m",
            "content": "42",
        }
        stored = (await runtime.list_messages(session.id)).messages[1]
        part = next(p for p in stored.parts if p.type == "tool_call")
        assert (part.tool_name, part.tool_status, part.tool_output) == (
            "srv_add",
            "completed",
            "42",
        )


async def test_a_call_that_never_answers_times_out_and_the_turn_goes_on(
    tmp_path: Path, fake: FakeLLMServer
) -> None:
    fake.enqueue(Reply(tool_calls=[ToolCall("srv_hang", {}, id="call_h")]), Reply(text="ok"))
    async with Runtime.open(make_settings(tmp_path, fake, mcp_call_timeout=1.0)) as runtime:
        await mcp_of(runtime).wait_for("srv", "connected")
        session = await runtime.create_session()
        events = await collect(runtime.send(session.id, "wait"))
        result = next(e.to_dict() for e in events if e.type == "tool_result")
        assert result["is_error"] and result["text"] == "tool srv_hang timed out after 1 s"
        assert events[-1].to_dict()["stop_reason"] == "stop"
        assert fake.requests[1]["messages"][-1]["content"] == "tool srv_hang timed out after 1 s"


async def test_abort_during_an_mcp_call_cancels_it_at_once(
    tmp_path: Path, fake: FakeLLMServer
) -> None:
    fake.enqueue(Reply(tool_calls=[ToolCall("srv_hang", {}, id="call_h")]))
    async with Runtime.open(make_settings(tmp_path, fake)) as runtime:
        await mcp_of(runtime).wait_for("srv", "connected")
        session = await runtime.create_session()
        events: list[TurnEvent] = []
        async for event in runtime.send(session.id, "wait forever"):
            events.append(event)
            if event.type == "tool_call":
                # The server says when the call is running there; then abort the turn.
                hanging = await runtime.tools.execute("c", "srv_wait_hanging", "{}", FakeContext())
                assert hanging.text == "hanging"
                assert await runtime.abort(session.id) is True
        assert events[-1].to_dict()["stop_reason"] == "aborted"
        # The MCP call was cancelled on the server (else this waits out the 60 s call timeout).
        cancelled = await runtime.tools.execute("c", "srv_wait_cancelled", "{}", FakeContext())
        assert (cancelled.is_error, cancelled.text) == (False, "cancelled")


async def test_a_server_that_is_down_is_not_offered_and_the_turn_goes_on(
    tmp_path: Path, fake: FakeLLMServer
) -> None:
    config = write_config(tmp_path / "down.json", {"gone": {"command": str(tmp_path / "none")}})
    fake.enqueue(Reply(tool_calls=[ToolCall("gone_lookup", {}, id="call_g")]), Reply(text="ok"))
    settings = make_settings(tmp_path, fake, mcp_config=str(config))
    async with Runtime.open(settings) as runtime:
        await mcp_of(runtime).wait_for("gone", "failed")
        session = await runtime.create_session()
        events = await collect(runtime.send(session.id, "look it up"))
        assert all(not t["function"]["name"].startswith("gone_") for t in fake.requests[0]["tools"])
        result = next(e.to_dict() for e in events if e.type == "tool_result")
        assert result["is_error"] and "MCP server 'gone' is down" in result["text"]
        assert events[-1].to_dict()["stop_reason"] == "stop"


async def test_a_bad_config_file_fails_the_runtime_start_up(
    tmp_path: Path, fake: FakeLLMServer
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"mcpServers": {"a": {"url": "ftp://x"}}}', encoding="utf-8")
    settings = make_settings(tmp_path, fake, mcp_config=str(bad))
    with pytest.raises(McpConfigError, match=r"bad.json: mcpServers.a.url: Value error"):
        async with Runtime.open(settings):
            pass
