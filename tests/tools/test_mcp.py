"""MCP servers' tools through the registry, against a real MCP server from the SDK (MCPServer,
once FastMCP) run as a child process over stdio and over streamable HTTP."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from opencode_api.settings import Settings
from opencode_api.tools import (
    McpConfig,
    McpConfigError,
    McpServers,
    McpTimings,
    TodoReadTool,
    ToolRegistry,
    default_registry,
    load_mcp_config,
)
from tests.tools.fakes import FakeContext
from tests.tools.mcp_processes import HTTP_KEY, HttpMcpServer, stdio_config, write_config

# Reconnects come quickly in tests; calls get a generous timeout unless a test is about it.
FAST = McpTimings(
    call_timeout=30.0, connect_timeout=30.0, reconnect_base_delay=0.05, reconnect_max_delay=0.2
)


@asynccontextmanager
async def registry_of(
    servers: dict[str, Any], timings: McpTimings = FAST
) -> AsyncIterator[ToolRegistry]:
    config = McpConfig.model_validate({"mcpServers": servers})
    registry = ToolRegistry([TodoReadTool()], mcp=McpServers(dict(config.servers), timings))
    registry.start()
    try:
        yield registry
    finally:
        await registry.aclose()


def mcp_of(registry: ToolRegistry) -> McpServers:
    assert registry.mcp is not None
    return registry.mcp


def offered(registry: ToolRegistry) -> list[str]:
    return [schema["function"]["name"] for schema in registry.schemas()]


@pytest.fixture
async def http_server() -> AsyncIterator[HttpMcpServer]:
    server = HttpMcpServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(params=["stdio", "http"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """The config of one server named ``srv`` over each transport."""
    if request.param == "stdio":
        yield stdio_config()
        return
    server = HttpMcpServer()
    await server.start()
    try:
        yield server.config()
    finally:
        await server.stop()


async def call(registry: ToolRegistry, name: str, arguments: str = "{}") -> Any:
    return await registry.execute("call_1", name, arguments, FakeContext())


async def test_tools_are_offered_with_their_schemas_and_called(served: dict[str, Any]) -> None:
    async with registry_of({"srv": served}) as registry:
        status = await mcp_of(registry).wait_for("srv", "connected")
        assert "srv_add" in status.tools and "srv_echo" in status.tools
        names = offered(registry)
        assert names[0] == "todoread" and "srv_add" in names  # built-in tools first
        add = next(s for s in registry.schemas() if s["function"]["name"] == "srv_add")
        parameters = add["function"]["parameters"]
        assert parameters["type"] == "object" and set(parameters["properties"]) == {"a", "b"}
        assert add["function"]["description"] == "Add two integers."
        assert "srv_add" in registry and "srv_add" in registry.names

        result = await call(registry, "srv_add", '{"a": 2, "b": 3}')
        assert (result.is_error, result.text, result.arguments) == (False, "5", {"a": 2, "b": 3})
        failed = await call(registry, "srv_fail", '{"reason": "no such row"}')
        assert failed.is_error and "no such row" in failed.text
        # The server validates the arguments against its own schema.
        invalid = await call(registry, "srv_add", '{"a": "two"}')
        assert invalid.is_error


async def test_output_is_capped_like_webfetch(served: dict[str, Any]) -> None:
    async with registry_of({"srv": served}) as registry:
        await mcp_of(registry).wait_for("srv", "connected")
        result = await call(registry, "srv_big", '{"size": 60000}')
        tool = registry.get("srv_big")
        assert tool is not None and tool.max_output_chars == 50_000
        assert not result.is_error
        assert result.text.startswith("x" * 50_000)
        assert result.text.endswith("... (output truncated, 10000 more characters)")


async def test_a_server_that_is_down_offers_nothing_and_calls_are_tool_errors(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "no-such-server")
    async with registry_of({"gone": {"command": missing}, "off": stdio_config(disabled=True)}) as (
        registry
    ):
        status = await mcp_of(registry).wait_for("gone", "failed")
        assert status.status == "failed" and status.tools == []
        assert status.error is not None and "No such file or directory" in status.error
        assert offered(registry) == ["todoread"]
        result = await call(registry, "gone_anything")
        assert result.is_error
        assert result.text.startswith("tool gone_anything is unavailable: MCP server 'gone'")
        off = mcp_of(registry).statuses()[1]
        assert off.to_dict() == {"name": "off", "status": "disabled", "tools": []}


async def test_an_unreachable_http_server_is_failed_without_its_address(
    http_server: HttpMcpServer,
) -> None:
    config = http_server.config()
    await http_server.stop()  # nothing listens on the port any more
    async with registry_of({"web": config}) as registry:
        status = await mcp_of(registry).wait_for("web", "failed")
        assert status.error == "cannot connect"
        shown = str(status.to_dict())
        assert str(http_server.port) not in shown and "127.0.0.1" not in shown


async def test_logs_carry_no_server_address(
    http_server: HttpMcpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with registry_of({"web": http_server.config()}) as registry:
        await mcp_of(registry).wait_for("web", "connected")
        assert (await call(registry, "web_add", '{"a": 1, "b": 2}')).text == "3"
    assert caplog.records  # the SDK logs at debug level: the capture works
    leaked = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not [m for m in leaked if str(http_server.port) in m or HTTP_KEY in m]


async def test_configured_headers_are_sent(http_server: HttpMcpServer) -> None:
    wrong = {"url": http_server.url, "headers": {"X-Test-Key": "wrong"}}
    async with registry_of({"web": http_server.config(), "nokey": wrong}) as registry:
        await mcp_of(registry).wait_for("web", "connected")
        failed = await mcp_of(registry).wait_for("nokey", "failed")
        assert failed.error == "HTTP status 401"
        assert (await call(registry, "web_echo", '{"text": "hi"}')).text == "hi"


async def test_a_call_that_never_answers_times_out_and_the_server_hears_the_cancel(
    served: dict[str, Any],
) -> None:
    timings = McpTimings(call_timeout=2.0, reconnect_base_delay=0.05)
    async with registry_of({"srv": served}, timings) as registry:
        await mcp_of(registry).wait_for("srv", "connected")
        result = await call(registry, "srv_hang")
        assert result.is_error and result.text == "tool srv_hang timed out after 2 s"
        assert (await call(registry, "srv_wait_cancelled")).text == "cancelled"
        # The connection is still good.
        assert (await call(registry, "srv_add", '{"a": 1, "b": 1}')).text == "2"


async def test_cancelling_a_call_cancels_it_on_the_server_at_once(served: dict[str, Any]) -> None:
    async with registry_of({"srv": served}) as registry:
        await mcp_of(registry).wait_for("srv", "connected")
        running = asyncio.create_task(call(registry, "srv_hang"))
        assert (await call(registry, "srv_wait_hanging")).text == "hanging"
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        # Answered only once the server cancelled the hanging call (else: a 30 s timeout).
        result = await call(registry, "srv_wait_cancelled")
        assert (result.is_error, result.text) == (False, "cancelled")


async def test_tools_are_listed_again_when_the_server_says_they_changed(
    served: dict[str, Any],
) -> None:
    async with registry_of({"srv": served}) as registry:
        mcp = mcp_of(registry)
        await mcp.wait_for("srv", "connected")
        assert "srv_extra" not in offered(registry)
        version = mcp.version
        assert (await call(registry, "srv_grow")).text == "grown"
        while "srv_extra" not in mcp.servers["srv"].snapshot().tools:
            await mcp.changed(version)
            version = mcp.version
        assert "srv_extra" in offered(registry)
        assert (await call(registry, "srv_extra")).text == "extra"


async def test_a_stdio_server_that_dies_mid_call_is_restarted() -> None:
    async with registry_of({"srv": stdio_config()}) as registry:
        mcp = mcp_of(registry)
        await mcp.wait_for("srv", "connected")
        first_pid = (await call(registry, "srv_pid")).text
        result = await call(registry, "srv_crash")
        assert result.is_error and result.text == "MCP server 'srv': the connection closed"
        await mcp.wait_for("srv", "connecting")
        status = await mcp.wait_for("srv", "connected")
        assert "srv_add" in status.tools and "srv_add" in offered(registry)
        assert (await call(registry, "srv_pid")).text != first_pid
        assert (await call(registry, "srv_add", '{"a": 2, "b": 2}')).text == "4"


async def test_an_http_server_that_dies_mid_call_is_reconnected_when_it_comes_back(
    http_server: HttpMcpServer,
) -> None:
    async with registry_of({"web": http_server.config()}) as registry:
        mcp = mcp_of(registry)
        await mcp.wait_for("web", "connected")
        result = await call(registry, "web_crash")
        assert result.is_error and result.text == "MCP server 'web': the connection closed"
        await http_server.stop()
        await mcp.wait_for("web", "failed")
        assert "web_add" not in offered(registry)
        down = await call(registry, "web_add", '{"a": 1, "b": 2}')
        assert down.is_error and "unavailable" in down.text
        await http_server.start()  # the same port
        await mcp.wait_for("web", "connected")
        assert "web_add" in offered(registry)
        assert (await call(registry, "web_add", '{"a": 1, "b": 2}')).text == "3"


async def test_close_stops_the_stdio_server_process() -> None:
    async with registry_of({"srv": stdio_config()}) as registry:
        await mcp_of(registry).wait_for("srv", "connected")
        pid = int((await call(registry, "srv_pid")).text)
        os.kill(pid, 0)  # alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# -- MCP_CONFIG ---------------------------------------------------------------------------------


def test_config_file_in_the_mcp_servers_form(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "mcp.json",
        {
            "web": {"url": "https://mcp.example/mcp", "headers": {"Authorization": "Bearer x"}},
            "local": {"command": "npx", "args": ["-y", "server"], "env": {"TOKEN": "t"}},
            "old": {"type": "stdio", "command": "x", "disabled": True, "autoApprove": []},
        },
    )
    config = load_mcp_config(path)
    assert list(config.servers) == ["web", "local", "old"]
    web, local, old = config.servers.values()
    assert web.headers == {"Authorization": "Bearer x"}  # type: ignore[union-attr]
    assert local.args == ["-y", "server"] and local.env == {"TOKEN": "t"}  # type: ignore[union-attr]
    assert old.disabled


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("{}", "mcpServers: Field required"),
        ('{"mcpServers": {"a": {"args": []}}}', 'mcpServers.a: needs "url"'),
        ('{"mcpServers": {"a": {"url": "ftp://x"}}}', "mcpServers.a.url: Value error, must be"),
        ('{"mcpServers": {"a": {"command": ""}}}', "mcpServers.a.command: String should have"),
        ('{"mcpServers": {"a b": {"command": "x"}}}', "mcpServers.a b.[key]: String should match"),
        ('{"mcpServers": {"a": {"url": "http://x", "headers": [1]}}}', "mcpServers.a.headers"),
    ],
    ids=[
        "not-json",
        "no-servers",
        "neither-url-nor-command",
        "bad-scheme",
        "empty-command",
        "bad-name",
        "bad-headers",
    ],
)
def test_a_bad_config_file_names_the_file_and_the_field(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(McpConfigError) as caught:
        load_mcp_config(path)
    message = str(caught.value)
    assert message.startswith(f"MCP_CONFIG {path}: ") and expected in message


def test_a_missing_config_file_fails_start_up(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, mcp_config=str(tmp_path / "absent.json"))  # type: ignore[call-arg]
    registry = default_registry(settings)
    with pytest.raises(McpConfigError, match="cannot read the file"):
        registry.start()


async def test_default_registry_offers_mcp_tools_after_the_built_in_ones(tmp_path: Path) -> None:
    path = write_config(tmp_path / "mcp.json", {"srv": stdio_config()})
    settings = Settings(_env_file=None, mcp_config=str(path), mcp_call_timeout=7)  # type: ignore[call-arg]
    registry = default_registry(settings)
    assert (
        registry.mcp is not None
        and registry.schemas() == default_registry(Settings(_env_file=None)).schemas()
    )  # type: ignore[call-arg]
    registry.start()
    try:
        await registry.mcp.wait_for("srv", "connected")
        tool = registry.get("srv_add")
        assert tool is not None and tool.timeout == 7
        assert offered(registry)[-1].startswith("srv_")
    finally:
        await registry.aclose()


def test_tool_names_are_made_fit_for_models() -> None:
    from opencode_api.tools._mcp_tool import exposed_name

    assert exposed_name("srv", "get.weather now") == "srv_get_weather_now"
    assert exposed_name("srv", "x" * 61) is None  # over 64 characters with the prefix


def test_no_secret_reaches_the_status() -> None:
    config = McpConfig.model_validate(
        {
            "mcpServers": {
                "web": {"url": "https://h.example/mcp", "headers": {"Authorization": HTTP_KEY}},
                "local": {"command": sys.executable, "env": {"TOKEN": HTTP_KEY}, "disabled": True},
            }
        }
    )
    servers = McpServers(dict(config.servers), FAST)
    shown = str([status.to_dict() for status in servers.statuses()])
    assert HTTP_KEY not in shown and "h.example" not in shown and sys.executable not in shown


async def test_closing_stops_a_server_whose_transport_swallows_the_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen under load with a server answering 401: the cancellation of the connection task was
    swallowed inside the transport's teardown, the task went on retrying, and closing hung."""
    from opencode_api.tools import _mcp

    attempts = asyncio.Event()

    async def swallowing(self: _mcp.McpServer) -> None:
        attempts.set()
        try:
            await asyncio.Event().wait()  # connecting, until cancelled
        except asyncio.CancelledError:
            raise RuntimeError("HTTP status 401") from None  # the teardown's own error wins

    monkeypatch.setattr(_mcp.McpServer, "_connect_and_serve", swallowing)
    async with registry_of({"srv": {"url": "http://127.0.0.1:9/mcp"}}):
        await attempts.wait()
    # Leaving the block closed the registry: had the task gone on retrying, this would hang.
