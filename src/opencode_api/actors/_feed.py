"""The event feed between a front end and a shard (``serve --ray``): one Ray streaming call per
(front end, shard) carries the batches of every stream that front end has open on that shard,
everything ready in one loop tick as one Ray item (an item costs ~0.6 ms of CPU across Ray's
processes, DEPENDENCY_NOTES.md), instead of one call per stream.

``ShardFeeds`` is the shard's side (inside ``ShardHost``), ``FrontFeed`` and ``FeedSubscription``
the front end's. A stream is named by a key the front end chose; its end is a ``None`` batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any

import structlog

from opencode_api.actors._events import ErrorEvent, MessageStart, StepStart
from opencode_api.actors._shard_errors import INTERRUPTED, shard_lost, unwrap
from opencode_api.runtime import OutboxItem

log = structlog.get_logger("opencode_api.shards")

# One stream's batch: (seq, event) pairs; None ends the stream.
Batch = list[tuple[int, Any]] | None
_LOST = object()  # the shard went away


class Pacer:
    """At most one send per ``window`` seconds. A send after a quiet spell goes at once (what
    is ready in this loop tick), so one turn alone waits for no timer; under load each send
    carries whatever gathered since the last one. ``hurry()`` ends the current wait: for what
    a client is waiting on (a turn's first answer), not for every event."""

    __slots__ = ("_hurry", "_last", "_window")

    def __init__(self, window: float) -> None:
        self._window = window
        self._last = float("-inf")
        self._hurry = asyncio.Event()

    async def wait(self) -> None:
        if self._window <= 0:
            return
        delay = self._last + self._window - asyncio.get_running_loop().time()
        if delay > 0 and not self._hurry.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._hurry.wait()

    def hurry(self) -> None:
        self._hurry.set()

    def sent(self) -> None:
        if self._window > 0:
            self._last = asyncio.get_running_loop().time()
            self._hurry.clear()


# Events before a turn's first answer: a stream's first event of any other kind is sent at once.
_PREAMBLE = (MessageStart, StepStart)


class ShardFeeds:
    """A shard's feeds: a queue per front end, and the tasks that fill it."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._queues: dict[str, asyncio.Queue[tuple[str, Batch]]] = {}
        self._pacers: dict[str, Pacer] = {}
        self._pumps: dict[tuple[str, str], asyncio.Task[None]] = {}

    def _queue(self, front: str) -> asyncio.Queue[tuple[str, Batch]]:
        return self._queues.setdefault(front, asyncio.Queue())

    def _pacer(self, front: str) -> Pacer:
        pacer = self._pacers.get(front)
        if pacer is None:
            pacer = self._pacers[front] = Pacer(self._window)
        return pacer

    async def feed(self, front: str) -> AsyncIterator[list[tuple[str, Batch]]]:
        queue = self._queue(front)
        pacer = self._pacer(front)
        try:
            yield []  # connected
            while True:
                items = [await queue.get()]
                await pacer.wait()
                while not queue.empty():
                    items.append(queue.get_nowait())
                pacer.sent()
                yield items
        finally:
            if self._queues.get(front) is queue:
                del self._queues[front]
            if self._pacers.get(front) is pacer:
                del self._pacers[front]
            for (owner, key), task in list(self._pumps.items()):
                if owner == front:
                    task.cancel()
                    self._pumps.pop((owner, key), None)

    def pump(self, front: str, key: str, batches: AsyncIterator[list[Any]]) -> None:
        """Forward ``batches`` (lists of outbox items) to the front end's feed as ``key``."""
        queue = self._queue(front)

        async def run() -> None:
            answered = False
            try:
                async for batch in batches:
                    queue.put_nowait((key, [(item.seq, item.event) for item in batch]))
                    if not answered and any(
                        not isinstance(item.event, _PREAMBLE) for item in batch
                    ):
                        answered = True  # the first answer (time to first token): no window
                        self._pacer(front).hurry()
            finally:
                queue.put_nowait((key, None))
                self._pumps.pop((front, key), None)

        self._pumps[(front, key)] = asyncio.create_task(run(), name=f"feed:{key}")

    def stop(self, front: str, key: str) -> None:
        task = self._pumps.pop((front, key), None)
        if task is not None:
            task.cancel()


class FrontFeed:
    """A front end's end of one shard's feed: hands each stream's batches to its queue, and
    tells every open stream when the shard is lost (then connects again)."""

    def __init__(self, shard: Any) -> None:
        self.shard = shard
        self.front = uuid.uuid4().hex
        self._queues: dict[str, asyncio.Queue[Any]] = {}
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="shard-feed")
        await self._connected.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    def register(self) -> tuple[str, asyncio.Queue[Any]]:
        key = uuid.uuid4().hex
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues[key] = queue
        return key, queue

    def unregister(self, key: str) -> None:
        if self._queues.pop(key, None) is not None:
            with contextlib.suppress(Exception):
                self.shard.stop_stream.remote(self.front, key)

    async def _run(self) -> None:
        delay = 0.05
        while True:
            generator = self.shard.feed.remote(self.front)
            try:
                async for ref in generator:
                    items = await ref
                    self._connected.set()
                    delay = 0.05
                    for key, batch in items:
                        queue = self._queues.get(key)
                        if queue is not None:
                            queue.put_nowait(batch)
                            if batch is None:
                                del self._queues[key]
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    import ray

                    ray.cancel(generator)
                raise
            except Exception as exc:
                if not shard_lost(exc):
                    log.warning("shard feed failed, connecting again", error=str(unwrap(exc)))
            # The shard is gone (Ray restarts it) or its feed ended: every open stream is lost.
            self._connected.clear()
            for queue in self._queues.values():
                queue.put_nowait(_LOST)
            self._queues.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


class FeedSubscription:
    """One stream of a feed, read like a local outbox subscription. With ``turn`` (session id,
    turn id) a lost shard ends it with that turn's ``error`` event (``interrupted``)."""

    def __init__(
        self,
        feed: FrontFeed,
        key: str,
        queue: asyncio.Queue[Any],
        *,
        turn: tuple[str, str] | None = None,
    ) -> None:
        self._feed = feed
        self._key = key
        self._queue = queue
        self.turn = turn
        self._message_id: str | None = None
        self._pending: deque[OutboxItem[Any]] = deque()
        self._last_seq = 0
        self._closed = False

    def __aiter__(self) -> FeedSubscription:
        return self

    async def __anext__(self) -> OutboxItem[Any]:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            batch = await self._queue.get()
            if batch is None or batch is _LOST:
                self._closed = True
                if batch is _LOST and self.turn is not None:
                    session_id, turn_id = self.turn
                    message_id = self._message_id or turn_id
                    error = ErrorEvent(session_id, message_id, turn_id, error=dict(INTERRUPTED))
                    return OutboxItem(self._last_seq + 1, error)
                raise StopAsyncIteration
            for seq, event in batch:
                if isinstance(event, MessageStart):
                    self._message_id = event.message_id
                self._last_seq = seq
                self._pending.append(OutboxItem(seq, event))
        return self._pending.popleft()

    def take_pending(self) -> list[OutboxItem[Any]]:
        items = list(self._pending)
        self._pending.clear()
        return items

    def close(self) -> None:
        if not self._closed:
            self._closed = True
        self._feed.unregister(self._key)

    async def __aenter__(self) -> FeedSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def open_stream(
    feed: FrontFeed,
    start: Callable[[str, str], Awaitable[Any]],
    turn: Callable[[Any], tuple[str, str] | None],
) -> tuple[Any, FeedSubscription]:
    """Register a stream, then ``start(front, key)`` it on the shard; its result and the
    stream. Nothing of the stream is lost: its queue exists before the shard sends."""
    key, queue = feed.register()
    try:
        result = await start(feed.front, key)
    except BaseException:
        feed.unregister(key)
        raise
    return result, FeedSubscription(feed, key, queue, turn=turn(result))
