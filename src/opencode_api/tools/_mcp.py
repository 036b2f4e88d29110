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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import httpx2
import structlog
from mcp import ClientSession, MCPError, types
from mcp.shared.message import SessionMessage
from mcp_types import CONNECTION_CLOSED

from opencode_api.settings import Settings
from opencode_api.tools._base import ToolError
from opencode_api.tools._mcp_config import McpServerConfig, load_mcp_config
from opencode_api.tools._mcp_tool import McpTool, exposed_name
from opencode_api.tools._mcp_transport import describe_failure, open_transport

log = structlog.get_logger(__name__)

Status = Literal["connecting", "connected", "failed", "disabled"]


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


# How long aclose() waits for the connection task before cancelling it again.
_CLOSE_PATIENCE = 5.0


def _cancel_requested() -> bool:
    """Whether this task was cancelled, even if the CancelledError was swallowed on the way."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


@dataclass(frozen=True, slots=True)
class McpTimings:
    """The knobs of ``MCP_*`` settings: a call's timeout, the handshake's, the reconnect backoff."""

    call_timeout: float = 60.0
    connect_timeout: float = 30.0
    reconnect_base_delay: float = 1.0
    reconnect_max_delay: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Exponential, capped, with jitter: servers that failed together do not retry together."""
        ceiling = min(self.reconnect_max_delay, self.reconnect_base_delay * 2.0 ** min(attempt, 30))
        return ceiling * random.uniform(0.5, 1.0)


class _Link:
    """What one connection tells its task: it is lost (for good), or the server's tools changed."""

    __slots__ = ("lost", "tools_changed", "wake")

    def __init__(self) -> None:
        self.lost = False
        self.tools_changed = False
        self.wake = asyncio.Event()

    def lose(self) -> None:
        self.lost = True
        self.wake.set()

    async def on_message(self, message: types.ServerNotification | Exception) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.tools_changed = True
            self.wake.set()


async def _relay(source: Any, sink: Any, link: _Link) -> None:
    """Pass messages on to the session; the transport's end (EOF: a dead child, a closed
    stream) is how a connection is known to be lost."""
    try:
        async with sink:
            async for item in source:
                await sink.send(item)
    finally:
        link.lose()


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
        self._link = _Link()
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
        while not (await asyncio.wait([task], timeout=_CLOSE_PATIENCE))[0]:
            # Still running: a library between us and the socket swallowed the cancellation.
            log.warning("mcp.server_close_slow", server=self.name)
            task.cancel()
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
        # This connection's own link: a late failure of a call on a connection already replaced
        # must not tear down the new one.
        session, link = self._session, self._link
        if session is None or self.status != "connected":
            why = self.error or "not connected"
            raise ToolError(f"MCP server {self.name!r} is unavailable: {why}")
        try:
            return await session.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                link.lose()
            raise ToolError(f"MCP server {self.name!r}: {describe_failure(exc)}") from None
        except (
            httpx2.TransportError,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            OSError,
        ) as exc:
            link.lose()
            raise ToolError(f"MCP server {self.name!r}: {describe_failure(exc)}") from None

    # -- the connection task ---------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while True:
            self._link = _Link()
            try:
                await self._connect_and_serve()
                reason = "the connection was lost"
            except Exception as exc:
                reason = describe_failure(exc)
            if _cancel_requested():
                # aclose() cancelled us and the transport's teardown swallowed the CancelledError
                # (seen with a server answering 401, under load): stop as asked, not retry forever.
                raise asyncio.CancelledError
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
        link = self._link
        timeout = self.timings.connect_timeout
        async with open_transport(self.config) as (read, write), anyio.create_task_group() as group:
            send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
            group.start_soon(_relay, read, send, link)
            async with ClientSession(receive, write, message_handler=link.on_message) as session:
                # In a task of its own (wait_for): a timeout there is a plain asyncio
                # cancellation, outside the transport's cancel scopes.
                await asyncio.wait_for(session.initialize(), timeout)
                self._session = session
                while not link.lost:
                    link.tools_changed = False
                    listed = await asyncio.wait_for(self._list_tools(session), timeout)
                    self.tools = self._build_tools(listed)
                    self._set("connected", None)
                    log.info("mcp.server_connected", server=self.name, tools=len(self.tools))
                    while not (link.lost or link.tools_changed):
                        link.wake.clear()
                        await link.wake.wait()
            group.cancel_scope.cancel()

    @staticmethod
    async def _list_tools(session: ClientSession) -> list[types.Tool]:
        tools: list[types.Tool] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools

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

    async def changed(self, since: int) -> None:
        """Return once ``version`` is past ``since`` (some server's state or tools changed)."""
        while self.version == since:
            await self._changed.wait()

    def _on_change(self) -> None:
        self.version += 1
        # Wake every waiter once; later waiters wait for the next change.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
