"""A small Server-Sent Events writer: ids per event, heartbeats, and a write timeout per frame.

aiohttp-sse has no per-write timeout; a client that stops reading must cost us one subscriber, not
a task blocked forever in ``drain()``. ``pump`` reads its source in the request's own task: per
event that is one wake-up and no timer; heartbeats come from one timer per interval.

A client that closes its connection ends the pump at once, whatever aiohttp's
``handler_cancellation``: with False (``web.run_app``'s default, and ours) aiohttp does not tell the
handler, which would learn it from its next write, for a quiet stream the next heartbeat, up to
30 s later; measured before this: 5 x 2,000 connect/close cycles of ``GET /event`` left 10,000
subscriptions open and RSS 120 MB higher. ``_ConnectionWatch`` hears the close from the transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import orjson
import structlog
from aiohttp import web

from opencode_api.errors import OpenCodeError

log = structlog.get_logger("opencode_api.http.sse")

T = TypeVar("T")

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    # nginx (and the Hugging Face proxy) would otherwise buffer the whole stream.
    "X-Accel-Buffering": "no",
}


class ClientGone(OpenCodeError):
    """The client disconnected or stopped reading for longer than the write timeout."""


def frame(data: str, *, event: str | None = None, event_id: int | str | None = None) -> bytes:
    """One SSE frame; ``data`` may span lines (each becomes a ``data:`` line)."""
    lines: list[str] = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def json_frame(
    payload: dict[str, Any], *, event: str | None = None, event_id: int | str | None = None
) -> bytes:
    """``frame`` of ``payload`` as compact JSON (one line: JSON escapes newlines in strings)."""
    head = b""
    if event_id is not None:
        head = f"id: {event_id}\n".encode()
    if event is not None:
        head += f"event: {event}\n".encode()
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


DONE_FRAME = frame("[DONE]")
PING_FRAME = b": ping\n\n"


# Below this many buffered bytes a write returns without waiting for the client.
_UNTIMED_BUFFER = 16 * 1024


class SSEWriter:
    """An SSE response. ``prepare`` sends the headers; ``send`` writes a frame or raises
    ``ClientGone`` (disconnect, or the write stalled past ``write_timeout``)."""

    def __init__(self, request: web.Request, *, heartbeat: float, write_timeout: float) -> None:
        self.request = request
        self.heartbeat = heartbeat
        self.write_timeout = write_timeout
        self.response = web.StreamResponse(status=200, headers=SSE_HEADERS)
        self.response.enable_chunked_encoding()
        self._loop = asyncio.get_running_loop()
        self._last_write = self._loop.time()
        self._writing = 0

    async def prepare(self) -> None:
        await self.response.prepare(self.request)
        # aiohttp holds the headers back until the first body write: send a comment now so the
        # client sees the 200 at once, not when the first event comes (the LLM's first token).
        await self.send(PING_FRAME)

    async def send(self, data: bytes) -> None:
        transport = self.request.transport
        self._writing += 1
        try:
            if (
                transport is not None
                and transport.get_write_buffer_size() + len(data) < _UNTIMED_BUFFER
            ):
                # aiohttp waits for the socket only past its own high-water mark (64 KiB): with
                # little buffered this write cannot stall, and a timer per event is costly.
                await self.response.write(data)
                return
            async with asyncio.timeout(self.write_timeout):
                await self.response.write(data)
        except TimeoutError:
            # The socket is wedged: drop this connection so its buffers are freed.
            transport = self.request.transport
            if transport is not None:
                transport.abort()
            raise ClientGone("write timed out") from None
        except ConnectionError as exc:
            # A reset on write, or aiohttp's "Connection lost" from a drain the close woke up.
            raise ClientGone("client disconnected") from exc
        except RuntimeError as exc:
            # aiohttp raises "Cannot write to closing transport" after a reset.
            raise ClientGone(str(exc)) from exc
        finally:
            self._writing -= 1
            self._last_write = self._loop.time()

    async def pump(
        self,
        source: AsyncIterator[T],
        render: Callable[[T], bytes],
        *,
        stop: asyncio.Event | None = None,
    ) -> BaseException | None:
        """Write ``render(item)`` for each item of ``source``, with heartbeats while it is idle.

        Returns when the source ends (None), or with the exception the source raised; stops early
        (None) when ``stop`` is set. Raises ``ClientGone``. The source is closed in every case.

        The source is read in this task, so an event costs one wake-up and one write (a source
        may yield lists of events that arrived together: ``render`` then writes them at once).
        A timer sends a ping once the stream has been quiet for ``heartbeat`` seconds; ``stop``,
        a failed ping and the connection's close interrupt the wait by cancelling this task, which
        closes the source.
        """
        task = asyncio.current_task()
        assert task is not None
        interrupt = _Interrupt(task)
        beat = _Heartbeat(self, interrupt)
        stopper: asyncio.Task[bool] | None = None
        if stop is not None:
            stopper = asyncio.create_task(stop.wait())
            stopper.add_done_callback(interrupt.on_stop)
        watch = _ConnectionWatch.install(self.request.transport, interrupt.on_lost)
        iterator = aiter(source)
        try:
            if watch is None:
                raise ClientGone("client disconnected")
            while True:
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    return None
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    return exc
                await self.send(render(item))
        except asyncio.CancelledError:
            if not interrupt.claim():
                raise
            if interrupt.reason is not None:
                raise interrupt.reason from None
            return None
        finally:
            interrupt.disarm()
            if watch is not None:
                watch.remove()
            beat.cancel()
            if stopper is not None:
                stopper.cancel()
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()


class _Interrupt:
    """Ends a pump's wait on its source: cancels the pump's task once, with a reason to raise
    (``ClientGone`` from a failed ping) or None (stop). ``claim`` tells our cancellation from
    anyone else's (a client disconnect, a server shutdown), which must go on."""

    __slots__ = ("_disarmed", "_fired", "_task", "reason")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self._task = task
        self._fired = False
        self._disarmed = False
        self.reason: ClientGone | None = None

    def on_stop(self, stopper: asyncio.Task[bool]) -> None:
        if not stopper.cancelled():
            self.fire(None)

    def on_lost(self) -> None:
        self.fire(ClientGone("client disconnected"))

    def disarm(self) -> None:
        """The pump is over: the task goes on with other work and must not be cancelled."""
        self._disarmed = True

    def fire(self, reason: ClientGone | None) -> None:
        if not self._fired and not self._disarmed and not self._task.done():
            self._fired = True
            self.reason = reason
            self._task.cancel()

    def claim(self) -> bool:
        """True (and the cancellation is consumed) when this interrupt alone cancelled the task."""
        return self._fired and self._task.uncancel() == 0


class _ConnectionWatch(asyncio.Protocol):
    """Stands in front of aiohttp's protocol on the transport while a stream is pumped: forwards
    every call to it, and after ``connection_lost`` calls ``on_lost``.

    Event-driven, where polling the transport would cost a timer per stream: a transport hands its
    events to whichever protocol it has (``set_protocol`` is public asyncio API, uvloop's too), and
    aiohttp keeps its own reference to the transport for writing, so it does not see the swap.
    """

    __slots__ = ("_inner", "_on_lost", "_transport")

    def __init__(
        self, transport: asyncio.Transport, inner: asyncio.Protocol, on_lost: Callable[[], None]
    ) -> None:
        self._transport = transport
        self._inner = inner
        self._on_lost = on_lost

    @classmethod
    def install(
        cls, transport: asyncio.Transport | None, on_lost: Callable[[], None]
    ) -> _ConnectionWatch | None:
        """The watch now in place, or None when the connection is closed or closing already."""
        if transport is None or transport.is_closing():
            return None
        watch = cls(transport, cast(asyncio.Protocol, transport.get_protocol()), on_lost)
        transport.set_protocol(watch)
        return watch

    def remove(self) -> None:
        """Give the transport back to aiohttp's protocol (the connection may serve more requests).
        After the connection was lost the transport holds no protocol: nothing to give back."""
        if self._transport.get_protocol() is self:
            self._transport.set_protocol(self._inner)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self._inner.connection_lost(exc)
        finally:
            self._on_lost()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()


class _Heartbeat:
    """One timer per stream: a ping after ``heartbeat`` quiet seconds, re-armed from the last
    write, so a busy stream pays nothing per event."""

    __slots__ = ("_handle", "_interrupt", "_ping", "_writer")

    def __init__(self, writer: SSEWriter, interrupt: _Interrupt) -> None:
        self._writer = writer
        self._interrupt = interrupt
        self._ping: asyncio.Task[None] | None = None
        self._handle: asyncio.TimerHandle | None = writer._loop.call_at(
            writer._last_write + writer.heartbeat, self._tick
        )

    def _tick(self) -> None:
        writer = self._writer
        now = writer._loop.time()
        due = writer._last_write + writer.heartbeat
        if now >= due:
            if not writer._writing and self._ping is None:
                self._ping = asyncio.create_task(self._send_ping())
            due = now + writer.heartbeat
        self._handle = writer._loop.call_at(due, self._tick)

    async def _send_ping(self) -> None:
        try:
            await self._writer.send(PING_FRAME)
        except ClientGone as exc:
            self._interrupt.fire(exc)
        finally:
            self._ping = None

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._ping is not None:
            self._ping.cancel()


class StreamRegistry:
    """The app's open SSE streams: shutdown sets ``closing`` so each ends with a final frame."""

    def __init__(self) -> None:
        self.closing = asyncio.Event()
        self.open = 0
