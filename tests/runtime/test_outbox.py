"""The outbox on its own: numbering, replay, lagging subscribers, close."""

from __future__ import annotations

import asyncio

import pytest

from opencode_api.runtime import Outbox, OutboxItem, SubscriberLagged


async def read(subscription: object, count: int) -> list[int]:
    seqs = []
    async for item in subscription:  # type: ignore[attr-defined]
        seqs.append(item.seq)
        if len(seqs) == count:
            break
    return seqs


def test_publish_numbers_events_from_start_seq() -> None:
    outbox: Outbox[str] = Outbox(start_seq=41)
    assert outbox.last_seq == 41
    assert [outbox.publish("a"), outbox.publish("b")] == [42, 43]
    assert outbox.last_seq == 43


async def test_subscribe_from_now_sees_only_new_events() -> None:
    outbox: Outbox[str] = Outbox()
    outbox.publish("old")
    subscription = outbox.subscribe()
    assert outbox.subscriber_count == 1
    outbox.publish("new")
    assert await anext(subscription) == OutboxItem(2, "new")
    subscription.close()
    assert outbox.subscriber_count == 0


async def test_resubscribe_after_seq_replays_exactly_the_missed_events() -> None:
    outbox: Outbox[int] = Outbox(capacity=100)
    for i in range(1, 11):
        outbox.publish(i)
    async with outbox.subscribe(after=0) as first:
        assert await read(first, 4) == [1, 2, 3, 4]
        resume_after = first.last_seq
    assert resume_after == 4
    for i in range(11, 16):
        outbox.publish(i)
    second = outbox.subscribe(after=resume_after)
    assert await read(second, 11) == list(range(5, 16))
    outbox.publish(16)
    item = await anext(second)
    assert (item.seq, item.event) == (16, 16)


async def test_resubscribe_after_evicted_events_raises_lagged() -> None:
    outbox: Outbox[int] = Outbox(capacity=5)
    for i in range(10):
        outbox.publish(i)
    subscription = outbox.subscribe(after=2)
    with pytest.raises(SubscriberLagged) as raised:
        await anext(subscription)
    assert (raised.value.last_seq, raised.value.oldest_available) == (2, 6)
    with pytest.raises(StopAsyncIteration):
        await anext(subscription)
    # Still in the buffer: fine.
    assert await read(outbox.subscribe(after=5), 5) == [6, 7, 8, 9, 10]


async def test_replay_does_not_count_against_max_pending() -> None:
    outbox: Outbox[int] = Outbox(capacity=100)
    for i in range(50):
        outbox.publish(i)
    subscription = outbox.subscribe(after=0, max_pending=4)
    for i in range(4):
        outbox.publish(i)
    assert await read(subscription, 54) == list(range(1, 55))


async def test_slow_subscriber_is_cut_off_without_slowing_publish() -> None:
    outbox: Outbox[int] = Outbox(capacity=100)
    slow = outbox.subscribe(max_pending=3)
    fast = outbox.subscribe(max_pending=100)
    for i in range(10):
        outbox.publish(i)
    assert outbox.subscriber_count == 1
    with pytest.raises(SubscriberLagged) as raised:
        await anext(slow)
    assert raised.value.last_seq == 0
    assert await read(fast, 10) == list(range(1, 11))
    assert await read(outbox.subscribe(after=raised.value.last_seq), 10) == list(range(1, 11))


async def test_close_lets_subscribers_drain_then_stop() -> None:
    outbox: Outbox[int] = Outbox()
    subscription = outbox.subscribe()
    waiting = outbox.subscribe()
    reader = asyncio.create_task(read(waiting, 100))
    outbox.publish(1)
    outbox.publish(2)
    outbox.close()
    assert [item.seq async for item in subscription] == [1, 2]
    assert await reader == [1, 2]
    # Subscribing to a closed outbox replays what is kept, then ends.
    assert [item.seq async for item in outbox.subscribe(after=1)] == [2]
    assert outbox.subscriber_count == 0


def test_invalid_sizes_are_rejected() -> None:
    with pytest.raises(ValueError):
        Outbox(capacity=0)
    with pytest.raises(ValueError):
        Outbox().subscribe(max_pending=0)


async def test_take_pending_hands_over_what_arrived_together() -> None:
    outbox: Outbox[str] = Outbox(capacity=16)
    for event in "ab":
        outbox.publish(event)
    # Replayed (a, b) and live (c, d) events come out together, in order, once.
    subscription = outbox.subscribe(after=0, max_pending=2)
    for event in "cd":
        outbox.publish(event)
    first = await anext(subscription)
    rest = subscription.take_pending()
    assert [first.event, *(item.event for item in rest)] == ["a", "b", "c", "d"]
    assert subscription.take_pending() == [] and subscription.pending == 0
    assert subscription.last_seq == 4
    # Replay no longer shields anything: two new live events fill max_pending, a third cuts off.
    for event in "efg":
        outbox.publish(event)
    with pytest.raises(SubscriberLagged):
        await anext(subscription)
