"""The test MCP server (``mcp_server.py``) as child processes: over stdio, and over streamable
HTTP on a port that stays the same across a kill and a restart."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

SERVER_SCRIPT = Path(__file__).with_name("mcp_server.py")
HTTP_KEY = "k-" + "s" * 20  # the header the HTTP server requires; must never show in /mcp


def stdio_config(**extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(SERVER_SCRIPT), "stdio"], **extra}


def write_config(path: Path, servers: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    return path


class HttpMcpServer:
    """The server over streamable HTTP. The test binds the listening socket and hands it to
    the child: the port is taken and queues connections before the child is ready (no wait for
    readiness), and once the child is killed nothing listens (connections are refused)."""

    def __init__(self) -> None:
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"url": self.url, "headers": {"X-Test-Key": HTTP_KEY}, **extra}

    async def start(self) -> None:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            sock.listen(64)
            self.port = sock.getsockname()[1]
            fd = sock.fileno()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SERVER_SCRIPT),
                "http",
                str(fd),
                pass_fds=(fd,),
                env={**os.environ, "MCP_TEST_KEY": HTTP_KEY},
            )

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.returncode is None:
            process.kill()
        await process.wait()
