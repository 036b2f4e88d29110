"""``ShardHost``: many sessions' actors in one Ray actor process (``serve --ray``).

A shard is a ``Runtime`` like a single server's (local placement, the same store, LLM client and
tools), wrapped in the calls a front end makes. Events leave in batches: every item of one Ray
streaming generator is a list of what was ready at once (``(seq, event)`` pairs), never one Ray
item per event. Ray imports and decorates this class (``_shards.py``); nothing here imports Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from opencode_api.actors._runtime import Runtime
from opencode_api.actors._turn_request import TurnRequest
from opencode_api.settings import Settings
from opencode_api.store import open_store_for

# (seq, event) pairs: one Ray item.
Batch = list[tuple[int, Any]]

# What a front end may ask a shard to run as a plain call (session-scoped commands).
_COMMANDS = frozenset(
    {
        "abort",
        "compact",
        "generate_title",
        "delete_session",
        "delete_message",
        "reply_question",
        "reject_question",
        "status",
        "stats",
    }
)


class ShardHost:
    """One shard: a Runtime opened on first use, and the calls front ends make to it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._runtime: Runtime | None = None
        self._opening = asyncio.Lock()

    async def runtime(self) -> Runtime:
        if self._runtime is None:
            async with self._opening:
                if self._runtime is None:
                    store = open_store_for(self._settings)
                    await store.open()
                    runtime = Runtime(self._settings, store)
                    await runtime.start()
                    self._runtime = runtime
        return self._runtime

    async def ready(self) -> int:
        """Open the runtime now (a front end calls this once per shard at start-up)."""
        import os

        await self.runtime()
        return os.getpid()

    async def command(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if name not in _COMMANDS:
            raise ValueError(f"a shard does not run {name!r}")
        runtime = await self.runtime()
        result = getattr(runtime, name)(*args, **kwargs)
        return await result if asyncio.iscoroutine(result) else result

    async def turn(self, request: TurnRequest) -> AsyncIterator[Any]:
        """The turn's user message id first (request errors raise before it), then batches of
        the session's events until the turn's terminal one."""
        runtime = await self.runtime()
        stream = runtime.send_request(request)
        try:
            await stream.start()
            yield stream.turn_id
            async for batch in _coalesced(stream.batches(), self._settings.shard_batch_window):
                yield batch
        finally:
            await stream.aclose()

    async def events(
        self, session_id: str, user_id: str | None, after: int | None
    ) -> AsyncIterator[Batch]:
        """A session's events after ``after`` (re-attach), then live, in batches; an empty
        batch first, so the caller knows the subscription exists."""
        runtime = await self.runtime()
        async with runtime.subscribe(session_id, user_id=user_id, after=after) as subscription:
            yield []
            async for first in subscription:
                rest = subscription.take_pending()
                yield [(item.seq, item.event) for item in (first, *rest)]

    async def bus(self) -> AsyncIterator[list[Any]]:
        """This shard's bus events (``GET /event``), in batches; an empty batch first."""
        runtime = await self.runtime()
        subscription = runtime.subscribe_bus(max_pending=self._settings.outbox_size)
        try:
            yield []
            async for first in subscription:
                yield [item.event for item in (first, *subscription.take_pending())]
        finally:
            subscription.close()


async def _coalesced(batches: AsyncIterator[list[Any]], window: float) -> AsyncIterator[Batch]:
    """``batches`` as ``(seq, event)`` lists, each holding what arrived within ``window``
    seconds of its first event: every Ray item costs ~0.6 ms of CPU, a few ms of delay less."""
    queue: asyncio.Queue[list[Any] | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for batch in batches:
                queue.put_nowait(batch)
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(pump())
    try:
        ended = False
        while not ended:
            first = await queue.get()
            if first is None:
                break
            items = list(first)
            if window > 0:
                await asyncio.sleep(window)
            while not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    ended = True
                    break
                items.extend(more)
            yield [(item.seq, item.event) for item in items]
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
