"""``Pacer``: the shard's feeds and bus send at once after a quiet spell, at most once per
window under load, and at once when hurried (no Ray needed)."""

from __future__ import annotations

import asyncio

from opencode_api.actors._feed import Pacer


async def _waiting(pacer: Pacer) -> asyncio.Task[None]:
    """A ``wait()`` that is still waiting after the loop ran everything it could."""
    task = asyncio.create_task(pacer.wait())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not task.done()
    return task


async def _just_sent() -> Pacer:
    """An hour's window, one send made: were the first send paced, this would not return."""
    pacer = Pacer(3600.0)
    await pacer.wait()
    pacer.sent()
    return pacer


async def test_the_next_send_within_the_window_waits() -> None:
    (await _waiting(await _just_sent())).cancel()


async def test_no_window_never_waits() -> None:
    pacer = Pacer(0.0)
    for _ in range(3):
        await pacer.wait()
        pacer.sent()


async def test_hurry_ends_the_wait_once() -> None:
    pacer = await _just_sent()
    waiting = await _waiting(pacer)
    pacer.hurry()
    await waiting  # would hang for an hour without the hurry
    pacer.sent()
    (await _waiting(pacer)).cancel()  # a send clears the hurry
