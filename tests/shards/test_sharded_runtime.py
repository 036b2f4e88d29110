"""Sessions sharded over Ray actors: two front ends, one activation per session, re-attach and
abort through the other front end, and a shard that dies mid-turn."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import zlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from opencode_api.actors import (
    BudgetExceededError,
    Done,
    ErrorEvent,
    Runtime,
    SessionBusyError,
    ShardedRuntime,
    TurnEvent,
    TurnRequest,
    open_runtime,
)
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
        # The front end's own stats (the /metrics gauges) are every shard's, summed.
        summed = await b.refresh_stats()  # type: ignore[attr-defined]
        assert (summed.activations, summed.live, summed.busy) == (len(sessions), len(sessions), 0)
        assert b.stats() == summed


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

        # busy=interrupt through the other front end: the running turn is aborted, this one
        # runs next.
        asked = asyncio.Event()
        fake.enqueue(Reply(text="long", hang_after=1, received=asked), Reply(text="interrupting"))
        running = aiter(a.send(session.id, "long again"))
        await asyncio.wait_for(anext(running), 30)
        await asyncio.wait_for(asked.wait(), 30)
        interrupting = await asyncio.wait_for(
            _events(b.send(session.id, "now this", busy="interrupt")), 30
        )
        assert isinstance(interrupting[-1], Done) and interrupting[-1].stop_reason == "stop"
        ended = await asyncio.wait_for(_events(running), 30)
        assert isinstance(ended[-1], Done) and ended[-1].stop_reason == "aborted"


async def test_background_turns_replies_and_edits_through_the_shards(
    ray_cluster: Any, tmp_path: Path, fake: FakeLLMServer, postgres_database_url: str
) -> None:
    async with front_ends(tmp_path, fake, postgres_database_url) as (a, b):
        session = await a.create_session()
        turn_id, status = await a.send_background(TurnRequest(session.id, "in the background"))
        assert status == "running"
        reply = await b.reply(session.id, turn_id, wait=30)  # waited for through the other one
        assert reply.status == "done" and reply.message is not None
        message = await b.get_message(session.id, reply.message.id)
        assert message.parent_id == turn_id
        await a.delete_message(session.id, reply.message.id)
        page = await b.list_messages(session.id)
        assert [m.id for m in page.messages] == [turn_id]

        # Branching through the shards: revert on one front end, seen by the other; a regenerate
        # sent through the first; a fork of what is stored; a budget set through the shard.
        await _events(a.send(session.id, "second"))
        reverted = await b.revert(session.id, turn_id)
        assert reverted.revert is not None
        assert (await a.list_messages(session.id)).messages == []
        assert (await a.unrevert(session.id)).revert is None
        fake.enqueue(Reply(text="regenerated"))
        events = await _events(await a.regenerate(session.id, turn_id, "edited"))
        assert isinstance(events[-1], Done)
        page = await b.list_messages(session.id)
        assert [m.content for m in page.messages] == ["edited", "regenerated"]
        fork = await b.fork(session.id, message_id=page.messages[0].id)
        assert [m.content for m in (await a.list_messages(fork.id)).messages] == ["edited"]
        limited = await b.update_session(session.id, max_cost=0.0)
        assert limited.max_cost == 0.0
        with pytest.raises(BudgetExceededError):
            await _events(a.send(session.id, "over budget"))


async def test_regenerate_asks_the_shard_before_refusing_a_session_as_busy(
    ray_cluster: Any, tmp_path: Path, fake: FakeLLMServer, postgres_database_url: str
) -> None:
    """The bus tells a front end that a session went idle up to a batch window late: a client
    that has read its turn's `done` and regenerates at once gets its turn, not 409, while a turn
    that really runs is still refused."""
    async with front_ends(tmp_path, fake, postgres_database_url, count=1) as (a,):
        session = await a.create_session()
        assert isinstance((await _events(a.send(session.id, "first")))[-1], Done)
        first = (await a.list_messages(session.id)).messages[0]
        stale: dict[str, str] = a._remote_status  # type: ignore[attr-defined]
        stale[session.id] = "busy"  # the turn's idle status, not relayed yet
        fake.enqueue(Reply(text="again"))
        events = await _events(await a.regenerate(session.id, first.id, "first, again"))
        assert isinstance(events[-1], Done) and events[-1].stop_reason == "stop"
        page = await a.list_messages(session.id)
        assert [m.content for m in page.messages] == ["first, again", "again"]

        asked = asyncio.Event()
        fake.enqueue(Reply(text="a long one", hang_after=1, received=asked))
        running = aiter(a.send(session.id, "long"))
        await asyncio.wait_for(anext(running), 30)
        await asyncio.wait_for(asked.wait(), 30)
        stale[session.id] = "busy"  # what the bus says by now, or soon
        with pytest.raises(SessionBusyError):
            await a.regenerate(session.id, page.messages[0].id, "refused")
        assert await a.abort(session.id)
        assert isinstance((await asyncio.wait_for(_events(running), 30))[-1], Done)


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


async def test_a_node_lost_mid_turn(
    ray_cluster: Any, tmp_path: Path, fake: FakeLLMServer, postgres_database_url: str
) -> None:
    """Every shard on one worker node, which is then removed: the running turns end with
    ``interrupted``, nothing stored is lost, and every session takes a new turn on a shard Ray
    restarted on another node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from opencode_api.actors._shard import ShardHost
    from opencode_api.settings import Settings

    node = ray_cluster.add_node(node_ip_address="127.0.0.1", num_cpus=1)
    ray_cluster.wait_for_nodes()
    namespace = f"test-{next(_namespaces)}"
    settings: Settings = make_settings(
        tmp_path,
        fake,
        database_url=postgres_database_url,
        shards=2,
        shard_namespace=namespace,
        turn_lease_ttl=2.0,
    )
    # The shards, created before any front end asks for them (by name), pinned to the node.
    shards = [
        ray.remote(ShardHost)
        .options(  # type: ignore[attr-defined]
            name=f"shard-{index}",
            namespace=namespace,
            lifetime="detached",
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=100_000,
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=True),
        )
        .remote(settings)
        for index in range(2)
    ]
    pids = await asyncio.gather(*(shard.ready.remote() for shard in shards))
    async with open_runtime(settings.model_copy(update={"ray_cluster": ""})) as front:
        sessions = [await front.create_session() for _ in range(4)]
        asked = [asyncio.Event() for _ in sessions]
        fake.enqueue(*(Reply(text="cut short", hang_after=1, received=a) for a in asked))
        streams = [aiter(front.send(s.id, "hello")) for s in sessions]
        for stream in streams:
            await asyncio.wait_for(anext(stream), 30)
        await asyncio.wait_for(asyncio.gather(*(a.wait() for a in asked)), 30)

        # The node goes: its raylet and, as on a machine that is gone, its worker processes (on
        # one machine a simulated node's workers would otherwise outlive its raylet).
        ray_cluster.remove_node(node, allow_graceful=False)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        ends = await asyncio.wait_for(asyncio.gather(*(_events(s) for s in streams)), 10)
        assert all(isinstance(e[-1], ErrorEvent) for e in ends), [e[-1] for e in ends]
        assert {e[-1].error["type"] for e in ends} == {"interrupted"}  # type: ignore[union-attr]

        again = [_events(front.send(s.id, "again")) for s in sessions]
        results = await asyncio.wait_for(asyncio.gather(*again), 30)
        assert all(isinstance(events[-1], Done) for events in results)
        for session in sessions:
            page = await front.list_messages(session.id)
            assert [m.role for m in page.messages] == ["user", "assistant"] * 2
        for shard in front._shards:  # type: ignore[attr-defined]
            ray.kill(shard, no_restart=True)
