"""The HTTP side shared by the fake providers: lifecycle, reply queue, recording, disconnects."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import deque
from typing import Any, Self

from aiohttp import web

from opencode_api.http import BatchAcceptSite
from opencode_api.testing._files import echo_text
from opencode_api.testing._script import Reply, default_reply

# A deep accept queue: load tests open thousands of connections at once, and aiohttp's default
# (128) drops SYNs that are then retried after 1, 3, 7... s, measuring the kernel, not the server.
LISTEN_BACKLOG = 4096


class FakeProviderServer:
    """A scripted model provider on 127.0.0.1 over real HTTP; subclasses speak one wire protocol.

    Replies are taken from the queue (``enqueue``), else ``default_reply``. Every JSON body received
    is kept in ``requests``. A client that goes away before its stream ended counts in
    ``disconnects`` and wakes ``wait_for_disconnects``; server-side drops count in ``drops``.
    """

    #: The routes a subclass answers (POST).
    paths: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: int = 50,
        token_delay: float = 0.0,
        ttft: float = 0.0,
        model: str = "fake-model",
    ) -> None:
        self.host = host
        self.port = port
        self.token_delay = token_delay
        self.ttft = ttft
        self.model = model
        self.default_reply: Reply = default_reply(tokens)
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.disconnects = 0
        self.drops = 0
        self.completed = 0
        self.disconnected = asyncio.Event()
        self._queue: deque[Reply] = deque()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # -- scripting --------------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        """Queue replies; each request takes the next one."""
        self._queue.extend(replies)

    def set_default(
        self,
        *,
        tokens: int | None = None,
        token_delay: float | None = None,
        ttft: float | None = None,
    ) -> None:
        if tokens is not None:
            self.default_reply = default_reply(tokens)
        if token_delay is not None:
            self.token_delay = token_delay
        if ttft is not None:
            self.ttft = ttft

    async def wait_for_disconnects(self, count: int = 1) -> None:
        """Return once at least ``count`` clients went away mid-stream (wrap in a timeout)."""
        if self.disconnects >= count:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, waiter))
        await waiter

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("Cannot call start() twice")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for path in self.paths:
            app.router.add_post(path, self._handle)
        # handler_cancellation: a client that leaves while we wait (ttft, hang) cancels the handler,
        # which is how the fake notices an aborted stream that is not being written to.
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        # Batched accepts: under a load test the fake must take new connections as fast as the
        # server opens them (uvloop alone accepts one per loop iteration).
        site = BatchAcceptSite(runner, self.host, self.port, backlog=LISTEN_BACKLOG)
        await site.start()
        self._runner = runner
        self.port = site.port

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    # -- protocol hooks ---------------------------------------------------------------------
    def stream_frames(self, body: dict[str, Any], reply: Reply) -> list[bytes]:
        raise NotImplementedError

    def error_frame(self, reply: Reply) -> bytes:
        raise NotImplementedError

    def error_body(self, reply: Reply) -> dict[str, Any]:
        raise NotImplementedError

    def completion_body(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        raise NotImplementedError

    def is_streaming(self, body: dict[str, Any]) -> bool:
        return bool(body.get("stream"))

    # -- handling ---------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": {"message": "invalid JSON"}}, status=400)
        self.requests.append(body)
        self.request_headers.append(dict(request.headers))
        reply = self._queue.popleft() if self._queue else self.default_reply
        if reply.echo_files:
            reply = dataclasses.replace(reply, text=(echo_text(body),))
        if reply.received is not None:
            reply.received.set()
        if reply.hold is not None:
            await reply.hold.wait()
        if reply.status >= 400:
            headers = dict(reply.headers)
            if reply.retry_after is not None:
                headers["Retry-After"] = str(reply.retry_after)
            return web.json_response(self.error_body(reply), status=reply.status, headers=headers)
        if not self.is_streaming(body):
            return web.json_response(self.completion_body(body, reply), headers=reply.headers)
        return await self._stream(request, body, reply)

    async def _stream(
        self, request: web.Request, body: dict[str, Any], reply: Reply
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                **reply.headers,
            }
        )
        ttft = self.ttft if reply.ttft is None else reply.ttft
        delay = self.token_delay if reply.token_delay is None else reply.token_delay
        frames = self.stream_frames(body, reply)
        try:
            await response.prepare(request)
            if ttft > 0:
                await asyncio.sleep(ttft)
            for index, frame in enumerate(frames):
                if index == reply.drop_after:
                    self.drops += 1
                    if request.transport is not None:
                        # close(), not abort(): what was written reaches the client first.
                        request.transport.close()
                    return response
                if index == reply.hang_after:
                    await self._closing.wait()
                    return response
                if index == reply.error_event_after:
                    await response.write(self.error_frame(reply))
                    await response.write_eof()
                    return response
                if index and delay > 0:
                    await asyncio.sleep(delay)
                await response.write(frame)
            await response.write_eof()
            self.completed += 1
        except asyncio.CancelledError:
            if not self._closing.is_set():
                self._note_disconnect()
            raise
        except ConnectionResetError:
            self._note_disconnect()
        return response

    def _note_disconnect(self) -> None:
        # Synchronous on purpose: it runs while the handler is being cancelled.
        self.disconnects += 1
        self.disconnected.set()
        pending = []
        for count, waiter in self._waiters:
            if self.disconnects >= count:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                pending.append((count, waiter))
        self._waiters = pending


def sse_data(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def sse_event(event: str, payload: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()
