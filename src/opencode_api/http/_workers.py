"""Several worker processes behind one port: each session lives in exactly one of them.

One asyncio loop uses one core. With ``WORKERS=N`` every worker binds the public port (the
kernel spreads connections over them) and also listens on a Unix socket of its own. A session
is owned by worker ``crc32(session id) % N``, so its actor is activated in one process only; a
request about a session that reaches another worker is forwarded to the owner over its socket,
streams included. Requests about no particular session (create, list, catalogue) are served
where they land, from the shared store. ``GET /event`` merges every worker's bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from opencode_api.http._keys import RUNTIME
from opencode_api.settings import Settings

log = structlog.get_logger("opencode_api.workers")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Not copied between a client and a worker: they describe one hop, not the message.
_HOP_HEADERS = frozenset(
    {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"}
)
# The front's own middlewares add these to what it sends back.
_FRONT_HEADERS = _HOP_HEADERS | {"content-encoding", "date", "server"}
# Set on answers a worker passed on: which worker owns the session (operators, tests).
FORWARDED_HEADER = "X-Opencode-Worker"
# How long a forward waits for the owner's socket (it may still be starting).
_CONNECT_PATIENCE = 15.0


@dataclass(frozen=True, slots=True)
class Topology:
    index: int
    count: int
    socket_dir: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology | None:
        if settings.workers <= 1 or settings.worker_socket_dir is None:
            return None
        return cls(settings.worker_index, settings.workers, Path(settings.worker_socket_dir))

    def owner(self, session_id: str) -> int:
        return zlib.crc32(session_id.encode()) % self.count

    def socket(self, index: int) -> Path:
        return socket_path(self.socket_dir, index)

    def others(self) -> list[int]:
        return [i for i in range(self.count) if i != self.index]


def socket_path(socket_dir: Path, index: int) -> Path:
    return socket_dir / f"worker-{index}.sock"


TOPOLOGY = web.AppKey("topology", Topology)
_CLIENTS = web.AppKey("worker_clients", dict)


def is_internal(request: web.Request) -> bool:
    """Came from another worker (over a Unix socket), not from a client."""
    transport = request.transport
    return transport is not None and isinstance(transport.get_extra_info("sockname"), str)


def install(app: web.Application, topology: Topology) -> None:
    """Route session requests to their owner; call before the app starts."""
    app[TOPOLOGY] = topology

    async def clients_ctx(app: web.Application) -> AsyncIterator[None]:
        clients: dict[int, aiohttp.ClientSession] = {}
        app[_CLIENTS] = clients
        yield
        for client in clients.values():
            await client.close()

    app.cleanup_ctx.append(clients_ctx)
    app.middlewares.append(_forward_middleware)


def _client(app: web.Application, index: int) -> aiohttp.ClientSession:
    clients: dict[int, aiohttp.ClientSession] = app[_CLIENTS]
    client = clients.get(index)
    if client is None:
        connector = aiohttp.UnixConnector(path=str(app[TOPOLOGY].socket(index)), limit=0)
        client = clients[index] = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)
        )
    return client


async def _owner_of(request: web.Request) -> int | None:
    """The worker owning the session this request is about, if it is about one."""
    topology = request.app[TOPOLOGY]
    ident = request.match_info.get("id")
    if ident is None:
        return None
    path = request.path
    if path.startswith("/session/"):
        return topology.owner(ident)
    if path.startswith("/question/"):
        session_id = await request.app[RUNTIME].question_session(ident)
        return topology.owner(session_id) if session_id is not None else None
    return None


@web.middleware
async def _forward_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_internal(request):
        owner = await _owner_of(request)
        if owner is not None and owner != request.app[TOPOLOGY].index:
            return await forward(request, owner)
    return await handler(request)


async def _open(request: web.Request, index: int, body: bytes) -> aiohttp.ClientResponse:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _CONNECT_PATIENCE
    delay = 0.05
    while True:
        try:
            return await _client(request.app, index).request(
                request.method,
                f"http://worker{request.path_qs}",
                headers=headers,
                data=body,
                allow_redirects=False,
            )
        except aiohttp.ClientConnectorError as exc:
            if loop.time() >= deadline:
                raise web.HTTPServiceUnavailable(reason=f"worker {index} is not reachable") from exc
            await asyncio.sleep(delay)  # the owner is still starting: wait for its socket
            delay = min(delay * 2, 1.0)


async def forward(request: web.Request, index: int) -> web.StreamResponse:
    """Pass the request to worker ``index`` and its answer (or stream) back."""
    body = await request.read()
    upstream = await _open(request, index, body)
    try:
        headers = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() not in _FRONT_HEADERS and not k.lower().startswith("access-control-")
        }
        headers[FORWARDED_HEADER] = str(index)
        if not upstream.headers.get("Content-Type", "").startswith("text/event-stream"):
            return web.Response(status=upstream.status, body=await upstream.read(), headers=headers)
        response = web.StreamResponse(status=upstream.status, headers=headers)
        await response.prepare(request)
        try:
            async for block in upstream.content.iter_any():
                await response.write(block)
        except (ConnectionResetError, aiohttp.ClientConnectionError):
            # Either side went away. Closing our upstream connection tells the owner, whose
            # stream handler treats it as the client leaving: the turn goes on.
            pass
        return response
    finally:
        upstream.release()
        upstream.close()


async def remote_bus_frames(request: web.Request) -> AsyncIterator[bytes]:
    """The ``/event`` frames of every other worker (same query and credentials), merged."""
    topology = request.app[TOPOLOGY]
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1024)

    async def read(index: int) -> None:
        upstream = await _open(request, index, b"")
        try:
            async for frame in _sse_frames(upstream.content):
                if b'"server.connected"' in frame or b'"server.shutdown"' in frame:
                    continue
                await queue.put(frame)
        finally:
            upstream.close()

    readers = [asyncio.create_task(read(i)) for i in topology.others()]
    try:
        while True:
            yield await queue.get()
    finally:
        for task in readers:
            task.cancel()
        for task in readers:
            with contextlib.suppress(BaseException):
                await task


async def _sse_frames(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """Whole SSE frames carrying data (comments and heartbeats dropped), as raw bytes."""
    frame: list[bytes] = []
    async for line in content:
        if line in (b"\n", b"\r\n"):
            if any(part.startswith(b"data:") for part in frame):
                yield b"".join(frame) + b"\n"
            frame = []
        elif not line.startswith(b":"):
            frame.append(line)


async def merge(*sources: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Items of several async iterators as they come; ends when the first one ends."""
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue(maxsize=1024)

    async def pump(source: AsyncIterator[Any]) -> None:
        try:
            async for item in source:
                await queue.put((False, item))
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait((True, None))

    tasks = [asyncio.create_task(pump(source)) for source in sources]
    try:
        while True:
            ended, item = await queue.get()
            if ended:
                return
            yield item
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
