"""Sessions sharded over Ray actors: two front ends, one activation per session, re-attach and
abort through the other front end, and a shard that dies mid-turn."""

from __future__ import annotations

import asyncio
import itertools
import zlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from opencode_api.actors import Done, ErrorEvent, Runtime, ShardedRuntime, TurnEvent, open_runtime
from opencode_api.testing import FakeLLMServer, Reply
from tests.actors.conftest import make_settings

pytestmark = pytest.mark.postgres

_namespaces = itertools.count()


@asynccontextmanager
async def front_ends(
    tmp_path: Path, fake: FakeLLMServer, database_url: str, count: int = 2, **overrides: Any
) -> AsyncIterator[list[Runtime]]:
    settings = make_settings(
        tmp_path,
        fake,
        database_url=database_url,
        ray_cluster="",
        shards=3,
        # One namespace per test: its own shards, started with its own database and provider.
        shard_namespace=f"test-{next(_namespaces)}",
        turn_lease_ttl=2.0,
        **overrides,
    )
    async with AsyncExitStack() as stack:
        runtimes = [await stack.enter_async_context(open_runtime(settings)) for _ in range(count)]
        try:
            yield runtimes
        finally:
            import ray

            for shard in runtimes[0]._shards:  # type: ignore[attr-defined]
                ray.kill(shard, no_restart=True)


async def _events(stream: AsyncIterator[TurnEvent]) -> list[TurnEvent]:
    return [event async for event in stream]


async def test_turns_through_two_front_ends_one_activation_per_session(
    ray_cluster: Any, tmp_path: Path, fake: FakeLLMServer, postgres_database_url: str
) -> None:
    async with front_ends(tmp_path, fake, postgres_database_url) as (a, b):
        assert isinstance(a, ShardedRuntime)
        sessions = [await a.create_session() for _ in range(6)]
        # Every session gets a turn through each front end at once: each turn is queued behind
        # the other in the session's one actor, wherever it was sent.
        turns = [
            _events(front.send(session.id, f"hello from {name}"))
            for session in sessions
            for front, name in ((a, "a"), (b, "b"))
        ]
        results = await asyncio.wait_for(asyncio.gather(*turns), 60)
        assert all(isinstance(events[-1], Done) for events in results)
        for session in sessions:
            page = await b.list_messages(session.id)
            assert [m.role for m in page.messages] == ["user", "assistant"] * 2
            assert all(m.status == "completed" for m in page.messages)
        # Each shard activated each of its sessions once, whichever front end sent the turns.
        shards = a._shards  # type: ignore[attr-defined]
        for index, shard in enumerate(shards):
            mine = [s for s in sessions if zlib.crc32(s.id.encode()) % len(shards) == index]
            stats = await shard.command.remote("stats", (), {})
            assert (stats.activations, stats.live) == (len(mine), len(mine))


async def test_reattach_and_abort_through_the_other_front_end(
    ray_cluster: Any, tmp_path: Path, fake: FakeLLMServer, postgres_database_url: str
) -> None:
    async with front_ends(tmp_path, fake, postgres_database_url) as (a, b):
        session = await a.create_session()
        asked = asyncio.Event()
        fake.enqueue(Reply(text="one two three four five six", hang_after=2, received=asked))
        stream = aiter(a.send(session.id, "a long answer please"))
        first = await asyncio.wait_for(anext(stream), 30)
        await asyncio.wait_for(asked.wait(), 30)
        # Re-attached through the other front end, from the start of the turn.
        async with b.subscribe(session.id, after=0) as reattached:
            seen = await asyncio.wait_for(anext(aiter(reattached)), 30)
            assert seen.event.turn_id == first.turn_id
            assert b.status(session.id) == "busy" or a.status(session.id) == "busy"
            assert await asyncio.wait_for(b.abort(session.id), 30)
        rest = await asyncio.wait_for(_events(stream), 30)
        assert isinstance(rest[-1], Done) and rest[-1].stop_reason == "aborted"


async def test_a_shard_that_dies_mid_turn(
    ray_cluster: Any, tmp_path: Path, fake: FakeLLMServer, postgres_database_url: str
) -> None:
    import ray

    async with front_ends(tmp_path, fake, postgres_database_url, count=1) as (front,):
        session = await front.create_session()
        asked = asyncio.Event()
        fake.enqueue(Reply(text="never finished", hang_after=1, received=asked))
        stream = aiter(front.send(session.id, "hello"))
        await asyncio.wait_for(anext(stream), 30)
        await asyncio.wait_for(asked.wait(), 30)  # the turn is inside its provider call
        ray.kill(front._shard(session.id), no_restart=False)  # type: ignore[attr-defined]
        rest = await asyncio.wait_for(_events(stream), 10)
        assert isinstance(rest[-1], ErrorEvent) and rest[-1].error["type"] == "interrupted"
        # Ray restarted the shard: the session takes a new turn, and the lost one is stored as
        # interrupted once the dead process's lease lapsed.
        events = await asyncio.wait_for(_events(front.send(session.id, "again")), 30)
        assert isinstance(events[-1], Done)
        page = await front.list_messages(session.id)
        assert [m.role for m in page.messages] == ["user", "assistant", "user", "assistant"]
        assert page.messages[-1].status == "completed"
