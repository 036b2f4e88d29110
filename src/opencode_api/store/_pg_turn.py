"""PostgreSQL's plan for a turn's writes: each write one statement, run in autocommit.

A single statement is atomic, so no BEGIN/COMMIT round trips: data-modifying CTEs insert the
message, its parts (from arrays, ``unnest``) and update the session's counters together. A step
upserts its message ``RETURNING step_count, (xmax = 0) AS inserted``, so nothing is read before
the write. Foreign keys keep "a write to a missing session is a conflict": the message (or the
usage roll-up) names the session, and a violated key aborts the whole statement.
"""

from __future__ import annotations

from abc import abstractmethod
from contextlib import AbstractAsyncContextManager
from typing import Any

from opencode_api.store._models import Message, Part, StepRecord, utcnow
from opencode_api.store._rows import MESSAGE_COLUMNS, PART_COLUMNS, Conn
from opencode_api.store._turn_writes import USAGE_COLUMNS, USAGE_ON_CONFLICT, TurnWrites

# Parts as twelve arrays, one per column (asyncpg sends Python lists as arrays).
_PART_TYPES = (
    "text", "text", "text", "text", "text", "text", "text", "jsonb", "text", "text", "jsonb",
    "timestamptz",
)  # fmt: skip
_PART_UPDATE = (
    "ON CONFLICT (id) DO UPDATE SET type = excluded.type, content = excluded.content, "
    "tool_call_id = excluded.tool_call_id, tool_name = excluded.tool_name, "
    "tool_args = excluded.tool_args, tool_output = excluded.tool_output, "
    "tool_status = excluded.tool_status, metadata = excluded.metadata"
)


def _parts_cte(first: int) -> str:
    """``p AS (INSERT ... SELECT FROM unnest($first::text[], ...))``, parameters from ``first``."""
    arrays = ", ".join(f"${first + i}::{t}[]" for i, t in enumerate(_PART_TYPES))
    return (
        f"p AS (INSERT INTO message_parts ({PART_COLUMNS}) "
        f"SELECT * FROM unnest({arrays}) {_PART_UPDATE})"
    )


_MESSAGE_VALUES = ", ".join(f"${i}" for i in range(1, 17))  # _message_args: $1 .. $16

# append_message / start_reply: $1..$16 the message, $17 its owner, $18 now, $19.. its parts;
# start_reply adds the question's id after them.
_INSERT_MESSAGE_CTE = (
    f"m AS (INSERT INTO messages ({MESSAGE_COLUMNS}, owner) "
    f"VALUES ({_MESSAGE_VALUES}, $17) RETURNING session_id)"
)
_COUNT_MESSAGE = (
    "UPDATE sessions SET message_count = message_count + 1, updated_at = $18 "
    "FROM m WHERE sessions.id = m.session_id"
)

# save_step: $1..$16 the message, $17 now, $18 cost delta, $19..$23 the usage delta, $24.. its
# parts.
_STEP = (
    f"WITH m AS (INSERT INTO messages ({MESSAGE_COLUMNS}, step_count) "
    f"VALUES ({_MESSAGE_VALUES}, 1) "
    "ON CONFLICT (id) DO UPDATE SET content = excluded.content, "
    "provider_id = excluded.provider_id, model_id = excluded.model_id, usage = excluded.usage, "
    "cost = excluded.cost, priced = excluded.priced, finish = excluded.finish, "
    "error = excluded.error, status = excluded.status, step_count = messages.step_count + 1 "
    "RETURNING step_count, (xmax = 0) AS inserted), "
    "{parts}"
    "s AS (UPDATE sessions SET total_cost = total_cost + $18, "
    "total_input_tokens = total_input_tokens + $19, "
    "total_output_tokens = total_output_tokens + $20, "
    "message_count = message_count + CASE WHEN m.inserted THEN 1 ELSE 0 END, updated_at = $17 "
    "FROM m WHERE sessions.id = $2) "
    # From m, not s: a session that is missing violates this row's foreign key.
    f"INSERT INTO session_model_usage ({USAGE_COLUMNS}) "
    "SELECT $2, COALESCE($6, ''), COALESCE($7, ''), $18, $19, $20, $21::bigint, $22::bigint, "
    "$23::bigint, CASE WHEN m.step_count = 1 THEN 1 ELSE 0 END, $10 FROM m "
    f"{USAGE_ON_CONFLICT}"
)


def _part_arrays(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Part arguments as one list per column. One INSERT cannot upsert a row twice: a part
    repeated in the list keeps its first row's keys and creation time and its last values,
    which is what upserting them one after the other leaves."""
    merged: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        first = merged.get(row[0])
        merged[row[0]] = row if first is None else (*first[:3], *row[3:11], first[11])
    return [list(column) for column in zip(*merged.values(), strict=True)] or [[]] * 12


class PostgresTurnWrites(TurnWrites):
    """Mixin of ``PostgresStore``, ahead of ``SqlStore``: the turn's writes in one statement."""

    @abstractmethod
    def _statement(self) -> AbstractAsyncContextManager[Conn]:
        """A connection outside any transaction, for one atomic statement."""

    def _parts_args(self, parts: list[Part]) -> list[list[Any]]:
        return _part_arrays([self._part_args(p) for p in parts])

    def _message_with_parts(self, message: Message, question: bool) -> tuple[str, list[Any]]:
        args: list[Any] = [
            *self._message_args(message),
            self._owner_of(message.status),
            self._ts(utcnow()),
        ]
        ctes = [_INSERT_MESSAGE_CTE]
        if message.parts:
            ctes.append(_parts_cte(len(args) + 1))
            args += self._parts_args(message.parts)
        if question:
            args.append("completed")
            ctes.append(
                f"q AS (UPDATE messages SET status = ${len(args)} WHERE id = ${len(args) + 1})"
            )
        return f"WITH {', '.join(ctes)} {_COUNT_MESSAGE}", args

    async def append_message(self, message: Message) -> Message:
        sql, args = self._message_with_parts(message, question=False)
        async with self._statement() as conn:
            await conn.execute(sql, *args)
        return message

    async def start_reply(self, question_id: str, reply: Message) -> Message:
        sql, args = self._message_with_parts(reply, question=True)
        async with self._statement() as conn:
            await conn.execute(sql, *args, question_id)
        return reply

    async def save_step(self, step: StepRecord) -> None:
        m, u = step.message, step.usage_delta
        args: list[Any] = [
            *self._message_args(m),
            self._ts(utcnow()),
            step.cost_delta,
            u.input_tokens,
            u.output_tokens,
            u.reasoning_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens,
        ]
        parts = ""
        if step.parts:
            parts = _parts_cte(len(args) + 1) + ", "
            args += self._parts_args(step.parts)
        async with self._statement() as conn:
            await conn.execute(_STEP.format(parts=parts), *args)
