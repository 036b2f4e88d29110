"""The SQL both relational backends share: every Store method written once over a tiny connection
seam, with the dialect differences (placeholders, timestamps, LIMIT) left to SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opencode_api.store._branch_records import BranchRecords
from opencode_api.store._compaction_records import CompactionRecords
from opencode_api.store._file_records import FileRecords
from opencode_api.store._leases import TurnOwnership
from opencode_api.store._models import (
    Message,
    MessagePage,
    MessageStatus,
    Part,
    Session,
    SessionCost,
    SessionStatus,
    Todo,
    utcnow,
)
from opencode_api.store._protocol import ClearableField, Order
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
from opencode_api.store._turn_writes import TurnWrites
from opencode_api.store._webhook_records import WebhookRecords


class SqlStore(
    TurnWrites,
    BranchRecords,
    FileRecords,
    QuestionRecords,
    CompactionRecords,
    QuotaLedger,
    TurnOwnership,
    WebhookRecords,
):
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

    async def _revert_point(self, conn: Conn, session_id: str, user_id: str | None) -> bool | None:
        """Whether the session has a revert in place; None when there is no such session."""
        sql, args = "SELECT revert_message_id FROM sessions WHERE id = ?", [session_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        row = await conn.fetchrow(sql, *args)
        return None if row is None else row["revert_message_id"] is not None

    async def _session_exists(self, conn: Conn, session_id: str, user_id: str | None) -> bool:
        sql, args = "SELECT 1 AS one FROM sessions WHERE id = ?", [session_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        return await conn.fetchrow(sql, *args) is not None

    # -- sessions ------------------------------------------------------------------------------
    async def create_session(self, session: Session) -> Session:
        args = self._session_args(session)
        async with self._single_write() as conn:
            await conn.execute(
                f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({self._marks(len(args))})",
                *args,
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
        max_cost: float | None = None,
        webhook_url: str | None = None,
        clear: Sequence[ClearableField] = (),
    ) -> Session | None:
        sets, args = ["updated_at = ?"], [self._ts(utcnow())]
        for column, value in (
            ("title", title),
            ("provider_id", provider_id),
            ("model_id", model_id),
            ("status", status),
            ("max_cost", max_cost),
            ("webhook_url", webhook_url),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value)
        sets += [f"{column} = NULL" for column in clear if column in ("max_cost", "webhook_url")]
        sql = f"UPDATE sessions SET {', '.join(sets)} WHERE id = ?"
        args.append(session_id)
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        async with self._single_write() as conn:
            row = await conn.fetchrow(sql + f" RETURNING {SESSION_COLUMNS}", *args)
        return None if row is None else self._session(row)

    async def delete_session(self, session_id: str, *, user_id: str | None = None) -> bool:
        # Messages, parts, todos, questions, compaction and cost roll-ups go by ON DELETE CASCADE.
        sql, args = "DELETE FROM sessions WHERE id = ?", [session_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        async with self._single_write() as conn:
            return await conn.execute(sql, *args) > 0

    # -- messages ------------------------------------------------------------------------------
    async def delete_message(self, session_id: str, message_id: str) -> bool:
        async with self._write() as conn:
            await self._drop_files_of(conn, session_id, "m.id = ?", message_id)
            if not await conn.execute(
                "DELETE FROM messages WHERE id = ? AND session_id = ?", message_id, session_id
            ):
                return False
            await conn.execute(
                "UPDATE sessions SET message_count = message_count - 1, updated_at = ? "
                "WHERE id = ?",
                self._ts(utcnow()),
                session_id,
            )
        return True

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
        async with self._single_write() as conn:
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
        async with self._read() as conn:
            revert = await self._revert_point(conn, session_id, user_id)
            if revert is None:
                return None
            if revert:  # a revert hides messages: the index alone no longer says which
                where += " AND reverted = FALSE"
            page_args = list(args)
            # A deferred join: the page's ids come from the (session_id, created_at, id) index
            # alone, so skipping `offset` entries touches index pages only; full rows are read
            # for the page.
            page_sql = (
                f"SELECT m.{MESSAGE_COLUMNS.replace(', ', ', m.')} FROM "
                f"(SELECT id, created_at FROM messages WHERE {where} "
                f"ORDER BY created_at {direction}, id {direction}"
                f"{self._page_clause(limit, offset, page_args)}) AS p "
                "JOIN messages m ON m.id = p.id "
                f"ORDER BY p.created_at {direction}, p.id {direction}"
            )
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
        async with self._single_write() as conn:
            await conn.execute(
                "INSERT INTO todos (session_id, todos) VALUES (?, ?) "
                "ON CONFLICT (session_id) DO UPDATE SET todos = excluded.todos",
                session_id,
                dump_json([t.model_dump() for t in todos]),
            )
