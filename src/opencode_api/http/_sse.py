"""A small Server-Sent Events writer: ids per event, heartbeats, and a write timeout per frame.

aiohttp-sse has no per-write timeout; a client that stops reading must cost us one subscriber, not
a task blocked forever in ``drain()``. ``pump`` reads its source in a separate task so heartbeats go
out while the source is idle and a cancelled wait never tears down an async generator mid-step.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import structlog
from aiohttp import web

from opencode_api.runtime import OpenCodeError

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
    return frame(json.dumps(payload, separators=(",", ":")), event=event, event_id=event_id)


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

    async def prepare(self) -> None:
        await self.response.prepare(self.request)
        # aiohttp holds the headers back until the first body write: send a comment now so the
        # client sees the 200 at once, not when the first event comes (the LLM's first token).
        await self.send(PING_FRAME)

    async def send(self, data: bytes) -> None:
        transport = self.request.transport
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
        except ConnectionResetError as exc:
            # handler_cancellation=False (web.run_app): a vanished client shows up here.
            raise ClientGone("client disconnected") from exc
        except RuntimeError as exc:
            # aiohttp raises "Cannot write to closing transport" after a reset.
            raise ClientGone(str(exc)) from exc

    async def pump(
        self,
        source: AsyncIterator[T],
        render: Callable[[T], bytes],
        *,
        stop: asyncio.Event | None = None,
    ) -> BaseException | None:
        """Write ``render(item)`` for each item of ``source``, with heartbeats while it is idle.

        Returns when the source ends (None), or with the exception the source raised; stops early
        when ``stop`` is set. Raises ``ClientGone``. The source is closed in every case.

        Per event this costs one queue hand-off and no task: what arrived together is written
        in one ``write`` (tokens often come in bursts), and the heartbeat is a timeout on the
        wait rather than a task racing it.
        """
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=64)
        producer = asyncio.create_task(_produce(source, queue))
        stopper = asyncio.create_task(_signal_stop(stop, queue)) if stop is not None else None
        try:
            while True:
                try:
                    async with asyncio.timeout(self.heartbeat):
                        item = await queue.get()
                except TimeoutError:
                    await self.send(PING_FRAME)
                    continue
                frames: list[bytes] = []
                while True:
                    if isinstance(item, _Ended):
                        if frames:
                            await self.send(b"".join(frames))
                        return item.error
                    if item is _STOP:
                        if frames:
                            await self.send(b"".join(frames))
                        return None
                    frames.append(render(item))
                    if queue.empty():
                        break
                    item = queue.get_nowait()
                await self.send(b"".join(frames))
        finally:
            pending = [t for t in (producer, stopper) if t is not None]
            for task in pending:
                task.cancel()
            # Bounded: each task only awaits a queue, an event or the source's next item.
            await asyncio.wait(pending)
            for task in pending:
                if not task.cancelled():
                    task.exception()  # retrieved: reported through the return value above


class _Ended:
    """The source finished (``error`` is what it raised, if anything)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


_STOP = object()


async def _produce(source: AsyncIterator[T], queue: asyncio.Queue[Any]) -> None:
    error: BaseException | None = None
    try:
        async for item in source:
            await queue.put(item)
    except Exception as exc:
        error = exc
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
    await queue.put(_Ended(error))


async def _signal_stop(stop: asyncio.Event, queue: asyncio.Queue[Any]) -> None:
    await stop.wait()
    await queue.put(_STOP)


class StreamRegistry:
    """The app's open SSE streams: shutdown sets ``closing`` so each ends with a final frame."""

    def __init__(self) -> None:
        self.closing = asyncio.Event()
        self.open = 0
