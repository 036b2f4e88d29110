"""The outbox: an actor's numbered events in a bounded replay buffer, read by any number of
subscribers from "now" or from after a sequence number; a slow one is cut off, never waited on.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

from opencode_api.runtime._errors import SubscriberLagged

E = TypeVar("E")


# Slotted and frozen: one is created per published event and shared by every subscriber.
@dataclass(frozen=True, slots=True)
class OutboxItem(Generic[E]):
    """One published event and its sequence number (monotonic within an outbox)."""

    seq: int
    event: E


class Outbox(Generic[E]):
    """Numbered events with a bounded replay buffer of the most recent ``capacity`` of them.

    ``publish`` is synchronous and never waits for a subscriber: one that falls more than its
    ``max_pending`` events behind is cut off (its next read raises ``SubscriberLagged``).
    """

    __slots__ = ("_buffer", "_closed", "_last_seq", "_subscribers")

    def __init__(self, capacity: int = 1024, *, start_seq: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"outbox capacity must be at least 1, not {capacity}")
        self._buffer: deque[OutboxItem[E]] = deque(maxlen=capacity)
        self._last_seq = start_seq
        # Created on the first subscribe: most actors are idle and never subscribed to.
        self._subscribers: set[Subscription[E]] | None = None
        self._closed = False

    @property
    def last_seq(self) -> int:
        """The sequence number of the last published event (``start_seq`` before any)."""
        return self._last_seq

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers) if self._subscribers else 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def oldest_seq(self) -> int | None:
        """The sequence number of the oldest event still in the replay buffer, if any."""
        return self._buffer[0].seq if self._buffer else None

    def publish(self, event: E) -> int:
        """Number the event, keep it for replay, hand it to every subscriber; return its seq."""
        seq = self._last_seq + 1
        self._last_seq = seq
        item = OutboxItem(seq, event)
        self._buffer.append(item)
        subscribers = self._subscribers
        if subscribers:
            lagged: list[Subscription[E]] | None = None
            for subscription in subscribers:
                if not subscription._push(item):
                    if lagged is None:
                        lagged = []
                    lagged.append(subscription)
            if lagged:
                subscribers.difference_update(lagged)
        return seq

    def subscribe(self, after: int | None = None, *, max_pending: int = 256) -> Subscription[E]:
        """Subscribe to events published from now (``after=None``) or to those after ``after``.

        Buffered events with a larger seq are replayed first, then live ones follow. If the events
        right after ``after`` are no longer buffered, the first read raises ``SubscriberLagged``
        (with ``oldest_available``). Replayed events do not count against ``max_pending``.
        """
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        last_seq = self._last_seq
        if after is None or after >= last_seq:
            subscription = Subscription(self, max_pending, last_seq if after is None else after)
        else:
            oldest = self.oldest_seq
            subscription = Subscription(self, max_pending, after)
            if oldest is None or after + 1 < oldest:
                subscription._cut_off(SubscriberLagged(last_seq=after, oldest_available=oldest))
                return subscription
            missed = last_seq - after
            replay = itertools.islice(self._buffer, len(self._buffer) - missed, None)
            subscription._replay(replay, missed)
        if self._closed:
            subscription._end()
        else:
            if self._subscribers is None:
                self._subscribers = set()
            self._subscribers.add(subscription)
        return subscription

    def close(self) -> None:
        """End every subscription: each reads what it already has, then stops."""
        if self._closed:
            return
        self._closed = True
        subscribers, self._subscribers = self._subscribers, None
        for subscription in subscribers or ():
            subscription._end()

    def _discard(self, subscription: Subscription[E]) -> None:
        if self._subscribers is not None:
            self._subscribers.discard(subscription)


class Subscription(Generic[E]):
    """An async iterator of ``OutboxItem``s from one outbox; also an async context manager.

    Iteration ends (``StopAsyncIteration``) after ``close()`` or once the outbox is closed and the
    pending events are read. A subscription cut off for lagging raises ``SubscriberLagged`` once,
    then ends; resubscribe with ``after=subscription.last_seq`` to continue.
    """

    __slots__ = (
        "_closed",
        "_error",
        "_last_seq",
        "_max_pending",
        "_outbox",
        "_pending",
        "_replay_left",
        "_waiter",
    )

    def __init__(self, outbox: Outbox[E], max_pending: int, last_seq: int) -> None:
        self._outbox = outbox
        self._max_pending = max_pending
        self._pending: deque[OutboxItem[E]] = deque()
        self._replay_left = 0
        self._last_seq: int | None = last_seq
        self._waiter: asyncio.Future[None] | None = None
        self._error: SubscriberLagged | None = None
        self._closed = False

    @property
    def last_seq(self) -> int | None:
        """The seq of the last event read, or the starting point before any was read."""
        return self._last_seq

    @property
    def pending(self) -> int:
        """Events received but not read yet."""
        return len(self._pending)

    def close(self) -> None:
        """Stop receiving; pending events are dropped and iteration ends."""
        self._closed = True
        self._pending.clear()
        self._replay_left = 0
        self._outbox._discard(self)
        self._wake()

    def __aiter__(self) -> Subscription[E]:
        return self

    async def __anext__(self) -> OutboxItem[E]:
        while True:
            if self._pending:
                item = self._pending.popleft()
                if self._replay_left:
                    self._replay_left -= 1
                self._last_seq = item.seq
                return item
            error = self._error
            if error is not None:
                # Raised once; afterwards the subscription is simply finished.
                self._error = None
                self._closed = True
                raise error
            if self._closed:
                raise StopAsyncIteration
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None

    def take_pending(self) -> list[OutboxItem[E]]:
        """Every event received and not read yet, without waiting (empty when there is none).

        For readers that handle what arrived together at once (an SSE writer writes it in one
        write): ``await anext(subscription)`` for the first event, then this for the rest.
        """
        pending = self._pending
        if not pending:
            return []
        items = list(pending)
        pending.clear()
        self._replay_left = 0
        self._last_seq = items[-1].seq
        return items

    async def __aenter__(self) -> Subscription[E]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _replay(self, items: itertools.islice[OutboxItem[E]], count: int) -> None:
        self._pending.extend(items)
        self._replay_left = count

    def _push(self, item: OutboxItem[E]) -> bool:
        """Take a live event; False when this subscriber is (now) cut off or closed."""
        if self._closed or self._error is not None:
            return False
        if len(self._pending) - self._replay_left >= self._max_pending:
            self._cut_off(
                SubscriberLagged(last_seq=self._last_seq, oldest_available=self._outbox.oldest_seq)
            )
            return False
        self._pending.append(item)
        self._wake()
        return True

    def _cut_off(self, error: SubscriberLagged) -> None:
        # Dropping what is pending makes the signal immediate: the reader resubscribes after its
        # last read seq and the replay buffer gives it the rest, if still kept.
        self._pending.clear()
        self._replay_left = 0
        self._error = error
        self._wake()

    def _end(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
