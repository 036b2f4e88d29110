"""A real MCP server from the SDK for the MCP tests, run as a child process.

``python mcp_server.py stdio`` speaks MCP on stdin/stdout; ``python mcp_server.py http FD`` serves
streamable HTTP on the listening socket inherited as file descriptor FD (bound by the test, so
its port is known and taken before this process starts).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("test-tools")
# Set once ``hang`` was called, and once such a call was cancelled.
_hanging = anyio.Event()
_cancelled = anyio.Event()


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@server.tool()
def big(size: int) -> str:
    """A long text of ``size`` characters."""
    return "x" * size


@server.tool()
def fail(reason: str) -> str:
    """Always fails with ``reason``."""
    raise ToolError(reason)


@server.tool()
async def hang() -> str:
    """Never answers (until cancelled)."""
    _hanging.set()
    try:
        await anyio.sleep_forever()
    finally:
        _cancelled.set()
    return "unreachable"


@server.tool()
async def wait_hanging() -> str:
    """Answers once a ``hang`` call is running."""
    await _hanging.wait()
    return "hanging"


@server.tool()
async def wait_cancelled() -> str:
    """Answers once a ``hang`` call was cancelled."""
    await _cancelled.wait()
    return "cancelled"


def extra() -> str:
    """A tool added while the server runs."""
    return "extra"


@server.tool()
async def grow(ctx: Context) -> str:
    """Adds the tool ``extra`` and tells the client that the tools changed."""
    server.add_tool(extra)
    await ctx.session.send_tool_list_changed()
    return "grown"


@server.tool()
def pid() -> str:
    """This process's id."""
    return str(os.getpid())


@server.tool()
def crash() -> str:
    """The process dies in the middle of the call."""
    os._exit(3)


def main() -> None:
    if sys.argv[1] == "stdio":
        server.run("stdio")
        return
    import uvicorn

    sock = socket.socket(fileno=int(sys.argv[2]))
    inner = server.streamable_http_app()
    key = os.environ.get("MCP_TEST_KEY", "")

    # The configured headers must reach the server: without the key, 401.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers", []))
        if scope["type"] == "http" and headers.get(b"x-test-key", b"").decode() != key:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"no key"})
            return
        await inner(scope, receive, send)

    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    anyio.run(uvicorn.Server(config).serve, [sock])


if __name__ == "__main__":
    main()
