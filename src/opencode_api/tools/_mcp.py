"""MCP servers from ``MCP_CONFIG``: connected in the background, reconnected with backoff.

Each server's connection lives in one task (the SDK's transports are anyio task groups: entered
and left by the same task). Calls come from turn tasks and go through the connected session; a
cancelled call (an abort, the registry's timeout) sends the server ``notifications/cancelled``.
A server that is down offers no tools; a call that reaches it anyway is a tool error.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import httpx2
import structlog
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from mcp_types import CONNECTION_CLOSED

from opencode_api.settings import Settings
from opencode_api.tools._base import ToolError
from opencode_api.tools._mcp_config import (
    McpHttpServer,
    McpServerConfig,
    McpStdioServer,
    load_mcp_config,
)
from opencode_api.tools._mcp_tool import McpTool, exposed_name

log = structlog.get_logger(__name__)

Status = Literal["connecting", "connected", "failed", "disabled"]
Streams = tuple[Any, Any]


@dataclass(frozen=True, slots=True)
class McpServerStatus:
    """One server as ``GET /mcp`` shows it (never its URL, headers, command or environment)."""

    name: str
    status: Status
    error: str | None = None
    tools: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "status": self.status, "tools": self.tools}
        if self.error is not None:
            data["error"] = self.error
        return data


@dataclass(frozen=True, slots=True)
class McpTimings:
    call_timeout: float = 60.0
    connect_timeout: float = 30.0
    reconnect_base_delay: float = 1.0
    reconnect_max_delay: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Exponential, capped, with jitter: servers that failed together do not retry together."""
        ceiling = min(self.reconnect_max_delay, self.reconnect_base_delay * 2.0 ** min(attempt, 30))
        return ceiling * random.uniform(0.5, 1.0)


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def describe_failure(exc: BaseException) -> str:
    """A reason fit for ``/mcp`` and logs: no URL, host address, header or environment value."""
    exc = _leaf(exc)
    match exc:
        case MCPError() if exc.code == CONNECTION_CLOSED:
            return "the connection closed"
        case MCPError():
            return f"the server answered with an error: {exc.message}"
        case TimeoutError():
            return "no answer in time"
        case httpx2.HTTPStatusError():
            return f"HTTP status {exc.response.status_code}"
        case httpx2.ConnectError() | ConnectionRefusedError():
            return "cannot connect"
        case httpx2.TransportError() | anyio.BrokenResourceError() | anyio.ClosedResourceError():
            return "the connection failed"
        case OSError() if exc.strerror:
            return f"cannot start or reach the server: {exc.strerror}"
        case _:
            return f"the connection failed ({type(exc).__name__})"


async def _relay(source: Any, sink: Any, lost: asyncio.Event) -> None:
    """Pass messages on to the session; the transport's end (EOF: a dead child, a closed
    stream) is how a connection is known to be lost."""
    try:
        async with sink:
            async for item in source:
                await sink.send(item)
    finally:
        lost.set()


class McpServer:
    """One configured server: its connection task, its state and its current tools."""

    def __init__(
        self,
        name: str,
        config: McpServerConfig,
        timings: McpTimings,
        changed: Callable[[], None],
    ) -> None:
        self.name = name
        self.config = config
        self.timings = timings
        self.status: Status = "disabled" if config.disabled else "connecting"
        self.error: str | None = None
        self.tools: list[McpTool] = []
        self._changed = changed
        self._session: ClientSession | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.status != "disabled" and self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mcp-server:{self.name}")

    async def aclose(self) -> None:
        """Stop the connection task; a stdio server's process is stopped by the SDK's transport
        on the way out (bounded: terminate, then kill)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])
        self._session = None

    def snapshot(self) -> McpServerStatus:
        if self.status == "connected":
            return McpServerStatus(self.name, "connected", None, [t.name for t in self.tools])
        if self.status == "disabled":
            return McpServerStatus(self.name, "disabled")
        # Connecting (the first time, or again after a failure): its tools are not offered.
        return McpServerStatus(self.name, "failed", self.error or "not connected yet")

    # -- calls -----------------------------------------------------------------------------

    async def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Call a tool; raises ``ToolError`` when the server is down or the call fails."""
        # This connection's own "lost" event: a late failure of a call on a connection already
        # replaced must not tear down the new one.
        session, lost = self._session, self._lost
        if session is None or self.status != "connected":
            why = self.error or "not connected"
            raise ToolError(f"MCP server {self.name!r} is unavailable: {why}")
        try:
            return await session.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                lost.set()
            raise ToolError(f"MCP server {self.name!r}: {describe_failure(exc)}") from None
        except (
            httpx2.TransportError,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            OSError,
        ) as exc:
            lost.set()
            raise ToolError(f"MCP server {self.name!r}: {describe_failure(exc)}") from None

    # -- the connection task ---------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while True:
            self._lost = asyncio.Event()
            try:
                await self._connect_and_serve()
                reason = "the connection was lost"
            except Exception as exc:
                reason = describe_failure(exc)
            if self.status == "connected":
                attempt = 0
            self._session = None
            self._set("failed", reason)
            delay = self.timings.backoff(attempt)
            attempt += 1
            log.warning("mcp.server_failed", server=self.name, error=reason, retry_in=delay)
            await asyncio.sleep(delay)
            self._set("connecting", reason)

    async def _connect_and_serve(self) -> None:
        lost = self._lost
        async with self._transport() as (read, write), anyio.create_task_group() as group:
            send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
            group.start_soon(_relay, read, send, lost)
            async with ClientSession(receive, write) as session:
                # In a task of its own (wait_for): a timeout there is a plain asyncio
                # cancellation, outside the transport's cancel scopes.
                listed = await asyncio.wait_for(
                    self._handshake(session), self.timings.connect_timeout
                )
                self._session = session
                self.tools = self._build_tools(listed)
                self._set("connected", None)
                log.info("mcp.server_connected", server=self.name, tools=len(self.tools))
                await lost.wait()
            group.cancel_scope.cancel()

    @staticmethod
    async def _handshake(session: ClientSession) -> list[types.Tool]:
        await session.initialize()
        tools: list[types.Tool] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools

    def _transport(self) -> AbstractAsyncContextManager[Streams]:
        config = self.config
        if isinstance(config, McpStdioServer):
            params = StdioServerParameters(
                command=config.command, args=config.args, env=config.env or None
            )
            return stdio_client(params)
        assert isinstance(config, McpHttpServer)
        return _http_transport(config)

    def _build_tools(self, listed: list[types.Tool]) -> list[McpTool]:
        tools: dict[str, McpTool] = {}
        for remote in listed:
            name = exposed_name(self.name, remote.name)
            if name is None or name in tools:
                log.warning("mcp.tool_skipped", server=self.name, tool=remote.name[:80])
                continue
            tools[name] = McpTool.build(self, name, remote, timeout=self.timings.call_timeout)
        return list(tools.values())

    def _set(self, status: Status, error: str | None) -> None:
        self.status, self.error = status, error
        self._changed()


async def _refuse_auth_failures(response: httpx2.Response) -> None:
    # The SDK turns a 401 or 403 into a bare "Server returned an error response": raised here,
    # the connection fails with the status, which /mcp shows (a wrong or revoked key).
    if response.status_code in (401, 403):
        raise httpx2.HTTPStatusError(
            f"HTTP status {response.status_code}", request=response.request, response=response
        )


@asynccontextmanager
async def _http_transport(config: McpHttpServer) -> AsyncIterator[Streams]:
    # Our own client so the configured headers (API keys) go with every request; the SDK's
    # default timeouts: 30 s to connect, 300 s between bytes of a response stream.
    client = httpx2.AsyncClient(
        headers=config.headers,
        timeout=httpx2.Timeout(30.0, read=300.0),
        event_hooks={"response": [_refuse_auth_failures]},
    )
    async with client, streamable_http_client(config.url, http_client=client) as streams:
        yield streams


class McpServers:
    """Every server of ``MCP_CONFIG``: their tools for the registry, their status for ``/mcp``."""

    def __init__(
        self,
        servers: dict[str, McpServerConfig],
        timings: McpTimings,
        *,
        load: Callable[[], dict[str, McpServerConfig]] | None = None,
    ) -> None:
        self.timings = timings
        self.servers = self._build(servers)
        self._load = load
        # Bumped on every change of a server's state: the registry rebuilds its schemas then.
        self.version = 0
        self._changed = asyncio.Event()
        self._started = False

    @classmethod
    def from_settings(cls, settings: Settings) -> McpServers | None:
        """None without ``MCP_CONFIG``. The file is read by ``start``: a bad one fails the
        runtime's start-up (``McpConfigError`` naming the file and the field), where what was
        opened before is closed again, rather than its construction, where it would not be."""
        if not settings.mcp_config:
            return None
        path = settings.mcp_config
        timings = McpTimings(
            call_timeout=settings.mcp_call_timeout,
            connect_timeout=settings.mcp_connect_timeout,
            reconnect_base_delay=settings.mcp_reconnect_base_delay,
            reconnect_max_delay=settings.mcp_reconnect_max_delay,
        )
        return cls({}, timings, load=lambda: dict(load_mcp_config(path).servers))

    def start(self) -> None:
        """Read ``MCP_CONFIG`` (``McpConfigError``), then connect every enabled server in the
        background (needs a running loop)."""
        if self._started:
            return
        if self._load is not None:
            self.servers = self._build(self._load())
            self._load = None
        self._started = True
        # The SDK's HTTP client (httpx2) logs every request's full URL at INFO: a server's URL
        # may carry a key, and hosts stay out of our logs. Its warnings and errors still show.
        logging.getLogger("httpx2").setLevel(
            max(logging.WARNING, logging.getLogger("httpx2").level)
        )
        for server in self.servers.values():
            server.start()

    async def aclose(self) -> None:
        """Disconnect every server and stop the stdio servers' processes."""
        self._started = False
        await asyncio.gather(*(server.aclose() for server in self.servers.values()))

    def _build(self, servers: dict[str, McpServerConfig]) -> dict[str, McpServer]:
        return {
            name: McpServer(name, config, self.timings, self._on_change)
            for name, config in servers.items()
        }

    def offered(self) -> list[McpTool]:
        """The tools of the connected servers, in configuration order."""
        return [
            tool
            for server in self.servers.values()
            if server.status == "connected"
            for tool in server.tools
        ]

    def get(self, name: str) -> McpTool | None:
        return next((tool for tool in self.offered() if tool.name == name), None)

    def unavailable(self, name: str) -> str | None:
        """Why ``name`` is not offered when it belongs to a server that is not connected."""
        for server in self.servers.values():
            if server.status == "connected":
                continue
            known = any(tool.name == name for tool in server.tools)
            if known or name.startswith(f"{server.name}_"):
                why = server.error or server.status
                return f"tool {name} is unavailable: MCP server {server.name!r} is down ({why})"
        return None

    def statuses(self) -> list[McpServerStatus]:
        return [server.snapshot() for server in self.servers.values()]

    async def wait_for(self, name: str, status: Status) -> McpServerStatus:
        """Wait until server ``name`` is ``status`` ("connecting" included: a retry under way)."""
        server = self.servers[name]
        while server.status != status:
            await self._changed.wait()
        return server.snapshot()

    def _on_change(self) -> None:
        self.version += 1
        # Wake every waiter once; later waiters wait for the next change.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
