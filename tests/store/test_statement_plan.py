"""The statements one turn costs the SQL stores, counted by the store itself (not timed).

The writes are those the session actor makes, in its order and with its arguments: the user
message at admission (``append_message``), the reply's placeholder when the turn starts
(``start_reply``), then one ``save_step`` per model step, the last one carrying the final status.
On PostgreSQL a statement is a round trip (BEGIN and COMMIT included).

Before the per-turn plan (measured with this counter on the previous SQL), statements and
transactions, the same on SQLite and PostgreSQL:

| writes                                         | before  |
|------------------------------------------------|---------|
| new session (create_session) + its first turn  | 21 / 4  |
| one-step turn, no tools                        | 18 / 3  |
| two-step turn, one tool call                   | 27 / 4  |
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import pytest

from opencode_api.store import (
    Message,
    Part,
    PostgresStore,
    Session,
    SqliteStore,
    StepRecord,
    Usage,
)

_ids = count()


def uid(prefix: str) -> str:
    return f"{prefix}_plan_{next(_ids):06d}"


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        # Through PgBouncer/Supavisor in transaction mode: no prepared statement cache.
        pytest.param("postgres-no-cache", marks=pytest.mark.postgres),
    ]
)
async def sql_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SqliteStore | PostgresStore]:
    store: SqliteStore | PostgresStore
    if request.param == "sqlite":
        store = SqliteStore(str(tmp_path / "plan.db"))
    else:
        cache = 0 if request.param == "postgres-no-cache" else 100
        url = request.getfixturevalue("postgres_database_url")
        store = PostgresStore(url, statement_cache_size=cache)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@dataclass(frozen=True)
class Counted:
    statements: int
    transactions: int


class TurnWriter:
    """One turn's writes as ``SessionActor``/``AgentLoop``/``Turn`` make them."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id

    def part(self, message_id: str, type_: str, **fields: object) -> Part:
        return Part(
            id=uid("prt"),
            message_id=message_id,
            session_id=self.session_id,
            type=type_,  # type: ignore[arg-type]
            **fields,  # type: ignore[arg-type]
        )

    async def run(self, store: SqliteStore | PostgresStore, *, tool_steps: int = 0) -> Message:
        # Admission (TurnAdmission.enqueue): the user message, queued, no parts.
        user = Message(
            id=uid("msg"),
            session_id=self.session_id,
            role="user",
            content="hello",
            provider_id="fake",
            model_id="fake-model",
            status="queued",
        )
        await store.append_message(user)
        # SessionActor._run_turn: the reply's placeholder.
        reply = Message(
            id=uid("msg"),
            session_id=self.session_id,
            created_at=user.created_at,
            role="assistant",
            provider_id="fake",
            model_id="fake-model",
            parent_id=user.id,
            status="running",
            usage=Usage(),
        )
        await store.start_reply(user.id, reply)
        # AgentLoop._finish_step, once per step; the last one carries the final status.
        stored: list[Part] = []
        total = Usage()
        cost = 0.0
        for step in range(1, tool_steps + 2):
            final = step == tool_steps + 1
            step_usage = Usage(input_tokens=100 * step, output_tokens=10 * step)
            total = total + step_usage
            cost += 0.001
            parts = [self.part(reply.id, "step_start", metadata={"step_number": step})]
            if final:
                parts.append(self.part(reply.id, "text", content="hi there"))
            else:
                parts.append(
                    self.part(
                        reply.id,
                        "tool_call",
                        tool_call_id=f"call_{step}",
                        tool_name="echo",
                        tool_args={"text": "x"},
                        tool_status="completed",
                        tool_output="x",
                    )
                )
            parts.append(
                self.part(
                    reply.id,
                    "step_finish",
                    metadata={"step_number": step, "stop_reason": "stop" if final else "tool"},
                )
            )
            stored += parts
            reply = reply.model_copy(
                update={
                    "content": "hi there" if final else "",
                    "usage": total,
                    "cost": cost,
                    "parts": list(stored),
                    **({"finish": "stop", "status": "completed"} if final else {}),
                }
            )
            await store.save_step(
                StepRecord(message=reply, parts=parts, usage_delta=step_usage, cost_delta=0.001)
            )
        return reply


async def counted_turn(
    store: SqliteStore | PostgresStore, session_id: str, tool_steps: int
) -> Counted:
    statements, transactions = store.statements, store.transactions
    await TurnWriter(session_id).run(store, tool_steps=tool_steps)
    return Counted(store.statements - statements, store.transactions - transactions)


# (statements, transactions) of a new session's creation plus its first turn (one step), a
# one-step turn, and a two-step turn with a tool call.
EXPECTED = {
    # One transaction per logical write; a step: BEGIN, UPDATE message RETURNING step_count,
    # executemany parts, UPDATE sessions, UPSERT usage, COMMIT.
    "SqliteStore": {
        "new_session_first_turn": Counted(18, 4),
        "one_step": Counted(15, 3),
        "two_steps": Counted(21, 4),
    },
    # Each write one statement in autocommit (data-modifying CTEs), no BEGIN/COMMIT.
    "PostgresStore": {
        "new_session_first_turn": Counted(4, 0),
        "one_step": Counted(3, 0),
        "two_steps": Counted(4, 0),
    },
}


async def test_statements_of_a_turn(sql_store: SqliteStore | PostgresStore) -> None:
    store = sql_store
    expected = EXPECTED[type(store).__name__]
    assert store.transactions == 0  # opening (migrations) is not counted
    before = Counted(store.statements, store.transactions)
    session = await store.create_session(Session(id=uid("ses"), user_id="u"))
    await TurnWriter(session.id).run(store)
    first = Counted(store.statements - before.statements, store.transactions - before.transactions)
    one_step = await counted_turn(store, session.id, tool_steps=0)
    two_steps = await counted_turn(store, session.id, tool_steps=1)
    assert {"new_session_first_turn": first, "one_step": one_step, "two_steps": two_steps} == (
        expected
    )
    # What the plan writes is what the turns made: 3 turns, 2 messages each, 4 steps in all.
    got = await store.get_session(session.id)
    assert got is not None
    assert got.message_count == 6
    assert (got.total_input_tokens, got.total_output_tokens) == (100 + 100 + 300, 10 + 10 + 30)
    assert got.total_cost == pytest.approx(0.004)
    cost = await store.get_session_cost(session.id)
    assert cost is not None and len(cost.by_model) == 1
    assert cost.by_model[0].messages == 3
    page = await store.list_messages(session.id)
    assert page is not None
    assert [m.status for m in page.messages] == ["completed"] * 6
    assert [len(m.parts) for m in page.messages] == [0, 3, 0, 3, 0, 6]


async def test_concurrent_turns_share_transactions_on_sqlite(tmp_path: Path) -> None:
    """SQLite commits the writes of one loop tick together (group commit): 20 sessions taking a
    turn at once cost the transactions of one turn (creation, user message, reply, step), not 20
    times that; each write still counts its statements (SAVEPOINT and RELEASE in a group)."""
    store = SqliteStore(str(tmp_path / "groups.db"))
    await store.open()
    try:
        sessions = await asyncio.gather(
            *(store.create_session(Session(id=uid("ses"), user_id="u")) for _ in range(20))
        )
        before = Counted(store.statements, store.transactions)
        await asyncio.gather(*(TurnWriter(s.id).run(store) for s in sessions))
        one_turn = EXPECTED["SqliteStore"]["one_step"]
        assert store.transactions - before.transactions <= one_turn.transactions
        assert store.statements - before.statements == 20 * one_turn.statements
        for session in sessions:
            got = await store.get_session(session.id)
            assert got is not None and got.message_count == 2
    finally:
        await store.close()
