"""Rows and values of the SQL stores: column lists, JSON columns, the driver connection's shape,
and the mapping between rows and models (shared by SQLite, PostgreSQL and the REST backend)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

import orjson
from ulid import ULID

from opencode_api.store._models import (
    Message,
    ModelCost,
    Part,
    Question,
    QuestionItem,
    Session,
    SessionCost,
)
from opencode_api.usage import Usage

Row = Mapping[str, Any]


SESSION_COLUMNS = (
    "id, user_id, title, provider_id, model_id, system, status, message_count, total_cost, "
    "total_input_tokens, total_output_tokens, created_at, updated_at, max_cost, webhook_url, "
    "forked_from, revert_message_id"
)
MESSAGE_COLUMNS = (
    "id, session_id, role, created_at, content, provider_id, model_id, usage, cost, priced, "
    "finish, error, status, parent_id, compacted, summary"
)
PART_COLUMNS = (
    "id, message_id, session_id, type, content, tool_call_id, tool_name, tool_args, tool_output, "
    "tool_status, metadata, created_at"
)


class Conn(Protocol):
    """The few calls the shared SQL needs from a driver connection (``?`` placeholders)."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; the number of rows it changed."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row of arguments (one call, counted once)."""

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...


class StatementCount:
    """What a SQL store sent its database: statements (each ``execute``/``fetch``/``fetchrow``/
    ``executemany`` call, and each BEGIN, COMMIT and ROLLBACK) and write or read transactions.
    On PostgreSQL a statement is a round trip. Plain integers: a few additions per call."""

    __slots__ = ("statements", "transactions")

    def __init__(self) -> None:
        self.statements = 0
        self.transactions = 0


def new_reservation_id() -> str:
    return f"rsv_{ULID()}"


def dump_json(value: object) -> str | None:
    """Compact JSON text (orjson, ~5x the stdlib's speed; the stdlib for what orjson refuses,
    such as integers beyond 64 bits in a model's tool arguments)."""
    if value is None:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


def load_json(value: Any) -> Any:
    if not isinstance(value, str | bytes):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:  # NaN or Infinity, which json.dumps writes and orjson refuses
        return json.loads(value)


def cost_from_rows(session_id: str, rows: Sequence[Row]) -> SessionCost:
    """Build a SessionCost from per-model roll-up rows (shared with the REST backend)."""
    by_model = [
        ModelCost(
            provider_id=r["provider_id"] or None,
            model_id=r["model_id"] or None,
            cost=float(r["cost"]),
            input_tokens=int(r["input_tokens"]),
            output_tokens=int(r["output_tokens"]),
            messages=int(r["messages"]),
            priced=bool(r["priced"]),
        )
        for r in rows
    ]
    return SessionCost(
        session_id=session_id,
        total_cost=sum(float(r["cost"]) for r in rows),
        input_tokens=sum(int(r["input_tokens"]) for r in rows),
        output_tokens=sum(int(r["output_tokens"]) for r in rows),
        reasoning_tokens=sum(int(r["reasoning_tokens"]) for r in rows),
        cache_read_tokens=sum(int(r["cache_read_tokens"]) for r in rows),
        cache_write_tokens=sum(int(r["cache_write_tokens"]) for r in rows),
        by_model=by_model,
        priced=all(m.priced for m in by_model),
    )


class SqlDialect(ABC):
    """What SQLite and PostgreSQL each provide to the shared SQL (and its mixins)."""

    @abstractmethod
    def _write(self) -> AbstractAsyncContextManager[Conn]:
        """A connection inside a write transaction: committed on exit, rolled back on error."""

    def _single_write(self) -> AbstractAsyncContextManager[Conn]:
        """A connection for a write of one statement: ``_write()`` unless the dialect can run
        it without a transaction around it (PostgreSQL: one statement is atomic by itself)."""
        return self._write()

    @abstractmethod
    def _read(self) -> AbstractAsyncContextManager[Conn]:
        """A connection inside a read-only transaction (one snapshot for several queries)."""

    def _point_read(self) -> AbstractAsyncContextManager[Conn]:
        """A connection for a read of a few rows by key (a session, its cost, todos...).

        ``_read()`` unless the dialect has something cheaper: SQLite answers these from the
        event loop's own connection, with no thread hop (under load a hop waits for the GIL).
        """
        return self._read()

    @abstractmethod
    def _ts(self, value: datetime) -> Any:
        """A timestamp as the driver stores it."""

    @abstractmethod
    def _from_ts(self, value: Any) -> datetime: ...

    @abstractmethod
    def _json_text(self, column: str, key: str) -> str:
        """SQL for the text under ``key`` of the JSON object in ``column`` (NULL when absent)."""

    def _opt_ts(self, value: Any) -> datetime | None:
        return None if value is None else self._from_ts(value)

    @staticmethod
    def _marks(n: int) -> str:
        return ", ".join("?" * n)


class RowMapping(SqlDialect):
    """Rows to models and models to statement arguments."""

    def _session(self, r: Row) -> Session:
        return Session(
            id=r["id"],
            user_id=r["user_id"],
            title=r["title"],
            provider_id=r["provider_id"],
            model_id=r["model_id"],
            system=r["system"],
            status=r["status"],
            message_count=r["message_count"],
            total_cost=r["total_cost"],
            total_input_tokens=r["total_input_tokens"],
            total_output_tokens=r["total_output_tokens"],
            created_at=self._from_ts(r["created_at"]),
            updated_at=self._from_ts(r["updated_at"]),
            max_cost=r["max_cost"],
            webhook_url=r["webhook_url"],
            forked_from=load_json(r["forked_from"]),
            revert=None
            if r["revert_message_id"] is None
            else {"message_id": r["revert_message_id"]},
        )

    def _session_args(self, s: Session) -> tuple[Any, ...]:
        return (
            s.id,
            s.user_id,
            s.title,
            s.provider_id,
            s.model_id,
            s.system,
            s.status,
            s.message_count,
            s.total_cost,
            s.total_input_tokens,
            s.total_output_tokens,
            self._ts(s.created_at),
            self._ts(s.updated_at),
            s.max_cost,
            s.webhook_url,
            None if s.forked_from is None else dump_json(s.forked_from.model_dump()),
            None if s.revert is None else s.revert.message_id,
        )

    def _part(self, r: Row) -> Part:
        return Part(
            id=r["id"],
            message_id=r["message_id"],
            session_id=r["session_id"],
            type=r["type"],
            content=r["content"],
            tool_call_id=r["tool_call_id"],
            tool_name=r["tool_name"],
            tool_args=load_json(r["tool_args"]),
            tool_output=r["tool_output"],
            tool_status=r["tool_status"],
            metadata=load_json(r["metadata"]) or {},
            created_at=self._from_ts(r["created_at"]),
        )

    def _message(self, r: Row, parts: list[Part]) -> Message:
        usage = load_json(r["usage"])
        return Message(
            id=r["id"],
            session_id=r["session_id"],
            role=r["role"],
            created_at=self._from_ts(r["created_at"]),
            content=r["content"],
            provider_id=r["provider_id"],
            model_id=r["model_id"],
            usage=None if usage is None else Usage.model_validate(usage),
            cost=r["cost"],
            priced=bool(r["priced"]),
            finish=r["finish"],
            error=load_json(r["error"]),
            status=r["status"],
            parent_id=r["parent_id"],
            parts=parts,
            compacted=bool(r["compacted"]),
            summary=bool(r["summary"]),
        )

    def _question(self, r: Row) -> Question:
        return Question(
            id=r["id"],
            session_id=r["session_id"],
            message_id=r["message_id"],
            tool_call_id=r["tool_call_id"],
            questions=[QuestionItem.model_validate(q) for q in load_json(r["questions"])],
            created_at=self._from_ts(r["created_at"]),
            status=r["status"],
            answers=load_json(r["answers"]),
            user_id=r["user_id"],
        )

    def _message_args(self, m: Message) -> tuple[Any, ...]:
        return (
            m.id,
            m.session_id,
            m.role,
            self._ts(m.created_at),
            m.content,
            m.provider_id,
            m.model_id,
            None if m.usage is None else dump_json(m.usage.model_dump()),
            m.cost,
            m.priced,
            m.finish,
            dump_json(m.error),
            m.status,
            m.parent_id,
            m.compacted,
            m.summary,
        )

    def _part_args(self, p: Part) -> tuple[Any, ...]:
        return (
            p.id,
            p.message_id,
            p.session_id,
            p.type,
            p.content,
            p.tool_call_id,
            p.tool_name,
            dump_json(p.tool_args),
            p.tool_output,
            p.tool_status,
            dump_json(p.metadata),
            self._ts(p.created_at),
        )
