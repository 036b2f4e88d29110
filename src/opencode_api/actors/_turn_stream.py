"""``TurnStream``: the events of one turn, as ``Runtime.send`` returns them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from opencode_api.actors._events import TurnEvent
from opencode_api.runtime import Outbox, OutboxItem, SubscriberLagged, Subscription

# Enqueues the turn: its user message id and a subscription to the session's events.
Enqueue = Callable[[], Awaitable[tuple[str, Subscription[Any]]]]
# Subscribes again after a sequence number (a subscriber that lagged catches up).
Resubscribe = Callable[[int | None], Awaitable[Subscription[Any]]]


class TurnStream:
    """The events of one turn, from ``message_start`` to ``done``/``error``.

    Iterating yields ``TurnEvent``s; ``items()`` yields them with their outbox sequence numbers
    (SSE ids). ``start()`` enqueues the turn and raises request errors (not found, busy, quota,
    mailbox full) before anything is streamed; iteration calls it when nobody did.
    """

    def __init__(self, enqueue: Enqueue, resubscribe: Resubscribe) -> None:
        self._enqueue = enqueue
        self._resubscribe = resubscribe
        self._subscription: Subscription[Any] | None = None
        self.turn_id: str | None = None
        self._finished = False

    async def start(self) -> None:
        if self._subscription is None:
            self.turn_id, self._subscription = await self._enqueue()

    async def items(self) -> AsyncIterator[OutboxItem[TurnEvent]]:
        async for batch in self.batches():
            for item in batch:
                yield item

    async def batches(self) -> AsyncIterator[list[OutboxItem[TurnEvent]]]:
        """Like ``items()``, but the events that arrived together come as one list.

        An SSE writer renders each list into one write; under load (many sessions, tokens in
        bursts) that is one wake-up and one write for several events instead of one each.
        """
        await self.start()
        assert self._subscription is not None
        subscription = self._subscription
        turn_id = self.turn_id
        last_seq: int | None = None
        try:
            while not self._finished:
                try:
                    async for first in subscription:
                        rest = subscription.take_pending()
                        batch: list[OutboxItem[TurnEvent]] = []
                        for item in (first, *rest) if rest else (first,):
                            last_seq = item.seq
                            event = item.event
                            if not isinstance(event, TurnEvent) or event.turn_id != turn_id:
                                continue
                            batch.append(item)
                            if event.terminal:
                                self._finished = True
                                break
                        if batch:
                            yield batch
                        if self._finished:
                            break
                    else:
                        # The outbox closed (the session was deleted or the runtime stopped).
                        self._finished = True
                except SubscriberLagged as exc:
                    # Too slow for the live buffer: catch up from the replay buffer.
                    subscription.close()
                    resume = exc.last_seq if exc.last_seq is not None else last_seq
                    subscription = await self._resubscribe(resume)
        finally:
            subscription.close()

    async def __aiter__(self) -> AsyncIterator[TurnEvent]:
        async for item in self.items():
            yield item.event

    async def aclose(self) -> None:
        if self._subscription is not None:
            self._subscription.close()


def reattach_after(outbox: Outbox[Any], after: int | None) -> int | None:
    """Where a client re-attaching after ``after`` (its Last-Event-ID) starts in ``outbox``.

    When the events after ``after`` are no longer kept (a new activation, or too old), from what
    is still buffered, or from now on; the stored messages hold everything that was lost.
    """
    if after is None:
        return None
    oldest = outbox.oldest_seq
    if after > outbox.last_seq or oldest is None:
        return None  # from another activation's future, or nothing buffered: from now on
    if after < oldest - 1:
        return oldest - 1  # older than the buffer (``0`` included): everything still buffered
    return after
