"""SQLite backend (aiosqlite): WAL, one writer connection behind an asyncio.Lock, a few readers."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from opencode_api.store._errors import MigrationError, StoreConflict, StoreError, StoreNotOpen
from opencode_api.store._migrations import load_migrations
from opencode_api.store._sql import Conn, Row, SqlStore

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class _SqliteConn:
    __slots__ = ("_db",)

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, *args: Any) -> int:
        cursor = await self._db.execute(sql, args)
        changed = cursor.rowcount
        await cursor.close()
        return changed

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._db.execute_fetchall(sql, args))  # type: ignore[arg-type]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None


async def _end(db: aiosqlite.Connection, statement: str) -> None:
    # Shielded: if we are cancelled while ending a transaction, the statement still runs
    # (aiosqlite runs calls in order on its thread), so the connection never stays inside one.
    await asyncio.shield(db.execute(statement))


async def _rollback(db: aiosqlite.Connection) -> None:
    try:
        await _end(db, "ROLLBACK")
    except sqlite3.OperationalError:
        pass  # SQLite already rolled the transaction back itself (e.g. after a failed COMMIT)


def _make_parent_dir(path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


class SqliteStore(SqlStore):
    """The embedded default. Every write goes through one connection, serialized by a lock, so
    concurrent sessions queue in the process instead of failing with ``database is locked``;
    ``busy_timeout`` covers other processes sharing the file. Reads use their own connections
    and see committed data (WAL readers never block the writer)."""

    _NO_LIMIT = "LIMIT -1"

    def __init__(self, path: str, *, readers: int = 2, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self._memory = path == ":memory:"
        self._reader_count = 0 if self._memory else max(1, readers)
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._write_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    # -- lifecycle -------------------------------------------------------------------------------
    async def _connect(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self.path, isolation_level=None)
        db.row_factory = sqlite3.Row
        await db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        await db.execute("PRAGMA foreign_keys = ON")
        return db

    async def open(self) -> None:
        if self._writer is not None:
            return
        if not self._memory:
            await asyncio.to_thread(_make_parent_dir, self.path)
        writer = await self._connect()
        try:
            if not self._memory:
                await self._enable_wal(writer)
                # NORMAL in WAL mode survives application crashes; only an OS crash or power loss
                # can drop the last commits. That is the usual trade for an embedded store.
                await writer.execute("PRAGMA synchronous = NORMAL")
            await self._migrate(writer)
            for _ in range(self._reader_count):
                reader = await self._connect()
                self._all_readers.append(reader)
                self._readers.put_nowait(reader)
        except BaseException:
            await writer.close()
            await self._close_readers()
            raise
        self._writer = writer

    async def _enable_wal(self, db: aiosqlite.Connection) -> None:
        # Switching the journal mode does not always go through the busy handler: while another
        # process (or store) converts the same new file, SQLite answers "database is locked" at
        # once. Retry with backoff for up to the busy timeout.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_timeout_ms / 1000
        delay = 0.005
        while True:
            try:
                await db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        migrations = load_migrations("sqlite")
        # BEGIN IMMEDIATE takes the write lock first, so a second process starting at the same
        # time waits (busy_timeout) and then sees the version this one wrote.
        await db.execute("BEGIN IMMEDIATE")
        try:
            rows = await db.execute_fetchall("PRAGMA user_version")
            current = int(next(iter(rows))[0])
            for migration in migrations:
                if migration.version > current:
                    for statement in migration.statements():
                        await db.execute(statement)
                    await db.execute(f"PRAGMA user_version = {migration.version}")
        except BaseException as exc:
            await _rollback(db)
            if isinstance(exc, sqlite3.Error):
                raise MigrationError(f"SQLite migration failed: {exc}") from exc
            raise
        await db.execute("COMMIT")

    async def _close_readers(self) -> None:
        while not self._readers.empty():
            self._readers.get_nowait()
        readers, self._all_readers = self._all_readers, []
        for reader in readers:
            await reader.close()

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        async with self._write_lock:
            await self._close_readers()
            if writer is not None:
                await writer.close()

    # -- transactions ----------------------------------------------------------------------------
    def _open_writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise StoreNotOpen("SqliteStore is not open: await store.open() first")
        return self._writer

    @asynccontextmanager
    async def _transaction(self, db: aiosqlite.Connection, begin: str) -> AsyncIterator[Conn]:
        try:
            await db.execute(begin)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {exc}") from exc
        try:
            yield _SqliteConn(db)
        except BaseException as exc:
            await _rollback(db)
            if isinstance(exc, sqlite3.IntegrityError):
                raise StoreConflict(f"SQLite: {exc}") from exc
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"SQLite: {exc}") from exc
            raise
        try:
            await _end(db, "COMMIT")
        except sqlite3.Error as exc:
            await _rollback(db)
            raise StoreError(f"SQLite: {exc}") from exc

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Conn]:
        db = self._open_writer()
        async with self._write_lock, self._transaction(db, "BEGIN IMMEDIATE") as conn:
            yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Conn]:
        db = self._open_writer()
        if self._memory:
            # One in-memory database lives in one connection: reads share the writer.
            async with self._write_lock, self._transaction(db, "BEGIN") as conn:
                yield conn
            return
        reader = await self._readers.get()
        try:
            async with self._transaction(reader, "BEGIN") as conn:
                yield conn
        finally:
            self._readers.put_nowait(reader)

    # -- dialect ---------------------------------------------------------------------------------
    def _ts(self, value: datetime) -> Any:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime(_TS_FORMAT)

    def _from_ts(self, value: Any) -> datetime:
        return datetime.strptime(value, _TS_FORMAT).replace(tzinfo=UTC)
