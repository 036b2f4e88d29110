"""PostgreSQL backend (asyncpg connections, `PgPool`): the backend for several server processes."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opencode_api.store._errors import (
    MigrationError,
    StoreConflict,
    StoreError,
    StoreNotOpen,
    StoreValueError,
)
from opencode_api.store._migrations import load_migrations
from opencode_api.store._pg_pool import PgPool
from opencode_api.store._pg_turn import PostgresTurnWrites
from opencode_api.store._rows import Conn, Row, StatementCount
from opencode_api.store._sql import SqlStore

if TYPE_CHECKING:
    # asyncpg is the optional "postgres" extra: imported when a PostgresStore opens, not before.
    import asyncpg

# Any constant shared by every opencode-api process; it names the migration lock.
_MIGRATION_LOCK_KEY = 0x6F70656E636F6465  # "opencode"


@functools.cache
def _driver_errors() -> tuple[type[BaseException], ...]:
    """What the driver raises when the database fails us (asyncpg is imported on open)."""
    import asyncpg

    return (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
        TimeoutError,
    )


_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=512)
def _to_dollar(sql: str) -> str:
    """``?`` placeholders (the shared SQL) to ``$1, $2, ...`` (asyncpg)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def _rows_changed(status: str) -> int:
    # asyncpg returns the command tag: "UPDATE 3", "DELETE 0", "INSERT 0 1".
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _PgConn:
    __slots__ = ("_conn", "_counts")

    def __init__(self, conn: asyncpg.Connection, counts: StatementCount) -> None:
        self._conn = conn
        self._counts = counts

    async def execute(self, sql: str, *args: Any) -> int:
        self._counts.statements += 1
        return _rows_changed(await self._conn.execute(_to_dollar(sql), *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._counts.statements += 1
        await self._conn.executemany(_to_dollar(sql), rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        self._counts.statements += 1
        return list(await self._conn.fetch(_to_dollar(sql), *args))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        self._counts.statements += 1
        row: Row | None = await self._conn.fetchrow(_to_dollar(sql), *args)
        return row


class PostgresStore(PostgresTurnWrites, SqlStore):
    """Same schema as SQLite in the Postgres dialect (timestamptz, jsonb). Every multi-statement
    write is one transaction; works through a transaction-mode pooler (Supabase's Supavisor on
    port 6543, PgBouncer) with ``statement_cache_size=0``."""

    def __init__(
        self,
        dsn: str,
        *,
        statement_cache_size: int = 100,
        min_size: int = 1,
        max_size: int = 10,
        command_timeout: float | None = 60.0,
    ) -> None:
        self.dsn = dsn
        self._statement_cache_size = statement_cache_size
        self._min_size = min_size
        self._max_size = max_size
        self._command_timeout = command_timeout
        self._pool: PgPool | None = None
        self._counts = StatementCount()

    def __repr__(self) -> str:
        return "PostgresStore(<dsn>)"  # the DSN may hold a password

    async def open(self) -> None:
        if self._pool is not None:
            return
        import asyncpg

        async def connect() -> asyncpg.Connection:
            conn: asyncpg.Connection = await asyncpg.connect(
                self.dsn,
                statement_cache_size=self._statement_cache_size,
                command_timeout=self._command_timeout,
            )
            return conn

        pool = PgPool(connect, min_size=self._min_size, max_size=self._max_size)
        await pool.open()
        try:
            await self._migrate(pool)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def _migrate(self, pool: PgPool) -> None:
        import asyncpg

        migrations = load_migrations("postgres")
        async with pool.acquire() as conn:
            try:
                # One transaction under a transaction-scoped advisory lock: a second process
                # waits here, then finds the versions recorded. Unlike a session lock it also
                # holds through a transaction-mode pooler.
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_KEY)
                    await conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                        "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                    )
                    applied = {
                        r["version"]
                        for r in await conn.fetch("SELECT version FROM schema_migrations")
                    }
                    for migration in migrations:
                        if migration.version in applied:
                            continue
                        await conn.execute(migration.sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                            migration.version,
                            migration.name,
                        )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"PostgreSQL migration failed: {exc}") from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _open_pool(self) -> PgPool:
        if self._pool is None:
            raise StoreNotOpen("PostgresStore is not open: await store.open() first")
        return self._pool

    @asynccontextmanager
    async def _transaction(self, **options: Any) -> AsyncIterator[Conn]:
        import asyncpg

        counts = self._counts
        try:
            async with self._open_pool().acquire() as conn:
                # BEGIN and COMMIT (or ROLLBACK): two round trips of their own.
                counts.statements += 2
                counts.transactions += 1
                async with conn.transaction(**options):
                    yield _PgConn(conn, counts)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise StoreConflict(f"PostgreSQL: {exc}") from exc
        except asyncpg.DataError as exc:
            raise StoreValueError(f"PostgreSQL: {exc}") from exc
        except _driver_errors() as exc:
            # OSError: the server cannot be reached (refused, reset) while acquiring or querying;
            # InternalClientError: a connection that died mid-protocol; TimeoutError: the
            # command timeout.
            raise StoreError(f"PostgreSQL: {exc!r}") from exc

    @asynccontextmanager
    async def _point_read(self) -> AsyncIterator[Conn]:
        # A few rows by key: one statement each, no BEGIN/COMMIT round trips around it.
        import asyncpg

        try:
            async with self._open_pool().acquire() as conn:
                yield _PgConn(conn, self._counts)
        except asyncpg.DataError as exc:
            raise StoreValueError(f"PostgreSQL: {exc}") from exc
        except _driver_errors() as exc:
            raise StoreError(f"PostgreSQL: {exc!r}") from exc

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[Conn]:
        # One statement in autocommit: atomic by itself, no BEGIN/COMMIT round trips.
        import asyncpg

        try:
            async with self._open_pool().acquire() as conn:
                yield _PgConn(conn, self._counts)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise StoreConflict(f"PostgreSQL: {exc}") from exc
        except asyncpg.DataError as exc:
            raise StoreValueError(f"PostgreSQL: {exc}") from exc
        except _driver_errors() as exc:
            raise StoreError(f"PostgreSQL: {exc!r}") from exc

    def _write(self) -> AbstractAsyncContextManager[Conn]:
        return self._transaction()

    def _single_write(self) -> AbstractAsyncContextManager[Conn]:
        return self._statement()

    def _read(self) -> AbstractAsyncContextManager[Conn]:
        # Repeatable read: a page and its total_count come from one snapshot.
        return self._transaction(isolation="repeatable_read", readonly=True)

    def _ts(self, value: datetime) -> Any:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def _json_text(self, column: str, key: str) -> str:
        return f"{column}->>'{key}'"  # JSON columns are JSONB here

    def _from_ts(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
