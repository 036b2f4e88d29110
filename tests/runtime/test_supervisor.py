"""The supervisor and actor refs: ordering, concurrency, control lane, activation races, crashes,
passivation, the live-actor cap and shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from opencode_api.runtime import (
    ActivationError,
    Actor,
    ActorDeadError,
    ActorLimitReached,
    AskTimeout,
    FakeClock,
    MailboxFull,
    OutboxItem,
    SubscriberLagged,
    Subscription,
    Supervisor,
    SupervisorClosed,
    SupervisorHooks,
)

from ._actors import Journal, Recorder, Refused, recorder_factory


async def take(subscription: Subscription[Any], count: int) -> list[OutboxItem[Any]]:
    items = []
    async for item in subscription:
        items.append(item)
        if len(items) == count:
            break
    return items


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=100.0)


@pytest.fixture
async def supervisor(journal: Journal, clock: FakeClock) -> AsyncIterator[Supervisor]:
    async with Supervisor(
        recorder_factory(journal), mailbox_size=1000, clock=clock, idle_ttl=10.0, reap_interval=3600
    ) as supervisor:
        yield supervisor


async def test_messages_are_handled_in_order(supervisor: Supervisor, journal: Journal) -> None:
    ref = await supervisor.get_or_activate("a")
    for i in range(50):
        ref.tell(i)
    assert await ref.ask("last") == 51
    assert [message for _, message in journal.handled] == [*range(50), "last"]


async def test_two_actors_run_concurrently(supervisor: Supervisor, journal: Journal) -> None:
    a = await supervisor.get_or_activate("a")
    b = await supervisor.get_or_activate("b")
    waits = [asyncio.create_task(a.ask("wait")), asyncio.create_task(b.ask("wait"))]
    # Both handlers are blocked at the same time: they do not share one lane.
    await journal.waiting_in("a").wait()
    await journal.waiting_in("b").wait()
    assert a.is_busy and b.is_busy
    assert supervisor.stats().busy == 2
    a.tell_control("release")
    b.tell_control("release")
    assert await asyncio.gather(*waits) == ["released", "released"]


async def test_control_message_reaches_a_handler_that_awaits(
    supervisor: Supervisor, journal: Journal
) -> None:
    ref = await supervisor.get_or_activate("a")
    turn = asyncio.create_task(ref.ask("wait"))
    await journal.waiting_in("a").wait()
    ref.tell("queued")
    assert ref.mailbox_depth == 1
    assert await ref.ask_control("status") == ("control", "status", 0)
    assert await ref.ask_control("abort") == "aborting"
    assert await turn == "aborted"
    assert await ref.ask("next") == 2  # "queued" was 1


async def test_control_error_is_returned_not_a_crash(
    supervisor: Supervisor, journal: Journal
) -> None:
    ref = await supervisor.get_or_activate("a")
    with pytest.raises(RuntimeError, match="control failed"):
        await ref.ask_control("fail")
    ref.tell_control("fail")  # only logged
    assert await ref.ask("x") == 1
    assert journal.built == 1
    assert supervisor.stats().restarts == 0


async def test_1000_racing_first_messages_make_one_activation(journal: Journal) -> None:
    async def slow_factory(actor_id: str) -> Actor:
        journal.built += 1
        for _ in range(5):
            await asyncio.sleep(0)  # yield so the racing callers pile up
        return Recorder(journal)

    async with Supervisor(slow_factory, mailbox_size=1000) as supervisor:

        async def first_message(i: int) -> tuple[Any, int]:
            ref = await supervisor.get_or_activate("one")
            return ref, await ref.ask(("msg", i))

        results = await asyncio.gather(*(first_message(i) for i in range(1000)))
        assert journal.built == 1
        assert supervisor.stats().activations == 1
        assert len({id(ref) for ref, _ in results}) == 1
        assert sorted(count for _, count in results) == list(range(1, 1001))


async def test_crashed_actor_is_restarted_and_the_next_message_works(
    supervisor: Supervisor, journal: Journal
) -> None:
    ref = await supervisor.get_or_activate("a")
    assert await ref.ask("x") == 1
    crash = asyncio.create_task(ref.ask("boom"))
    after = asyncio.create_task(ref.ask("y"))
    with pytest.raises(ValueError, match="boom"):
        await crash
    assert await after == 1  # a fresh instance: its state starts over
    assert ref.is_alive and supervisor.get("a") is ref
    assert journal.built == 2
    assert journal.stopped == ["a"]  # the crashed instance got its on_stop
    assert supervisor.stats().restarts == 1


async def test_answer_errors_go_to_the_asker_and_are_not_crashes(
    journal: Journal, clock: FakeClock
) -> None:
    async with Supervisor(
        recorder_factory(journal), clock=clock, max_restarts=1, restart_window=5.0
    ) as supervisor:
        ref = await supervisor.get_or_activate("a")
        assert await ref.ask("x") == 1
        # Many refusals in a row, far past the restart intensity: each is only an answer.
        for _ in range(5):
            with pytest.raises(Refused):
                await ref.ask("refuse")
        ref.tell("refuse")  # nobody to answer: logged, still not a crash
        assert await ref.ask("y") == 2  # the same instance: its state went on
        assert ref.is_alive
        assert journal.built == 1
        assert supervisor.stats().restarts == 0


async def test_crash_loop_stops_the_actor_and_fails_pending_asks(
    journal: Journal, clock: FakeClock
) -> None:
    async with Supervisor(
        recorder_factory(journal), clock=clock, max_restarts=2, restart_window=5.0
    ) as supervisor:
        ref = await supervisor.get_or_activate("a")
        # Crashes spread over more than the window do not add up.
        for _ in range(4):
            with pytest.raises(ValueError):
                await ref.ask("boom")
            clock.advance(3.0)
        assert ref.is_alive
        clock.advance(10.0)
        # max_restarts=2: two restarts, and the third crash within the window stops the actor.
        crashes = [asyncio.create_task(ref.ask("boom")) for _ in range(3)]
        pending = [asyncio.create_task(ref.ask(i)) for i in range(3)]
        for crash in crashes:
            with pytest.raises(ValueError):
                await crash
        for ask in pending:
            with pytest.raises(ActorDeadError):
                await ask
        assert not ref.is_alive
        assert supervisor.get("a") is None
        with pytest.raises(ActorDeadError):
            ref.tell("late")
        with pytest.raises(ActorDeadError):
            await ref.ask("late")
        assert supervisor.stats().stopped == 1
        fresh = await supervisor.get_or_activate("a")
        assert fresh is not ref
        assert await fresh.ask("x") == 1


async def test_idle_actor_is_passivated_and_reactivated(
    supervisor: Supervisor, journal: Journal, clock: FakeClock
) -> None:
    ref = await supervisor.get_or_activate("a")
    assert await ref.ask("x") == 1
    clock.advance(5.0)
    assert await supervisor.passivate_idle() == 0
    clock.advance(6.0)
    assert await supervisor.passivate_idle() == 1
    assert journal.stopped == ["a"]
    assert not ref.is_alive and supervisor.get("a") is None
    assert ref.outbox.closed
    with pytest.raises(ActorDeadError):
        ref.tell("x")
    again = await supervisor.get_or_activate("a")
    assert again is not ref and await again.ask("x") == 1
    # Resolving the id restarts its idle clock.
    clock.advance(9.0)
    assert await supervisor.get_or_activate("a") is again
    clock.advance(9.0)
    assert await supervisor.passivate_idle() == 0
    stats = supervisor.stats()
    assert (stats.activations, stats.passivations, stats.live) == (2, 1, 1)


async def test_busy_subscribed_or_unwilling_actors_are_not_passivated(
    supervisor: Supervisor, journal: Journal, clock: FakeClock
) -> None:
    busy = await supervisor.get_or_activate("busy")
    turn = asyncio.create_task(busy.ask("wait"))
    await journal.waiting_in("busy").wait()
    watched = await supervisor.get_or_activate("watched")
    subscription = watched.subscribe()
    unwilling = await supervisor.get_or_activate("unwilling")
    await unwilling.ask("x")
    journal.instances["unwilling"].passivable = False
    clock.advance(60.0)
    assert await supervisor.passivate_idle() == 0
    subscription.close()
    busy.tell_control("release")
    assert await turn == "released"
    clock.advance(60.0)
    assert await supervisor.passivate_idle() == 2
    assert supervisor.ids() == ["unwilling"]


async def test_live_actor_cap_passivates_lru_idle_then_refuses(journal: Journal) -> None:
    async with Supervisor(recorder_factory(journal), max_actors=3) as supervisor:
        a = await supervisor.get_or_activate("a")
        b = await supervisor.get_or_activate("b")
        c = await supervisor.get_or_activate("c")
        await a.ask("x")  # a is now the most recently used
        d = await supervisor.get_or_activate("d")
        assert sorted(supervisor.ids()) == ["a", "c", "d"] and not b.is_alive
        turns = [asyncio.create_task(ref.ask("wait")) for ref in (a, c, d)]
        for actor_id in "acd":
            await journal.waiting_in(actor_id).wait()
        with pytest.raises(ActorLimitReached):
            await supervisor.get_or_activate("e")
        for ref in (a, c, d):
            ref.tell_control("release")
        await asyncio.gather(*turns)
        e = await supervisor.get_or_activate("e")
        assert e.is_alive and len(supervisor) == 3


async def test_shutdown_lets_running_handlers_finish_and_fails_queued(
    journal: Journal,
) -> None:
    supervisor = Supervisor(recorder_factory(journal))
    await supervisor.start()
    ref = await supervisor.get_or_activate("a")
    turn = asyncio.create_task(ref.ask("wait"))
    queued = asyncio.create_task(ref.ask("queued"))
    await journal.waiting_in("a").wait()
    shutdown = asyncio.create_task(supervisor.shutdown(grace=60.0))
    # The queued ask fails as soon as the shutdown begins ...
    with pytest.raises(ActorDeadError):
        await queued
    with pytest.raises(SupervisorClosed):
        ref.tell("late")
    with pytest.raises(SupervisorClosed):
        await supervisor.get_or_activate("b")
    # ... while the running handler may still be told things on the control lane and finish.
    assert await ref.ask_control("release") == "releasing"
    assert await turn == "released"
    await shutdown
    assert journal.stopped == ["a"] and journal.cancelled == []
    assert ref.outbox.closed
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_shutdown_cancels_handlers_after_grace(journal: Journal) -> None:
    supervisor = Supervisor(recorder_factory(journal), idle_ttl=1.0)
    await supervisor.start()
    refs = [await supervisor.get_or_activate(f"a{i}") for i in range(3)]
    turns = [asyncio.create_task(ref.ask("wait")) for ref in refs]
    subscription = refs[0].subscribe()
    for ref in refs:
        await journal.waiting_in(ref.actor_id).wait()
    await supervisor.shutdown(grace=0)
    for turn in turns:
        with pytest.raises(ActorDeadError):
            await turn
    assert sorted(journal.cancelled) == ["a0", "a1", "a2"]
    assert sorted(journal.stopped) == ["a0", "a1", "a2"]
    assert [item async for item in subscription] == []
    assert len(supervisor) == 0
    # Nothing of the runtime is left: no lane task, no reaper, no owner task.
    assert asyncio.all_tasks() == {asyncio.current_task()}
    await supervisor.shutdown()  # idempotent


async def test_stop_one_actor(supervisor: Supervisor, journal: Journal) -> None:
    ref = await supervisor.get_or_activate("a")
    other = await supervisor.get_or_activate("b")
    turn = asyncio.create_task(ref.ask("wait"))
    queued = asyncio.create_task(ref.ask("queued"))
    await journal.waiting_in("a").wait()
    assert await supervisor.stop("a") is True
    for ask in (turn, queued):
        with pytest.raises(ActorDeadError):
            await ask
    assert journal.cancelled == ["a"] and journal.stopped == ["a"]
    assert await supervisor.stop("a") is False
    assert await other.ask("x") == 1
    with pytest.raises(ActorDeadError):
        ref.tell_control("release")


async def test_slow_subscriber_is_cut_off_while_fast_one_and_actor_continue(
    supervisor: Supervisor,
) -> None:
    ref = await supervisor.get_or_activate("a")
    slow = ref.subscribe(max_pending=8)
    fast = ref.subscribe(max_pending=8)

    async def read_all() -> list[int]:
        return [item.event for item in await take(fast, 200)]

    reader = asyncio.create_task(read_all())
    assert await ref.ask(("burst", 200)) == 200
    assert await reader == list(range(200))
    with pytest.raises(SubscriberLagged) as raised:
        await anext(slow)
    assert raised.value.last_seq == 0
    # It resumes from its last id and gets exactly what it missed.
    resumed = ref.subscribe(after=raised.value.last_seq, max_pending=8)
    replayed = [item.seq for item in await take(resumed, 200)]
    assert replayed == list(range(1, 201))


async def test_mailbox_full_and_ask_timeout(journal: Journal) -> None:
    async with Supervisor(recorder_factory(journal), mailbox_size=2) as supervisor:
        ref = await supervisor.get_or_activate("a")
        turn = asyncio.create_task(ref.ask("wait"))
        await journal.waiting_in("a").wait()
        ref.tell(1)
        ref.tell(2)
        assert ref.mailbox_depth == 2 and supervisor.stats().mailbox_depths == {"a": 2}
        with pytest.raises(MailboxFull):
            ref.tell(3)
        ref.tell_control("release")
        assert await turn == "released"
        assert await ref.ask("after") == 3


async def test_ask_timeout(supervisor: Supervisor, journal: Journal) -> None:
    ref = await supervisor.get_or_activate("a")
    turn = asyncio.create_task(ref.ask("wait"))
    await journal.waiting_in("a").wait()
    with pytest.raises(AskTimeout):
        await ref.ask("behind the turn", timeout=0.01)
    with pytest.raises(TimeoutError):  # AskTimeout is also a TimeoutError
        await ref.ask("behind the turn", timeout=0.01)
    ref.tell_control("release")
    assert await turn == "released"


async def test_activation_failure_is_reported_to_every_racer() -> None:
    calls = 0

    async def broken(actor_id: str) -> Actor:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise OSError("storage down")

    async with Supervisor(broken) as supervisor:
        results = await asyncio.gather(
            *(supervisor.get_or_activate("a") for _ in range(10)), return_exceptions=True
        )
        assert calls == 1
        assert all(isinstance(result, ActivationError) for result in results)
        assert all(isinstance(result.__cause__, OSError) for result in results)  # type: ignore[union-attr]
        assert len(supervisor) == 0


async def test_hooks_and_stats(journal: Journal, clock: FakeClock) -> None:
    events: list[tuple[str, str]] = []

    class Hooks(SupervisorHooks):
        def on_activate(self, actor_id: str) -> None:
            events.append(("activate", actor_id))

        def on_passivate(self, actor_id: str) -> None:
            events.append(("passivate", actor_id))

        def on_restart(self, actor_id: str) -> None:
            events.append(("restart", actor_id))

    async with Supervisor(
        recorder_factory(journal), clock=clock, idle_ttl=1.0, hooks=Hooks(), reap_interval=3600
    ) as supervisor:
        ref = await supervisor.get_or_activate("a")
        with pytest.raises(ValueError):
            await ref.ask("boom")
        clock.advance(2.0)
        await supervisor.passivate_idle()
        assert events == [("activate", "a"), ("restart", "a"), ("passivate", "a")]
        stats = supervisor.stats()
        assert (stats.live, stats.activations, stats.restarts, stats.passivations) == (0, 1, 1, 1)


async def test_cancelled_activator_hands_over_to_a_waiting_caller(journal: Journal) -> None:
    gate = asyncio.Event()

    async def gated(actor_id: str) -> Actor:
        journal.built += 1
        if journal.built == 1:
            await gate.wait()  # the first activation never finishes: its caller is cancelled
        return Recorder(journal)

    async with Supervisor(gated) as supervisor:
        first = asyncio.create_task(supervisor.get_or_activate("a"))
        second = asyncio.create_task(supervisor.get_or_activate("a"))
        await asyncio.sleep(0)  # both callers are now inside get_or_activate
        first.cancel()
        ref = await second
        assert first.cancelled() and ref.is_alive
        assert journal.built == 2 and supervisor.stats().activations == 1


async def test_failing_on_start_and_closed_supervisor(journal: Journal) -> None:
    class Unstartable(Recorder):
        async def on_start(self) -> None:
            raise LookupError("no such session")

    async def factory(actor_id: str) -> Actor:
        return Unstartable(journal)

    supervisor = Supervisor(factory)
    async with supervisor:
        with pytest.raises(ActivationError) as raised:
            await supervisor.get_or_activate("a")
        assert isinstance(raised.value.__cause__, LookupError)
        assert supervisor.get("a") is None and journal.stopped == []
    with pytest.raises(SupervisorClosed):
        await supervisor.get_or_activate("a")
    with pytest.raises(SupervisorClosed):
        await supervisor.start()


async def test_control_message_during_a_restart_reaches_the_new_instance(
    journal: Journal,
) -> None:
    rebuild = asyncio.Event()
    rebuilding = asyncio.Event()

    async def factory(actor_id: str) -> Actor:
        journal.built += 1
        if journal.built == 2:
            rebuilding.set()
            await rebuild.wait()
        return Recorder(journal)

    async with Supervisor(factory) as supervisor:
        ref = await supervisor.get_or_activate("a")
        ref.tell("x")
        assert await ref.ask("x") == 2
        with capture_logs() as logs:
            crash = asyncio.create_task(ref.ask("boom"))
            await rebuilding.wait()
            status = asyncio.create_task(ref.ask_control("status"))
            queued = asyncio.create_task(ref.ask("y"))
            rebuild.set()
            with pytest.raises(ValueError):
                await crash
            # Answered by the new instance (count 0 or 1; the old one had counted 2).
            assert await status in {("control", "status", 0), ("control", "status", 1)}
            assert await queued == 1
        assert [(log["event"], log["actor_id"]) for log in logs] == [("actor crashed", "a")]


async def test_stop_with_grace_lets_the_running_handler_finish(
    supervisor: Supervisor, journal: Journal
) -> None:
    ref = await supervisor.get_or_activate("a")
    turn = asyncio.create_task(ref.ask("wait"))
    await journal.waiting_in("a").wait()
    stop = asyncio.create_task(supervisor.stop("a", grace=60.0))
    # Stopping refuses new ordinary messages at once; the control lane stays open meanwhile.
    await asyncio.sleep(0)  # one step: the stop task begins and refuses ordinary messages
    assert not ref.is_alive
    with pytest.raises(ActorDeadError):
        ref.tell("late")
    ref.tell_control("release")
    assert await turn == "released"
    assert await stop is True
    assert journal.cancelled == [] and journal.stopped == ["a"]
