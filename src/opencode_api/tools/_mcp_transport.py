"""How an MCP server is reached (streamable HTTP, or a child process over stdio), and why it
could not be, in words that name no URL, host address, header or environment value."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import httpx2
from mcp import MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CONNECTION_CLOSED

from opencode_api.tools._mcp_config import McpHttpServer, McpServerConfig, McpStdioServer

Streams = tuple[Any, Any]


def open_transport(config: McpServerConfig) -> AbstractAsyncContextManager[Streams]:
    """The SDK's transport for ``config``: enter it and leave it in the same task."""
    if isinstance(config, McpStdioServer):
        # The child gets the SDK's short list of safe variables (PATH, HOME, ...) and ``env``:
        # never this server's own keys.
        params = StdioServerParameters(
            command=config.command, args=config.args, env=config.env or None
        )
        return stdio_client(params)
    return _http_transport(config)


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
