"""A turn's writes in the shared SQL (SQLite's plan; PostgreSQL overrides them, see _pg_turn.py).

One transaction per logical write, no read before a write: the user message at admission
(``append_message``), the reply's placeholder (``start_reply``), and one ``save_step`` per model
step. A step's parts go in one ``executemany``; its message is updated first, ``RETURNING`` its
step count, and inserted only when the update found no row (one statement in the usual case).
"""

from __future__ import annotations

from opencode_api.store._errors import StoreConflict
from opencode_api.store._leases import TurnOwnership
from opencode_api.store._models import Message, Part, StepRecord, utcnow
from opencode_api.store._rows import MESSAGE_COLUMNS, PART_COLUMNS, Conn, RowMapping

INSERT_PART = (
    f"INSERT INTO message_parts ({PART_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET type = excluded.type, content = excluded.content, "
    "tool_call_id = excluded.tool_call_id, tool_name = excluded.tool_name, "
    "tool_args = excluded.tool_args, tool_output = excluded.tool_output, "
    "tool_status = excluded.tool_status, metadata = excluded.metadata"
)
_INSERT_STEP_MESSAGE = (
    f"INSERT INTO messages ({MESSAGE_COLUMNS}, step_count) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
)
# What a step changes in a message that exists (the columns an upsert of the step would set).
_UPDATE_STEP_MESSAGE = (
    "UPDATE messages SET content = ?, provider_id = ?, model_id = ?, usage = ?, cost = ?, "
    "priced = ?, finish = ?, error = ?, status = ?, step_count = step_count + 1 "
    "WHERE id = ? RETURNING step_count"
)
_UPDATE_SESSION_TOTALS = (
    "UPDATE sessions SET total_cost = total_cost + ?, "
    "total_input_tokens = total_input_tokens + ?, "
    "total_output_tokens = total_output_tokens + ?, "
    "message_count = message_count + ?, updated_at = ? WHERE id = ?"
)
# Shared with PostgreSQL's plan, which feeds it from a SELECT instead of VALUES.
USAGE_COLUMNS = (
    "session_id, provider_id, model_id, cost, input_tokens, output_tokens, reasoning_tokens, "
    "cache_read_tokens, cache_write_tokens, messages, priced"
)
USAGE_ON_CONFLICT = (
    "ON CONFLICT (session_id, provider_id, model_id) DO UPDATE SET "
    "cost = session_model_usage.cost + excluded.cost, "
    "input_tokens = session_model_usage.input_tokens + excluded.input_tokens, "
    "output_tokens = session_model_usage.output_tokens + excluded.output_tokens, "
    "reasoning_tokens = session_model_usage.reasoning_tokens + excluded.reasoning_tokens, "
    "cache_read_tokens = session_model_usage.cache_read_tokens + excluded.cache_read_tokens, "
    "cache_write_tokens = session_model_usage.cache_write_tokens + excluded.cache_write_tokens, "
    "messages = session_model_usage.messages + excluded.messages, "
    "priced = session_model_usage.priced AND excluded.priced"
)
_UPSERT_USAGE = (
    f"INSERT INTO session_model_usage ({USAGE_COLUMNS}) "
    f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) {USAGE_ON_CONFLICT}"
)


class TurnWrites(TurnOwnership, RowMapping):
    """Mixin of ``SqlStore``: the Store methods a turn writes through."""

    async def _insert_parts(self, conn: Conn, parts: list[Part]) -> None:
        if parts:
            await conn.executemany(INSERT_PART, [self._part_args(p) for p in parts])

    async def _insert_message(self, conn: Conn, message: Message) -> None:
        await conn.execute(
            f"INSERT INTO messages ({MESSAGE_COLUMNS}, owner) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            *self._message_args(message),
            self._owner_of(message.status),
        )
        await self._insert_parts(conn, message.parts)
        changed = await conn.execute(
            "UPDATE sessions SET message_count = message_count + 1, updated_at = ? WHERE id = ?",
            self._ts(utcnow()),
            message.session_id,
        )
        if not changed:
            raise StoreConflict(f"session {message.session_id} does not exist")

    async def append_message(self, message: Message) -> Message:
        async with self._write() as conn:
            await self._insert_message(conn, message)
        return message

    async def start_reply(self, question_id: str, reply: Message) -> Message:
        async with self._write() as conn:
            await conn.execute(
                "UPDATE messages SET status = ? WHERE id = ?", "completed", question_id
            )
            await self._insert_message(conn, reply)
        return reply

    async def save_step(self, step: StepRecord) -> None:
        m = step.message
        u = step.usage_delta
        args = self._message_args(m)
        async with self._write() as conn:
            # content ... status, in the order of _UPDATE_STEP_MESSAGE's SET.
            row = await conn.fetchrow(_UPDATE_STEP_MESSAGE, *args[4:13], m.id)
            if row is None:
                await conn.execute(_INSERT_STEP_MESSAGE, *args)
            steps = 1 if row is None else int(row["step_count"])
            await self._insert_parts(conn, step.parts)
            changed = await conn.execute(
                _UPDATE_SESSION_TOTALS,
                step.cost_delta,
                u.input_tokens,
                u.output_tokens,
                1 if row is None else 0,
                self._ts(utcnow()),
                m.session_id,
            )
            if not changed:
                raise StoreConflict(f"session {m.session_id} does not exist")
            await conn.execute(
                _UPSERT_USAGE,
                m.session_id,
                m.provider_id or "",
                m.model_id or "",
                step.cost_delta,
                u.input_tokens,
                u.output_tokens,
                u.reasoning_tokens,
                u.cache_read_tokens,
                u.cache_write_tokens,
                1 if steps == 1 else 0,  # the message's first step counts it in its model
                m.priced,
            )
