"""``ShardHost``: many sessions' actors in one Ray actor process (``serve --ray``).

A shard is a ``Runtime`` like a single server's (local placement, the same store, LLM client and
tools), wrapped in the calls a front end makes. Events leave through one feed per front end
(``_feed.py``): every Ray item carries what was ready for that front end, for all its
streams. Ray imports and decorates this class (``_sharded.py``); nothing here imports Ray.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from opencode_api._heap import settle_heap
from opencode_api.actors._feed import Pacer, ShardFeeds
from opencode_api.actors._runtime import Runtime
from opencode_api.actors._turn_request import TurnRequest
from opencode_api.actors._turn_stream import TurnStream
from opencode_api.settings import Settings
from opencode_api.store import open_store_for

# What a front end may ask a shard to run as a plain call (session-scoped commands).
_COMMANDS = frozenset(
    {
        "abort",
        "compact",
        "generate_title",
        "delete_session",
        "delete_message",
        "revert",
        "unrevert",
        "update_session",
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
        self._feeds = ShardFeeds(settings.shard_batch_window)

    async def runtime(self) -> Runtime:
        if self._runtime is None:
            async with self._opening:
                if self._runtime is None:
                    store = open_store_for(self._settings)
                    await store.open()
                    runtime = Runtime(self._settings, store)
                    await runtime.start()
                    self._runtime = runtime
                    # A shard serves like a server process: the same collector settings.
                    settle_heap()
        return self._runtime

    async def ready(self) -> int:
        """Open the runtime now (a front end calls this once per shard at start-up)."""
        await self.runtime()
        return os.getpid()

    async def command(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if name not in _COMMANDS:
            raise ValueError(f"a shard does not run {name!r}")
        runtime = await self.runtime()
        result = getattr(runtime, name)(*args, **kwargs)
        return await result if asyncio.iscoroutine(result) else result

    # -- the feed: every stream a front end has open here, in one Ray streaming call --------

    async def feed(self, front: str) -> AsyncIterator[list[tuple[str, Any]]]:
        """``[(stream key, batch or None at its end), ...]`` per Ray item; ``[]`` first."""
        async for items in self._feeds.feed(front):
            yield items

    async def start_turn(self, front: str, key: str, request: TurnRequest) -> str:
        """Enqueue the turn (request errors raise here) and stream its events as ``key``."""
        runtime = await self.runtime()
        stream = runtime.send_request(request)
        await stream.start()
        self._feeds.pump(front, key, _closing(stream))
        assert stream.turn_id is not None
        return stream.turn_id

    async def start_events(
        self, front: str, key: str, session_id: str, user_id: str | None, after: int | None
    ) -> None:
        """Re-attach: the session's events after ``after``, then live, streamed as ``key``."""
        runtime = await self.runtime()
        attached = runtime.subscribe(session_id, user_id=user_id, after=after)
        subscription = await attached.__aenter__()  # not found, forbidden: raised here

        async def batches() -> AsyncIterator[list[Any]]:
            try:
                async for first in subscription:
                    yield [first, *subscription.take_pending()]
            finally:
                await attached.__aexit__(None, None, None)

        self._feeds.pump(front, key, batches())

    async def stop_stream(self, front: str, key: str) -> None:
        self._feeds.stop(front, key)

    async def bus(self) -> AsyncIterator[list[Any]]:
        """This shard's bus events (``GET /event``), in batches; an empty batch first."""
        runtime = await self.runtime()
        subscription = runtime.subscribe_bus(max_pending=self._settings.outbox_size)
        pacer = Pacer(self._settings.shard_batch_window)
        try:
            yield []
            async for first in subscription:
                await pacer.wait()
                batch = [item.event for item in (first, *subscription.take_pending())]
                pacer.sent()
                yield batch
        finally:
            subscription.close()


async def _closing(stream: TurnStream) -> AsyncIterator[list[Any]]:
    try:
        async for batch in stream.batches():
            yield batch
    finally:
        await stream.aclose()
