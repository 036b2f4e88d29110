"""The SQL both relational backends share: every Store method written once over a tiny connection
seam, with the dialect differences (placeholders, timestamps, LIMIT) left to SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opencode_api.store._compaction_records import CompactionRecords
from opencode_api.store._errors import StoreConflict
from opencode_api.store._leases import TurnOwnership
from opencode_api.store._models import (
    Message,
    MessagePage,
    MessageStatus,
    Part,
    Session,
    SessionCost,
    SessionStatus,
    StepRecord,
    Todo,
    utcnow,
)
from opencode_api.store._protocol import Order
from opencode_api.store._question_records import QuestionRecords
from opencode_api.store._quota_ledger import QuotaLedger
from opencode_api.store._rows import (
    MESSAGE_COLUMNS,
    PART_COLUMNS,
    SESSION_COLUMNS,
    Conn,
    StatementCount,
    cost_from_rows,
    dump_json,
    load_json,
)

_INSERT_PART = (
    f"INSERT INTO message_parts ({PART_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET type = excluded.type, content = excluded.content, "
    "tool_call_id = excluded.tool_call_id, tool_name = excluded.tool_name, "
    "tool_args = excluded.tool_args, tool_output = excluded.tool_output, "
    "tool_status = excluded.tool_status, metadata = excluded.metadata"
)
_UPSERT_MESSAGE = (
    f"INSERT INTO messages ({MESSAGE_COLUMNS}, step_count) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
    "ON CONFLICT (id) DO UPDATE SET content = excluded.content, "
    "provider_id = excluded.provider_id, model_id = excluded.model_id, usage = excluded.usage, "
    "cost = excluded.cost, priced = excluded.priced, finish = excluded.finish, "
    "error = excluded.error, status = excluded.status, step_count = messages.step_count + 1"
)


class SqlStore(QuestionRecords, CompactionRecords, QuotaLedger, TurnOwnership):
    """Every Store method in SQL understood by both SQLite (>= 3.35) and PostgreSQL."""

    # SQLite needs a LIMIT before an OFFSET; -1 means none. Postgres takes OFFSET alone.
    _NO_LIMIT = ""
    _counts: StatementCount  # set by the dialect's __init__

    @property
    def statements(self) -> int:
        """Statements sent to the database since the store was built (BEGIN/COMMIT included;
        on PostgreSQL each is a round trip). Not part of the Store protocol: a measurement."""
        return self._counts.statements

    @property
    def transactions(self) -> int:
        """Transactions (BEGIN ... COMMIT/ROLLBACK) opened since the store was built."""
        return self._counts.transactions

    def _page_clause(self, limit: int | None, offset: int, args: list[Any]) -> str:
        sql = ""
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        elif offset:
            sql += f" {self._NO_LIMIT}"
        if offset:
            sql += " OFFSET ?"
            args.append(offset)
        return sql

    async def _parts_of(self, conn: Conn, message_ids: Sequence[str]) -> dict[str, list[Part]]:
        by_message: dict[str, list[Part]] = {mid: [] for mid in message_ids}
        if not message_ids:
            return by_message
        rows = await conn.fetch(
            f"SELECT {PART_COLUMNS} FROM message_parts "
            f"WHERE message_id IN ({self._marks(len(message_ids))}) "
            "ORDER BY message_id, created_at, id",
            *message_ids,
        )
        for r in rows:
            by_message[r["message_id"]].append(self._part(r))
        return by_message

    async def _session_exists(self, conn: Conn, session_id: str, user_id: str | None) -> bool:
        sql, args = "SELECT 1 AS one FROM sessions WHERE id = ?", [session_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        return await conn.fetchrow(sql, *args) is not None

    async def _insert_message(self, conn: Conn, message: Message) -> None:
        await conn.execute(
            f"INSERT INTO messages ({MESSAGE_COLUMNS}, owner) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            *self._message_args(message),
            self._owner_of(message.status),
        )
        for part in message.parts:
            await conn.execute(_INSERT_PART, *self._part_args(part))
        changed = await conn.execute(
            "UPDATE sessions SET message_count = message_count + 1, updated_at = ? WHERE id = ?",
            self._ts(utcnow()),
            message.session_id,
        )
        if not changed:
            raise StoreConflict(f"session {message.session_id} does not exist")

    # -- sessions ------------------------------------------------------------------------------
    async def create_session(self, session: Session) -> Session:
        async with self._write() as conn:
            await conn.execute(
                f"INSERT INTO sessions ({SESSION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                session.id,
                session.user_id,
                session.title,
                session.provider_id,
                session.model_id,
                session.system,
                session.status,
                session.message_count,
                session.total_cost,
                session.total_input_tokens,
                session.total_output_tokens,
                self._ts(session.created_at),
                self._ts(session.updated_at),
            )
        return session

    async def get_session(self, session_id: str, *, user_id: str | None = None) -> Session | None:
        sql, args = f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?", [session_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        async with self._point_read() as conn:
            row = await conn.fetchrow(sql, *args)
        return None if row is None else self._session(row)

    async def list_sessions(
        self, *, user_id: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Session]:
        sql, args = f"SELECT {SESSION_COLUMNS} FROM sessions", []
        if user_id is not None:
            sql += " WHERE user_id = ?"
            args.append(user_id)
        sql += " ORDER BY updated_at DESC, id DESC" + self._page_clause(limit, offset, args)
        async with self._read() as conn:
            rows = await conn.fetch(sql, *args)
        return [self._session(r) for r in rows]

    async def update_session(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        title: str | None = None,
        provider_id: str | None = None,
        model_id: str | None = None,
        status: SessionStatus | None = None,
    ) -> Session | None:
        sets, args = ["updated_at = ?"], [self._ts(utcnow())]
        for column, value in (
            ("title", title),
            ("provider_id", provider_id),
            ("model_id", model_id),
            ("status", status),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value)
        sql = f"UPDATE sessions SET {', '.join(sets)} WHERE id = ?"
        args.append(session_id)
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        async with self._write() as conn:
            row = await conn.fetchrow(sql + f" RETURNING {SESSION_COLUMNS}", *args)
        return None if row is None else self._session(row)

    async def delete_session(self, session_id: str, *, user_id: str | None = None) -> bool:
        # Messages, parts, todos, questions, compaction and cost roll-ups go by ON DELETE CASCADE.
        sql, args = "DELETE FROM sessions WHERE id = ?", [session_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        async with self._write() as conn:
            return await conn.execute(sql, *args) > 0

    # -- messages ------------------------------------------------------------------------------
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
        async with self._write() as conn:
            before = await conn.fetchrow("SELECT step_count FROM messages WHERE id = ?", m.id)
            await conn.execute(_UPSERT_MESSAGE, *self._message_args(m))
            for part in step.parts:
                await conn.execute(_INSERT_PART, *self._part_args(part))
            changed = await conn.execute(
                "UPDATE sessions SET total_cost = total_cost + ?, "
                "total_input_tokens = total_input_tokens + ?, "
                "total_output_tokens = total_output_tokens + ?, "
                "message_count = message_count + ?, updated_at = ? WHERE id = ?",
                step.cost_delta,
                u.input_tokens,
                u.output_tokens,
                1 if before is None else 0,
                self._ts(utcnow()),
                m.session_id,
            )
            if not changed:
                raise StoreConflict(f"session {m.session_id} does not exist")
            first_step = before is None or before["step_count"] == 0
            await conn.execute(
                "INSERT INTO session_model_usage (session_id, provider_id, model_id, cost, "
                "input_tokens, output_tokens, reasoning_tokens, cache_read_tokens, "
                "cache_write_tokens, messages, priced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (session_id, provider_id, model_id) DO UPDATE SET "
                "cost = session_model_usage.cost + excluded.cost, "
                "input_tokens = session_model_usage.input_tokens + excluded.input_tokens, "
                "output_tokens = session_model_usage.output_tokens + excluded.output_tokens, "
                "reasoning_tokens = session_model_usage.reasoning_tokens "
                "+ excluded.reasoning_tokens, "
                "cache_read_tokens = session_model_usage.cache_read_tokens "
                "+ excluded.cache_read_tokens, "
                "cache_write_tokens = session_model_usage.cache_write_tokens "
                "+ excluded.cache_write_tokens, "
                "messages = session_model_usage.messages + excluded.messages, "
                "priced = session_model_usage.priced AND excluded.priced",
                m.session_id,
                m.provider_id or "",
                m.model_id or "",
                step.cost_delta,
                u.input_tokens,
                u.output_tokens,
                u.reasoning_tokens,
                u.cache_read_tokens,
                u.cache_write_tokens,
                1 if first_step else 0,
                m.priced,
            )

    async def get_message(self, message_id: str) -> Message | None:
        async with self._point_read() as conn:
            row = await conn.fetchrow(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", message_id
            )
            if row is None:
                return None
            parts = await self._parts_of(conn, [message_id])
        return self._message(row, parts[message_id])

    async def set_message_status(
        self, message_id: str, status: MessageStatus, *, error: dict[str, object] | None = None
    ) -> None:
        async with self._write() as conn:
            if error is None:
                await conn.execute(
                    "UPDATE messages SET status = ? WHERE id = ?", status, message_id
                )
            else:
                await conn.execute(
                    "UPDATE messages SET status = ?, error = ? WHERE id = ?",
                    status,
                    dump_json(error),
                    message_id,
                )

    async def list_messages(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        order: Order = "asc",
        include_compacted: bool = True,
    ) -> MessagePage | None:
        direction = "DESC" if order == "desc" else "ASC"
        where, args = "session_id = ?", [session_id]
        if not include_compacted:
            where += " AND compacted = FALSE"
        page_args = list(args)
        # A deferred join: the page's ids come from the (session_id, created_at, id) index alone,
        # so skipping `offset` entries touches index pages only; full rows are read for the page.
        page_sql = (
            f"SELECT m.{MESSAGE_COLUMNS.replace(', ', ', m.')} FROM "
            f"(SELECT id, created_at FROM messages WHERE {where} "
            f"ORDER BY created_at {direction}, id {direction}"
            f"{self._page_clause(limit, offset, page_args)}) AS p "
            f"JOIN messages m ON m.id = p.id ORDER BY p.created_at {direction}, p.id {direction}"
        )
        async with self._read() as conn:
            if not await self._session_exists(conn, session_id, user_id):
                return None
            count = await conn.fetchrow(f"SELECT COUNT(*) AS n FROM messages WHERE {where}", *args)
            rows = await conn.fetch(page_sql, *page_args)
            parts = await self._parts_of(conn, [r["id"] for r in rows])
        return MessagePage(
            messages=[self._message(r, parts[r["id"]]) for r in rows],
            total_count=int(count["n"]) if count is not None else 0,
            limit=limit,
            offset=offset,
        )

    # -- cost ----------------------------------------------------------------------------------
    async def get_session_cost(
        self, session_id: str, *, user_id: str | None = None
    ) -> SessionCost | None:
        async with self._point_read() as conn:
            if not await self._session_exists(conn, session_id, user_id):
                return None
            rows = await conn.fetch(
                "SELECT provider_id, model_id, cost, input_tokens, output_tokens, "
                "reasoning_tokens, cache_read_tokens, cache_write_tokens, messages, priced "
                "FROM session_model_usage WHERE session_id = ? ORDER BY provider_id, model_id",
                session_id,
            )
        return cost_from_rows(session_id, rows)

    # -- todos ---------------------------------------------------------------------------------
    async def get_todos(self, session_id: str) -> list[Todo]:
        async with self._point_read() as conn:
            row = await conn.fetchrow("SELECT todos FROM todos WHERE session_id = ?", session_id)
        return [] if row is None else [Todo.model_validate(t) for t in load_json(row["todos"])]

    async def set_todos(self, session_id: str, todos: Sequence[Todo]) -> None:
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO todos (session_id, todos) VALUES (?, ?) "
                "ON CONFLICT (session_id) DO UPDATE SET todos = excluded.todos",
                session_id,
                dump_json([t.model_dump() for t in todos]),
            )
