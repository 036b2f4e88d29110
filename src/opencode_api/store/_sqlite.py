"""SQLite backend: WAL, one writer connection behind an asyncio.Lock, a few aiosqlite readers."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from opencode_api.store._errors import MigrationError, StoreError, StoreNotOpen
from opencode_api.store._migrations import load_migrations
from opencode_api.store._rows import Conn, StatementCount
from opencode_api.store._sql import SqlStore
from opencode_api.store._sqlite_conns import LoopReadConn, SqliteConn, is_busy
from opencode_api.store._sqlite_groups import CommitGroups, store_error

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


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
    other processes sharing the file are waited for (``busy_timeout_ms``). Reads use their own
    connections in threads and see committed data (WAL readers never block the writer).

    Write transactions run on the event loop thread, each in one step, and the writes of one
    loop tick share a COMMIT (``CommitGroups``, store/_sqlite_groups.py). This is a deliberate
    exception to "no blocking calls on the loop": a write here is a few short statements on
    pages SQLite has in memory (tens of microseconds), while a thread hop per statement costs
    more than the statement and serialized every session behind the writer thread (measured:
    ~50 hops per turn capped a server near 70 turns/s). Nothing on this connection can block
    for long: WAL commits do not fsync with ``synchronous=NORMAL``; checkpoints (which do) run
    on the aiosqlite connection in its thread; and the write lock of another process is waited
    for with an asynchronous back-off, never SQLite's blocking busy handler.
    """

    # Commits between two background WAL checkpoints (SQLite's own default is 1000 pages).
    _CHECKPOINT_EVERY = 500

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
        self._loop_writer: sqlite3.Connection | None = None
        self._commit_groups: CommitGroups | None = None
        self._commits = 0
        self._checkpoint: asyncio.Task[None] | None = None
        self._counts = StatementCount()

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
            if not self._memory:
                loop_db = await asyncio.to_thread(self._connect_loop_writer)
                self._loop_writer = loop_db
                self._commit_groups = CommitGroups(
                    loop_db,
                    self._counts,
                    self._write_lock,
                    lambda: self._begin_immediate(loop_db),
                    self._after_commit,
                )
        except BaseException:
            await writer.close()
            await self._close_readers()
            raise
        self._writer = writer

    def _connect_loop_writer(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        # No blocking busy handler on the loop: _begin_immediate backs off asynchronously.
        db.execute("PRAGMA busy_timeout = 0")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")
        # Checkpoints fsync: they run in the aiosqlite writer's thread (_after_commit).
        db.execute("PRAGMA wal_autocheckpoint = 0")
        return db

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
            if self._checkpoint is not None:
                await asyncio.gather(self._checkpoint, return_exceptions=True)
                self._checkpoint = None
            if self._commit_groups is not None:
                self._commit_groups.flush()
                self._commit_groups = None
            loop_writer, self._loop_writer = self._loop_writer, None
            if loop_writer is not None:
                loop_writer.close()
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
        self._counts.statements += 2  # BEGIN, and COMMIT or ROLLBACK
        self._counts.transactions += 1
        try:
            yield SqliteConn(db, self._counts)
        except BaseException as exc:
            await _rollback(db)
            error = store_error(exc)
            if error is exc:
                raise
            raise error from exc
        try:
            await _end(db, "COMMIT")
        except sqlite3.Error as exc:
            await _rollback(db)
            raise StoreError(f"SQLite: {exc}") from exc

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Conn]:
        db = self._open_writer()
        groups = self._commit_groups
        if groups is None:  # :memory: has one connection, in aiosqlite's thread
            async with self._write_lock, self._transaction(db, "BEGIN IMMEDIATE") as conn:
                yield conn
            return
        async with groups.write() as conn:
            yield conn

    async def _begin_immediate(self, db: sqlite3.Connection) -> None:
        """Take SQLite's write lock; while another process holds it, back off asynchronously."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_timeout_ms / 1000
        delay = 0.001
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise StoreError(f"SQLite: {exc}") from exc
                if loop.time() >= deadline:
                    raise StoreError(f"SQLite: {exc} (after {self._busy_timeout_ms} ms)") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)

    def _after_commit(self) -> None:
        self._commits += 1
        if self._commits < self._CHECKPOINT_EVERY:
            return
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        self._commits = 0
        writer = self._writer
        if writer is not None:
            # Owned by the store: awaited in close(); a failed checkpoint is retried next time.
            self._checkpoint = asyncio.create_task(self._run_checkpoint(writer))

    @staticmethod
    async def _run_checkpoint(writer: aiosqlite.Connection) -> None:
        try:
            await writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass

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

    @asynccontextmanager
    async def _point_read(self) -> AsyncIterator[Conn]:
        # A few rows by key take microseconds on the loop's connection; through a reader's
        # thread they waited for the GIL behind the loop (measured: ~10 ms a read at 1,000
        # sessions, which throttled turn admission to ~100/s). Writes are synchronous steps on
        # this connection, so a read here never sees one half-done.
        loop_db = self._loop_writer
        if loop_db is None:
            async with self._read() as conn:
                yield conn
            return
        self._open_writer()
        try:
            yield LoopReadConn(loop_db, self._counts, self._read)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {exc}") from exc

    # -- dialect ---------------------------------------------------------------------------------
    def _ts(self, value: datetime) -> Any:
        # _TS_FORMAT, written out: strftime costs ~5 us and a turn writes about ten of these.
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        v = value.astimezone(UTC)
        return (
            f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:"
            f"{v.second:02d}.{v.microsecond:06d}Z"
        )

    def _json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"  # JSON columns are TEXT here

    def _from_ts(self, value: Any) -> datetime:
        # _TS_FORMAT is ISO 8601: fromisoformat reads it 40x faster than strptime.
        return datetime.fromisoformat(value)
