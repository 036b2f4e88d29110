"""Passing requests to the peer process that hosts their session (``serve --workers N``).

Where a session lives is the Runtime's placement's business: ``Runtime.route`` names the peer
hosting a session (or a question's session) and ``Runtime.peers`` all of them. This module only
forwards: a request that landed here for a session hosted elsewhere goes to that peer's Unix
socket unchanged, and its answer or stream comes back unchanged. ``GET /event`` merges every
peer's bus. Requests about no particular session (create, list, catalogue) are served where they
land, from the shared store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from opencode_api.actors import Peer
from opencode_api.http._keys import RUNTIME

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


_CLIENTS = web.AppKey("peer_clients", dict)


def is_internal(request: web.Request) -> bool:
    """Came from another worker (over a Unix socket), not from a client."""
    transport = request.transport
    return transport is not None and isinstance(transport.get_extra_info("sockname"), str)


def has_peers(request: web.Request) -> bool:
    return bool(request.app[RUNTIME].peers())


def install(app: web.Application) -> None:
    """Pass requests about sessions hosted by a peer to it; call before the app starts."""

    async def clients_ctx(app: web.Application) -> AsyncIterator[None]:
        clients: dict[str, aiohttp.ClientSession] = {}
        app[_CLIENTS] = clients
        yield
        for client in clients.values():
            await client.close()

    app.cleanup_ctx.append(clients_ctx)
    app.middlewares.append(_forward_middleware)


def _client(app: web.Application, peer: Peer) -> aiohttp.ClientSession:
    clients: dict[str, aiohttp.ClientSession] = app[_CLIENTS]
    client = clients.get(peer.address)
    if client is None:
        connector = aiohttp.UnixConnector(path=peer.address, limit=0)
        client = clients[peer.address] = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)
        )
    return client


async def _home_of(request: web.Request) -> Peer | None:
    """The peer hosting the session this request is about, if another process hosts it."""
    ident = request.match_info.get("id")
    if ident is None:
        return None
    runtime = request.app[RUNTIME]
    path = request.path
    if path.startswith("/session/"):
        return await runtime.route(session_id=ident)
    if path.startswith("/question/"):
        return await runtime.route(question_id=ident)
    return None


@web.middleware
async def _forward_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_internal(request):
        home = await _home_of(request)
        if home is not None:
            return await forward(request, home)
    return await handler(request)


async def _open(request: web.Request, peer: Peer, body: bytes) -> aiohttp.ClientResponse:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _CONNECT_PATIENCE
    delay = 0.05
    while True:
        try:
            return await _client(request.app, peer).request(
                request.method,
                f"http://worker{request.path_qs}",
                headers=headers,
                data=body,
                allow_redirects=False,
            )
        except aiohttp.ClientConnectorError as exc:
            if loop.time() >= deadline:
                raise web.HTTPServiceUnavailable(
                    reason=f"worker {peer.name} is not reachable"
                ) from exc
            await asyncio.sleep(delay)  # the owner is still starting: wait for its socket
            delay = min(delay * 2, 1.0)


async def forward(request: web.Request, peer: Peer) -> web.StreamResponse:
    """Pass the request to ``peer`` and its answer (or stream) back."""
    body = await request.read()
    upstream = await _open(request, peer, body)
    try:
        headers = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() not in _FRONT_HEADERS and not k.lower().startswith("access-control-")
        }
        headers[FORWARDED_HEADER] = peer.name
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
    """The ``/event`` frames of every peer (same query and credentials), merged."""
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1024)

    async def read(peer: Peer) -> None:
        upstream = await _open(request, peer, b"")
        try:
            async for frame in _sse_frames(upstream.content):
                if b'"server.connected"' in frame or b'"server.shutdown"' in frame:
                    continue
                await queue.put(frame)
        finally:
            upstream.close()

    readers = [asyncio.create_task(read(peer)) for peer in request.app[RUNTIME].peers()]
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
