"""The Store contract, run against every backend (ids: sqlite, postgres, supabase)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest

from opencode_api.store import (
    CompactionState,
    Message,
    Owner,
    Part,
    PostgresStore,
    Question,
    QuestionItem,
    QuestionOption,
    Session,
    StepRecord,
    Store,
    StoreConflict,
    StoreError,
    StoreNotOpen,
    SupabaseStore,
    Todo,
    Usage,
)
from opencode_api.store._models import utcnow
from tests.store.conftest import MakeStore

_ids = count()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def uid(prefix: str) -> str:
    return f"{prefix}_{next(_ids):08d}"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def new_session(store: Store, user_id: str | None = None, **fields: Any) -> Session:
    return await store.create_session(Session(id=uid("ses"), user_id=user_id, **fields))


def user_message(session_id: str, i: int, **fields: Any) -> Message:
    mid = uid("msg")
    return Message(
        id=mid,
        session_id=session_id,
        role="user",
        content=f"m{i}",
        created_at=at(i),
        parts=[
            Part(
                id=uid("prt"),
                message_id=mid,
                session_id=session_id,
                type="text",
                content=f"m{i}",
                created_at=at(i),
            )
        ],
        **fields,
    )


# -- sessions -------------------------------------------------------------------------------------
async def test_session_crud(store: Store) -> None:
    a = await new_session(
        store,
        title="a",
        provider_id="openai",
        model_id="gpt-4o-mini",
        system="be brief",
        created_at=at(0),
        updated_at=at(0),
    )
    b = await new_session(store, title="b", created_at=at(1), updated_at=at(1))
    got = await store.get_session(a.id)
    assert got == a
    assert [s.id for s in await store.list_sessions()] == [b.id, a.id]
    updated = await store.update_session(a.id, title="renamed", status="busy")
    assert updated is not None
    assert (updated.title, updated.status, updated.model_id) == ("renamed", "busy", "gpt-4o-mini")
    assert updated.updated_at > at(1)
    assert [s.id for s in await store.list_sessions()] == [a.id, b.id]
    assert [s.id for s in await store.list_sessions(limit=1)] == [a.id]
    assert [s.id for s in await store.list_sessions(limit=1, offset=1)] == [b.id]
    assert [s.id for s in await store.list_sessions(offset=1)] == [b.id]
    assert await store.delete_session(a.id) is True
    assert await store.get_session(a.id) is None
    assert await store.delete_session(a.id) is False
    assert await store.update_session(a.id, title="x") is None
    with pytest.raises(StoreConflict):
        await store.create_session(b)


async def test_user_scoping(store: Store) -> None:
    mine = await new_session(store, user_id="alice")
    theirs = await new_session(store, user_id="bob")
    await store.append_message(user_message(mine.id, 0))
    assert await store.get_session(mine.id, user_id="bob") is None
    got = await store.get_session(mine.id, user_id="alice")
    assert got is not None and got.id == mine.id and got.message_count == 1
    assert [s.id for s in await store.list_sessions(user_id="alice")] == [mine.id]
    assert {s.id for s in await store.list_sessions()} == {mine.id, theirs.id}
    assert await store.update_session(mine.id, user_id="bob", title="x") is None
    assert await store.list_messages(mine.id, user_id="bob") is None
    assert await store.get_session_cost(mine.id, user_id="bob") is None
    assert await store.delete_session(mine.id, user_id="bob") is False
    page = await store.list_messages(mine.id, user_id="alice")
    assert page is not None and page.total_count == 1
    assert await store.delete_session(mine.id, user_id="alice") is True


# -- messages -------------------------------------------------------------------------------------
async def test_append_get_and_paginate(store: Store) -> None:
    s = await new_session(store)
    sent = [user_message(s.id, i) for i in range(7)]
    for m in sent:
        await store.append_message(m)
    got = await store.get_message(sent[3].id)
    assert got == sent[3]
    assert await store.get_message("msg_missing") is None
    session = await store.get_session(s.id)
    assert session is not None and session.message_count == 7

    page = await store.list_messages(s.id)
    assert page is not None
    assert [m.id for m in page.messages] == [m.id for m in sent]
    assert (page.total_count, page.limit, page.offset) == (7, None, 0)
    assert page.messages[0].parts == sent[0].parts

    page = await store.list_messages(s.id, limit=3, offset=2)
    assert page is not None
    assert [m.id for m in page.messages] == [m.id for m in sent[2:5]]
    assert (page.total_count, page.limit, page.offset) == (7, 3, 2)

    page = await store.list_messages(s.id, limit=3, offset=1, order="desc")
    assert page is not None
    assert [m.id for m in page.messages] == [m.id for m in reversed(sent)][1:4]
    page = await store.list_messages(s.id, offset=5)
    assert page is not None and [m.id for m in page.messages] == [m.id for m in sent[5:]]
    page = await store.list_messages(s.id, limit=5, offset=100)
    assert page is not None and page.messages == [] and page.total_count == 7
    assert await store.list_messages("ses_missing") is None
    empty = await new_session(store)
    page = await store.list_messages(empty.id)
    assert page is not None and page.messages == [] and page.total_count == 0


async def test_same_timestamp_orders_by_id(store: Store) -> None:
    s = await new_session(store)
    ids = [f"msg_same_{i}" for i in range(4)]
    for mid in reversed(ids):
        await store.append_message(Message(id=mid, session_id=s.id, role="user", created_at=at(5)))
    page = await store.list_messages(s.id)
    assert page is not None and [m.id for m in page.messages] == ids


async def test_append_to_missing_session_is_a_conflict(store: Store) -> None:
    with pytest.raises(StoreConflict):
        await store.append_message(user_message("ses_missing", 0))


async def test_start_reply(store: Store) -> None:
    s = await new_session(store)
    question = await store.append_message(user_message(s.id, 1, status="queued"))
    reply = Message(
        id=uid("msg"),
        session_id=s.id,
        role="assistant",
        status="running",
        parent_id=question.id,
        created_at=at(1),
    )
    assert await store.start_reply(question.id, reply) == reply
    page = await store.list_messages(s.id)
    assert page is not None
    assert [(m.id, m.status) for m in page.messages] == [
        (question.id, "completed"),
        (reply.id, "running"),
    ]
    session = await store.get_session(s.id)
    assert session is not None and session.message_count == 2
    with pytest.raises(StoreConflict):  # a reply in a missing session stores nothing
        await store.start_reply(
            question.id, reply.model_copy(update={"id": uid("msg"), "session_id": "ses_missing"})
        )


async def test_a_step_updates_its_parts_and_message_status(store: Store) -> None:
    s = await new_session(store)
    m = Message(
        id=uid("msg"), session_id=s.id, role="assistant", status="running", created_at=at(1)
    )
    await store.append_message(m)
    part = Part(
        id=uid("prt"),
        message_id=m.id,
        session_id=s.id,
        type="tool_call",
        tool_call_id="call_1",
        tool_name="websearch",
        tool_args={"query": "x", "n": [1]},
        tool_status="running",
        created_at=at(1),
    )
    await store.save_step(StepRecord(message=m, parts=[part], usage_delta=Usage(), cost_delta=0))
    done = part.model_copy(
        update={"tool_status": "completed", "tool_output": "result", "metadata": {"pruned": False}}
    )
    await store.save_step(StepRecord(message=m, parts=[done], usage_delta=Usage(), cost_delta=0))
    await store.set_message_status(m.id, "error", error={"type": "provider", "message": "boom"})
    got = await store.get_message(m.id)
    assert got is not None
    assert got.parts == [done]
    assert got.status == "error" and got.error == {"type": "provider", "message": "boom"}
    await store.set_message_status(m.id, "completed")
    got = await store.get_message(m.id)
    assert got is not None and got.status == "completed" and got.error is not None


async def test_save_step_rolls_up_usage_and_cost(store: Store) -> None:
    s = await new_session(store)
    user = user_message(s.id, 0)
    await store.append_message(user)
    mid = uid("msg")
    running = Message(
        id=mid,
        session_id=s.id,
        role="assistant",
        status="running",
        parent_id=user.id,
        provider_id="openai",
        model_id="gpt-4o-mini",
        created_at=at(1),
    )
    await store.append_message(running)
    step1_parts = [
        Part(
            id=uid("prt"),
            message_id=mid,
            session_id=s.id,
            type="step_start",
            metadata={"step_number": 1},
            created_at=at(1),
        ),
        Part(
            id=uid("prt"),
            message_id=mid,
            session_id=s.id,
            type="text",
            content="Hel",
            created_at=at(1.1),
        ),
    ]
    u1 = Usage(input_tokens=100, output_tokens=10, reasoning_tokens=2, cache_read_tokens=50)
    await store.save_step(
        StepRecord(
            message=running.model_copy(update={"content": "Hel", "usage": u1, "cost": 0.01}),
            parts=step1_parts,
            usage_delta=u1,
            cost_delta=0.01,
        )
    )
    u2 = Usage(input_tokens=120, output_tokens=20, cache_write_tokens=5)
    text = step1_parts[1].model_copy(update={"content": "Hello"})
    final = running.model_copy(
        update={
            "content": "Hello",
            "usage": u1 + u2,
            "cost": 0.03,
            "finish": "stop",
            "status": "completed",
        }
    )
    await store.save_step(StepRecord(message=final, parts=[text], usage_delta=u2, cost_delta=0.02))
    # A message first written by save_step (never appended) is counted in the session too.
    other = Message(
        id=uid("msg"),
        session_id=s.id,
        role="assistant",
        provider_id="acme",
        model_id="unpriced-1",
        priced=False,
        created_at=at(2),
        usage=Usage(input_tokens=1, output_tokens=1),
        finish="stop",
    )
    await store.save_step(
        StepRecord(
            message=other,
            parts=[],
            usage_delta=Usage(input_tokens=1, output_tokens=1),
            cost_delta=0.0,
        )
    )

    got = await store.get_message(mid)
    assert got is not None
    assert got.content == "Hello" and got.finish == "stop" and got.status == "completed"
    assert got.usage == u1 + u2 and got.cost == pytest.approx(0.03)
    assert [p.content for p in got.parts] == [None, "Hello"]
    session = await store.get_session(s.id)
    assert session is not None
    assert session.message_count == 3
    assert session.total_cost == pytest.approx(0.03)
    assert (session.total_input_tokens, session.total_output_tokens) == (221, 31)
    cost = await store.get_session_cost(s.id)
    assert cost is not None
    assert cost.total_cost == pytest.approx(0.03)
    assert (cost.input_tokens, cost.output_tokens, cost.reasoning_tokens) == (221, 31, 2)
    assert (cost.cache_read_tokens, cost.cache_write_tokens) == (50, 5)
    assert cost.priced is False
    by_model = {(m.provider_id, m.model_id): m for m in cost.by_model}
    openai = by_model[("openai", "gpt-4o-mini")]
    assert (openai.messages, openai.input_tokens, openai.output_tokens) == (1, 220, 30)
    assert openai.priced is True and openai.cost == pytest.approx(0.03)
    assert by_model[("acme", "unpriced-1")].priced is False
    assert await store.get_session_cost("ses_missing") is None


async def test_failed_step_writes_nothing(store: Store) -> None:
    """The second statement of the step (a part of a message that does not exist) violates a
    foreign key: the message upsert and the totals before it must be rolled back."""
    s = await new_session(store)
    mid = uid("msg")
    message = Message(
        id=mid,
        session_id=s.id,
        role="assistant",
        content="half",
        provider_id="openai",
        model_id="m",
        created_at=at(1),
    )
    good = Part(id=uid("prt"), message_id=mid, session_id=s.id, type="text", content="half")
    orphan = Part(id=uid("prt"), message_id="msg_does_not_exist", session_id=s.id, type="text")
    with pytest.raises(StoreConflict):
        await store.save_step(
            StepRecord(
                message=message,
                parts=[good, orphan],
                usage_delta=Usage(input_tokens=5),
                cost_delta=1.0,
            )
        )
    assert await store.get_message(mid) is None
    session = await store.get_session(s.id)
    assert session is not None
    assert (session.message_count, session.total_cost, session.total_input_tokens) == (0, 0.0, 0)
    cost = await store.get_session_cost(s.id)
    assert cost is not None and cost.by_model == []
    page = await store.list_messages(s.id)
    assert page is not None and page.total_count == 0
    # and the store still works afterwards
    await store.append_message(user_message(s.id, 1))


async def test_mark_interrupted(store: Store) -> None:
    s = await new_session(store)
    await store.update_session(s.id, status="busy")
    running = user_message(s.id, 0, status="running")
    queued = user_message(s.id, 1, status="queued")
    done = user_message(s.id, 2, status="completed")
    for m in (running, queued, done):
        await store.append_message(m)
    assert await store.mark_interrupted() == 2
    for m in (running, queued):
        got = await store.get_message(m.id)
        assert got is not None and got.status == "interrupted"
        assert got.error is not None and got.error["type"] == "interrupted"
        assert got.error["message"]
    got = await store.get_message(done.id)
    assert got is not None and got.status == "completed" and got.error is None
    session = await store.get_session(s.id)
    assert session is not None and session.status == "idle"
    assert await store.mark_interrupted() == 0


async def test_recovery_marks_only_the_turns_of_owners_that_are_gone(
    make_store: MakeStore, store: Store
) -> None:
    if isinstance(store, SupabaseStore):
        # No lease table in the replaced service's schema: recovery while others may be live
        # marks nothing (only the global start-up recovery of a lone process does).
        s = await new_session(store)
        await store.append_message(user_message(s.id, 0, status="running"))
        assert await store.mark_interrupted(live_since=utcnow()) == 0
        return
    other = make_store()  # a second process on the same database
    await other.open()
    try:
        now = utcnow()
        await store.claim_turns(Owner(id="proc-a", host="h", pid=1, heartbeat_at=now))
        await other.claim_turns(Owner(id="proc-b", host="h", pid=2, heartbeat_at=now))
        s = await new_session(store)
        mine = user_message(s.id, 0, status="running")
        theirs = user_message(s.id, 1, status="queued")
        await store.append_message(mine)
        await other.append_message(theirs)
        live_since = now - timedelta(seconds=30)
        # Both owners hold fresh leases: nothing is an orphan.
        assert await other.mark_interrupted(live_since=live_since) == 0
        assert [o.id for o in sorted(await other.list_owners(), key=lambda o: o.id)] == [
            "proc-a",
            "proc-b",
        ]
        # proc-a is known dead: only its turn is marked, by the live process.
        await other.drop_owners(["proc-a"])
        assert await other.mark_interrupted(live_since=live_since) == 1
        got = await store.get_message(mine.id)
        assert got is not None and got.status == "interrupted"
        got = await store.get_message(theirs.id)
        assert got is not None and got.status == "queued"
        # A lease that was not renewed in time lapses the same way.
        await other.claim_turns(
            Owner(id="proc-b", host="h", pid=2, heartbeat_at=now - timedelta(seconds=60))
        )
        assert await store.mark_interrupted(live_since=live_since) == 1
        got = await store.get_message(theirs.id)
        assert got is not None and got.status == "interrupted"
        await other.release_turns()  # a clean shutdown drops the lease
        assert await store.list_owners() == []
    finally:
        await other.close()


# -- todos, questions, compaction -----------------------------------------------------------------
async def test_todos(store: Store) -> None:
    s = await new_session(store)
    assert await store.get_todos(s.id) == []
    todos = [
        Todo(id="1", content="a", status="in_progress", priority="high"),
        Todo(id="2", content="b"),
    ]
    await store.set_todos(s.id, todos)
    assert await store.get_todos(s.id) == todos
    await store.set_todos(s.id, todos[1:])
    assert await store.get_todos(s.id) == todos[1:]


async def test_questions(store: Store) -> None:
    s = await new_session(store, user_id="alice")
    items = [
        QuestionItem(
            question="Which?",
            header="Pick",
            options=[QuestionOption(label="A", description="first"), QuestionOption(label="B")],
            multiple=True,
        )
    ]
    q1 = await store.create_question(
        Question(
            id=uid("que"),
            session_id=s.id,
            message_id="msg_1",
            tool_call_id="call_1",
            questions=items,
            created_at=at(1),
        )
    )
    assert q1.user_id == "alice"  # taken from the session
    q2 = await store.create_question(
        Question(
            id=uid("que"),
            session_id=s.id,
            message_id="msg_1",
            tool_call_id="call_2",
            questions=items,
            created_at=at(2),
        )
    )
    other = await new_session(store, user_id="bob")
    q3 = await store.create_question(
        Question(
            id=uid("que"),
            session_id=other.id,
            message_id="msg_2",
            tool_call_id="call_3",
            questions=items,
            created_at=at(0),
        )
    )
    assert await store.get_question(q1.id) == q1
    assert await store.get_question(q1.id, user_id="bob") is None
    assert [q.id for q in await store.list_questions()] == [q3.id, q1.id, q2.id]
    assert [q.id for q in await store.list_questions(session_id=s.id)] == [q1.id, q2.id]
    assert [q.id for q in await store.list_questions(user_id="bob")] == [q3.id]
    assert await store.resolve_question(q1.id, "answered", [["A", "B"]]) is True
    assert await store.resolve_question(q1.id, "rejected") is False
    got = await store.get_question(q1.id, user_id="alice")
    assert got is not None and got.status == "answered" and got.answers == [["A", "B"]]
    assert [q.id for q in await store.list_questions(session_id=s.id)] == [q2.id]
    assert await store.resolve_question("que_missing", "expired") is False


async def test_compaction(store: Store) -> None:
    s = await new_session(store)
    state = await store.get_compaction_state(s.id)
    assert state == CompactionState(session_id=s.id)
    failing = CompactionState(session_id=s.id, status="failed", last_error="llm down")
    await store.set_compaction_state(failing)
    assert await store.get_compaction_state(s.id) == failing
    old = [user_message(s.id, i) for i in range(4)]
    for m in old:
        await store.append_message(m)
    summary = Message(
        id=uid("msg"),
        session_id=s.id,
        role="assistant",
        summary=True,
        content="summary",
        created_at=at(10),
    )
    await store.apply_compaction(s.id, summary, [m.id for m in old[:3]])
    state = await store.get_compaction_state(s.id)
    assert (state.status, state.compaction_count, state.last_error) == ("idle", 1, None)
    assert state.last_compacted_at is not None
    page = await store.list_messages(s.id)
    assert page is not None and page.total_count == 5
    assert [m.compacted for m in page.messages] == [True, True, True, False, False]
    assert page.messages[-1].summary is True
    page = await store.list_messages(s.id, include_compacted=False)
    assert page is not None and [m.id for m in page.messages] == [old[3].id, summary.id]
    assert page.total_count == 2
    await store.apply_compaction(s.id, summary.model_copy(update={"id": uid("msg")}), [])
    assert (await store.get_compaction_state(s.id)).compaction_count == 2


async def test_delete_session_removes_everything(store: Store) -> None:
    s = await new_session(store)
    m = user_message(s.id, 0)
    await store.append_message(m)
    await store.save_step(
        StepRecord(
            message=Message(id=uid("msg"), session_id=s.id, role="assistant", created_at=at(1)),
            parts=[],
            usage_delta=Usage(input_tokens=1),
            cost_delta=0.5,
        )
    )
    await store.set_todos(s.id, [Todo(id="1", content="x")])
    q = await store.create_question(
        Question(id=uid("que"), session_id=s.id, message_id=m.id, tool_call_id="c", questions=[])
    )
    await store.set_compaction_state(CompactionState(session_id=s.id, compaction_count=3))
    assert await store.delete_session(s.id) is True
    assert await store.get_message(m.id) is None
    assert await store.get_todos(s.id) == []
    assert await store.get_question(q.id) is None
    assert await store.get_compaction_state(s.id) == CompactionState(session_id=s.id)
    assert await store.get_session_cost(s.id) is None


# -- daily usage ----------------------------------------------------------------------------------
async def test_reserve_settle_release(store: Store) -> None:
    day = "2026-01-01"
    r1 = await store.reserve_usage("u", day, tokens=100, token_limit=250, request_limit=None)
    r2 = await store.reserve_usage("u", day, tokens=100, token_limit=250, request_limit=None)
    assert r1 is not None and r2 is not None and r1.id != r2.id
    assert (
        await store.reserve_usage("u", day, tokens=100, token_limit=250, request_limit=None) is None
    )
    usage = await store.get_daily_usage("u", day)
    assert (usage.reserved_tokens, usage.reserved_requests, usage.requests) == (200, 2, 0)
    await store.settle_usage(r1, input_tokens=30, output_tokens=20)
    await store.settle_usage(r1, input_tokens=30, output_tokens=20)  # a second settle is a no-op
    await store.release_usage(r2)
    usage = await store.get_daily_usage("u", day)
    assert (usage.input_tokens, usage.output_tokens, usage.requests) == (30, 20, 1)
    assert (usage.reserved_tokens, usage.reserved_requests, usage.total_tokens) == (0, 0, 50)
    # request limit: one request used, one more fits
    r3 = await store.reserve_usage("u", day, tokens=0, token_limit=None, request_limit=2)
    assert r3 is not None
    assert await store.reserve_usage("u", day, tokens=0, token_limit=None, request_limit=2) is None
    assert await store.get_daily_usage("u", "2026-01-02") == type(usage)(
        user_id="u", day="2026-01-02"
    )
    assert (await store.get_daily_usage("other", day)).requests == 0


async def test_concurrent_reservations_settle_exactly(store: Store) -> None:
    day = "2026-02-01"

    async def turn(i: int) -> bool:
        r = await store.reserve_usage("u", day, tokens=100, token_limit=None, request_limit=None)
        assert r is not None
        await store.settle_usage(r, input_tokens=i, output_tokens=2 * i)
        return True

    assert all(await asyncio.gather(*(turn(i) for i in range(50))))
    usage = await store.get_daily_usage("u", day)
    assert (usage.input_tokens, usage.output_tokens) == (1225, 2450)
    assert (usage.requests, usage.reserved_tokens, usage.reserved_requests) == (50, 0, 0)


async def test_concurrent_reservations_never_overshoot(store: Store) -> None:
    day = "2026-02-02"
    held = await asyncio.gather(
        *(
            store.reserve_usage("u", day, tokens=30, token_limit=1000, request_limit=40)
            for _ in range(50)
        )
    )
    granted = [r for r in held if r is not None]
    assert len(granted) == 33  # 33 * 30 = 990 <= 1000 < 34 * 30
    usage = await store.get_daily_usage("u", day)
    assert usage.reserved_tokens == 990 and usage.reserved_requests == 33
    await asyncio.gather(
        *(store.settle_usage(r, input_tokens=10, output_tokens=5) for r in granted)
    )
    usage = await store.get_daily_usage("u", day)
    assert (usage.total_tokens, usage.requests, usage.reserved_tokens) == (495, 33, 0)
    # the request limit (40) now binds before the token limit
    again = await asyncio.gather(
        *(
            store.reserve_usage("u", day, tokens=1, token_limit=1000, request_limit=40)
            for _ in range(20)
        )
    )
    assert sum(r is not None for r in again) == 7


# -- concurrency and pagination stability --------------------------------------------------------
async def test_200_sessions_append_concurrently(store: Store) -> None:
    sessions = await asyncio.gather(*(new_session(store) for _ in range(200)))

    async def chat(s: Session) -> None:
        for i in range(3):
            await store.append_message(user_message(s.id, i))

    await asyncio.gather(*(chat(s) for s in sessions))
    for s in sessions:
        page = await store.list_messages(s.id)
        got = await store.get_session(s.id)
        assert page is not None and got is not None
        assert page.total_count == 3 == len(page.messages) == got.message_count
    assert len(await store.list_sessions()) == 200


async def test_pagination_is_stable_while_messages_arrive(store: Store) -> None:
    s = await new_session(store)
    first = [user_message(s.id, i) for i in range(20)]
    for m in first:
        await store.append_message(m)
    seen: list[str] = []
    for offset in range(0, 20, 5):
        page = await store.list_messages(s.id, limit=5, offset=offset)
        assert page is not None
        seen += [m.id for m in page.messages]
        # newer messages keep arriving between page reads
        await asyncio.gather(
            *(store.append_message(user_message(s.id, 100 + offset + j)) for j in range(3))
        )
    assert seen == [m.id for m in first]
    page = await store.list_messages(s.id, limit=5)
    assert page is not None and page.total_count == 32


# -- lifecycle and migrations --------------------------------------------------------------------
async def test_reopen_keeps_data_and_migrations_are_idempotent(make_store: MakeStore) -> None:
    first = make_store()
    await first.open()
    s = await new_session(first)
    await first.close()
    again = make_store()
    await again.open()
    await again.open()  # opening twice is harmless
    try:
        assert await again.get_session(s.id) == s
    finally:
        await again.close()


async def test_two_concurrent_opens_are_safe(make_store: MakeStore) -> None:
    a, b = make_store(), make_store()
    await asyncio.gather(a.open(), b.open())
    try:
        s = await new_session(a)
        assert await b.get_session(s.id) == s
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_use_before_open_is_an_error(make_store: MakeStore) -> None:
    s = make_store()
    assert isinstance(s, Store)
    with pytest.raises(StoreNotOpen):
        await s.get_session("ses_x")
    assert issubclass(StoreNotOpen, StoreError)


async def test_concurrent_writes_one_conflicting(make_store: MakeStore) -> None:
    """Writes issued together (SQLite commits them as one group) succeed or fail one by one."""
    store = make_store()
    await store.open()
    try:
        taken = await new_session(store)
        fresh = [Session(id=uid("ses"), title=f"s{i}") for i in range(20)]
        sessions = [*fresh[:10], taken, *fresh[10:]]
        results = await asyncio.gather(
            *(store.create_session(session) for session in sessions), return_exceptions=True
        )
        assert isinstance(results[10], StoreConflict)
        assert [r.id for r in results if isinstance(r, Session)] == [s.id for s in fresh]
        messages = [user_message(s.id, i) for i, s in enumerate(fresh)]
        # A write that fails half-way (its second part names a missing message) leaves nothing.
        broken = user_message(fresh[0].id, 99)
        broken.parts.append(
            broken.parts[0].model_copy(update={"id": uid("prt"), "message_id": "msg_missing"})
        )
        outcomes = await asyncio.gather(
            *(store.append_message(m) for m in [*messages[:5], broken, *messages[5:]]),
            return_exceptions=True,
        )
        assert isinstance(outcomes[5], StoreConflict)
        assert sum(isinstance(o, BaseException) for o in outcomes) == 1
    finally:
        await store.close()
    # Durable: a store opened afterwards reads every write that returned.
    reopened = make_store()
    await reopened.open()
    try:
        for session, message in zip(fresh, messages, strict=True):
            assert (await reopened.get_session(session.id)) is not None
            page = await reopened.list_messages(session.id)
            assert [m.id for m in page.messages] == [message.id]  # not the broken one
    finally:
        await reopened.close()


# -- a turn's writes under concurrency and failure -------------------------------------------------
async def one_turn(store: Store, session_id: str, steps: int) -> None:
    """A turn's writes as the session actor makes them: user message, reply, one save per step."""
    user = Message(id=uid("msg"), session_id=session_id, role="user", content="q", status="queued")
    await store.append_message(user)
    reply = Message(
        id=uid("msg"),
        session_id=session_id,
        role="assistant",
        provider_id="p",
        model_id="m",
        parent_id=user.id,
        status="running",
        usage=Usage(),
    )
    await store.start_reply(user.id, reply)
    for step in range(1, steps + 1):
        final = step == steps
        parts = [
            Part(id=uid("prt"), message_id=reply.id, session_id=session_id, type=kind)
            for kind in ("step_start", "text", "step_finish")
        ]
        reply = reply.model_copy(
            update={"cost": reply.cost + 0.5, **({"status": "completed"} if final else {})}
        )
        await store.save_step(
            StepRecord(
                message=reply,
                parts=parts,
                usage_delta=Usage(input_tokens=10, output_tokens=1),
                cost_delta=0.5,
            )
        )


async def test_concurrent_turns_of_one_user_keep_exact_counters(store: Store) -> None:
    a, b = await new_session(store, "u1"), await new_session(store, "u1")
    turns = [(s, steps) for s in (a, b) for steps in (1, 2, 3, 1, 2)]
    await asyncio.gather(*(one_turn(store, s.id, steps) for s, steps in turns))
    for s in (a, b):
        got = await store.get_session(s.id, user_id="u1")
        assert got is not None
        # 5 turns: 10 messages, 9 steps of 10 input / 1 output token and 0.5 each.
        assert got.message_count == 10
        assert (got.total_input_tokens, got.total_output_tokens) == (90, 9)
        assert got.total_cost == pytest.approx(4.5)
        cost = await store.get_session_cost(s.id)
        assert cost is not None and len(cost.by_model) == 1
        assert (cost.by_model[0].messages, cost.by_model[0].input_tokens) == (5, 90)
        page = await store.list_messages(s.id)
        assert page is not None and page.total_count == 10
        assert sum(len(m.parts) for m in page.messages) == 27


@pytest.mark.postgres
async def test_a_connection_lost_mid_write_leaves_nothing_half_written(
    postgres_database_url: str,
) -> None:
    """PostgreSQL: the step's statement waits on a row lock held elsewhere (so it has begun and
    cannot finish), then its server process is terminated: nothing of the step is stored."""
    store = PostgresStore(postgres_database_url, max_size=20)
    await store.open()
    try:
        await _lost_connection_mid_write(store, postgres_database_url)
    finally:
        await store.close()


async def _lost_connection_mid_write(store: Store, url: str) -> None:
    import asyncpg

    s = await new_session(store, "u1")
    await one_turn(store, s.id, 1)
    reply = Message(
        id=uid("msg"), session_id=s.id, role="assistant", model_id="m", status="running"
    )
    await store.start_reply((await store.list_messages(s.id)).messages[0].id, reply)  # type: ignore[union-attr]
    before = await store.get_session(s.id)
    step = StepRecord(
        message=reply.model_copy(update={"status": "completed", "cost": 1.0}),
        parts=[Part(id=uid("prt"), message_id=reply.id, session_id=s.id, type="text")],
        usage_delta=Usage(input_tokens=7),
        cost_delta=1.0,
    )
    killer = await asyncpg.connect(url)
    try:
        locker = killer.transaction()
        await locker.start()
        await killer.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", s.id)
        write = asyncio.create_task(store.save_step(step))
        blocked: int | None = None
        while blocked is None and not write.done():  # until the write waits on our lock
            blocked = await killer.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        assert blocked is not None
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", blocked)
        with pytest.raises(StoreError):
            await write
        await locker.rollback()
    finally:
        await killer.close()
    # The step that was waiting stored nothing: counters, the reply and its parts as before.
    assert await store.get_session(s.id) == before
    stored = await store.get_message(reply.id)
    assert stored is not None and stored.status == "running" and stored.parts == []
    cost = await store.get_session_cost(s.id)
    assert cost is not None and cost.input_tokens == 10 and cost.by_model[0].messages == 1
    # The store still works afterwards (the pool replaced the dead connection): the same step.
    await store.save_step(step)
    again = await store.get_session(s.id)
    assert again is not None and again.total_input_tokens == 17
    assert again.message_count == 3


async def test_delete_message(store: Store) -> None:
    s = await new_session(store)
    await one_turn(store, s.id, 2)
    page = await store.list_messages(s.id)
    assert page is not None
    user, reply = page.messages
    cost_before = await store.get_session_cost(s.id)
    assert await store.delete_message(s.id, reply.id)
    assert await store.get_message(reply.id) is None
    page = await store.list_messages(s.id)
    assert page is not None and [m.id for m in page.messages] == [user.id]
    session = await store.get_session(s.id)
    assert session is not None and session.message_count == 1
    # What was spent stays spent.
    assert await store.get_session_cost(s.id) == cost_before
    # Another session's message, or one that is gone: nothing happens.
    other = await new_session(store)
    assert not await store.delete_message(other.id, user.id)
    assert not await store.delete_message(s.id, reply.id)
    assert await store.get_message(user.id) is not None
