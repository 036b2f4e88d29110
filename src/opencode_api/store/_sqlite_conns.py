"""The SQLite store's connection wrappers: each call counted (``StatementCount``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiosqlite

from opencode_api.store._rows import Conn, Row, StatementCount


class SqliteConn:
    """Statements on an aiosqlite connection (in its thread): readers, and ``:memory:``."""

    __slots__ = ("_counts", "_db")

    def __init__(self, db: aiosqlite.Connection, counts: StatementCount) -> None:
        self._db = db
        self._counts = counts

    async def execute(self, sql: str, *args: Any) -> int:
        self._counts.statements += 1
        cursor = await self._db.execute(sql, args)
        changed = cursor.rowcount
        await cursor.close()
        return changed

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._counts.statements += 1
        await self._db.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        self._counts.statements += 1
        return list(await self._db.execute_fetchall(sql, args))  # type: ignore[arg-type]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None


class LoopConn:
    """Statements of a write transaction, run on the event loop thread (see SqliteStore)."""

    __slots__ = ("_counts", "_db")

    def __init__(self, db: sqlite3.Connection, counts: StatementCount) -> None:
        self._db = db
        self._counts = counts

    async def execute(self, sql: str, *args: Any) -> int:
        self._counts.statements += 1
        return self._db.execute(sql, args).rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._counts.statements += 1
        self._db.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        self._counts.statements += 1
        return self._db.execute(sql, args).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        self._counts.statements += 1
        row: Row | None = self._db.execute(sql, args).fetchone()
        return row


class LoopReadConn(LoopConn):
    """Point reads on the loop's connection. That connection never waits for a lock (busy
    timeout 0); in the rare moments another process makes a WAL read wait (recovery after a
    crash), the statement goes to a reader thread, whose connection does wait."""

    __slots__ = ("_fallback",)

    def __init__(
        self,
        db: sqlite3.Connection,
        counts: StatementCount,
        fallback: Callable[[], AbstractAsyncContextManager[Conn]],
    ) -> None:
        super().__init__(db, counts)
        self._fallback = fallback

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        self._counts.statements += 1
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        async with self._fallback() as conn:
            return await conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None


def is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)
