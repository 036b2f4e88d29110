"""``Pacer``: the shard's feeds and bus send at once after a quiet spell, and at most once per
window under load (no Ray needed)."""

from __future__ import annotations

import asyncio

from opencode_api.actors._feed import Pacer


async def test_a_send_after_a_quiet_spell_waits_for_no_timer() -> None:
    pacer = Pacer(3600.0)
    # An hour's window: were the first send paced, this would not return within the test.
    await pacer.wait()
    pacer.sent()


async def test_the_next_send_within_the_window_waits() -> None:
    pacer = Pacer(3600.0)
    await pacer.wait()
    pacer.sent()
    waiting = asyncio.create_task(pacer.wait())
    for _ in range(10):
        await asyncio.sleep(0)  # let the task run as far as it can
    assert not waiting.done()
    waiting.cancel()


async def test_no_window_never_waits() -> None:
    pacer = Pacer(0.0)
    for _ in range(3):
        await pacer.wait()
        pacer.sent()


async def test_hurry_ends_the_wait_once() -> None:
    pacer = Pacer(3600.0)
    await pacer.wait()
    pacer.sent()
    waiting = asyncio.create_task(pacer.wait())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not waiting.done()
    pacer.hurry()
    await waiting  # would hang for an hour without the hurry
    pacer.sent()
    again = asyncio.create_task(pacer.wait())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not again.done()  # a send clears the hurry
    again.cancel()
