"""PgPool on a real PostgreSQL server: lending, waiting, broken connections, closing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from opencode_api.store._pg_pool import PgPool, PoolClosed

pytestmark = pytest.mark.postgres


@pytest.fixture
async def connections(postgres_database_url: str) -> AsyncIterator[list[asyncpg.Connection]]:
    """Every connection the pool opened (so a test can see which one it was lent)."""
    opened: list[asyncpg.Connection] = []
    yield opened
    for conn in opened:
        conn.terminate()


def make_pool(url: str, opened: list[asyncpg.Connection], **sizes: int) -> PgPool:
    async def connect() -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(url)
        opened.append(conn)
        return conn

    return PgPool(connect, min_size=sizes.get("min_size", 1), max_size=sizes["max_size"])


class Holder:
    """A task that borrows one of the pool's connections and keeps it until ``release()``;
    ``after`` runs right after the connection went back (before anyone else runs)."""

    def __init__(self, pool: PgPool, after: Callable[[], object] | None = None) -> None:
        self.inside = asyncio.Event()
        self._release = asyncio.Event()
        self._after = after
        self.task = asyncio.create_task(self._hold(pool))

    async def _hold(self, pool: PgPool) -> None:
        async with pool.acquire():
            self.inside.set()
            await self._release.wait()
        if self._after is not None:
            self._after()

    async def release(self) -> None:
        self._release.set()
        await self.task


async def test_reuses_connections_and_never_opens_more_than_max_size(
    postgres_database_url: str, connections: list[asyncpg.Connection]
) -> None:
    pool = make_pool(postgres_database_url, connections, max_size=3)
    await pool.open()
    assert len(connections) == 1
    in_use = 0
    most = 0

    async def one() -> int:
        nonlocal in_use, most
        async with pool.acquire() as conn:
            in_use += 1
            most = max(most, in_use)
            value: int = await conn.fetchval("SELECT pg_backend_pid()")
            in_use -= 1
            return value

    pids = await asyncio.gather(*(one() for _ in range(60)))
    assert len(connections) == 3 and pool.size == 3 and most == 3
    assert len(set(pids)) == 3
    await pool.close()
    assert pool.size == 0 and all(conn.is_closed() for conn in connections)


async def test_idle_connections_above_min_size_are_closed(
    postgres_database_url: str, connections: list[asyncpg.Connection]
) -> None:
    pool = make_pool(postgres_database_url, connections, min_size=1, max_size=3)
    await pool.open()
    holders = [Holder(pool) for _ in range(3)]
    for holder in holders:  # three connections lent at once
        await holder.inside.wait()
    for holder in holders:
        await holder.release()
    assert pool.size == 3
    await pool.reap(time.monotonic())  # not idle long enough yet
    assert pool.size == 3
    await pool.reap(time.monotonic() + 301)  # past max_idle (300 s)
    assert pool.size == 1 and sum(not c.is_closed() for c in connections) == 1
    async with pool.acquire() as conn:  # the one kept still serves
        assert await conn.fetchval("SELECT 1") == 1
    await pool.close()


async def test_waiters_are_served_in_order(
    postgres_database_url: str, connections: list[asyncpg.Connection]
) -> None:
    pool = make_pool(postgres_database_url, connections, max_size=1)
    await pool.open()
    served: list[int] = []

    async def waiter(n: int) -> None:
        async with pool.acquire():
            served.append(n)

    holder = Holder(pool)
    await holder.inside.wait()
    waiters = [asyncio.create_task(waiter(n)) for n in range(5)]
    await asyncio.sleep(0)  # all five wait, in order
    await holder.release()
    await asyncio.gather(*waiters)
    assert served == [0, 1, 2, 3, 4] and len(connections) == 1
    await pool.close()


async def test_a_waiter_cancelled_when_handed_a_connection_passes_it_on(
    postgres_database_url: str, connections: list[asyncpg.Connection]
) -> None:
    pool = make_pool(postgres_database_url, connections, max_size=1)
    await pool.open()

    async def waiter() -> int:
        async with pool.acquire() as conn:
            value: int = await conn.fetchval("SELECT 1")
            return value

    # Right after the holder gives the connection to `doomed`, before `doomed` runs: cancel it.
    holder = Holder(pool, after=lambda: doomed.cancel())
    await holder.inside.wait()
    doomed = asyncio.create_task(waiter())
    survivor = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # both wait
    await holder.release()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await survivor == 1
    assert pool.size == 1 and len(connections) == 1
    await pool.close()


async def test_a_cancelled_statement_is_cancelled_on_the_server_and_its_connection_reused(
    postgres_database_url: str, connections: list[asyncpg.Connection]
) -> None:
    pool = make_pool(postgres_database_url, connections, max_size=1)
    await pool.open()
    started = asyncio.Event()

    async def slow() -> None:
        async with pool.acquire() as conn:
            started.set()
            await conn.execute("SELECT pg_sleep(60)")

    task = asyncio.create_task(slow())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The same connection, free again once the server cancelled the sleep (else this waits 60 s
    # and the test times out).
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 2") == 2
    assert len(connections) == 1 and pool.size == 1
    await pool.close()


async def test_a_server_error_keeps_the_connection_and_an_open_transaction_does_not(
    postgres_database_url: str, connections: list[asyncpg.Connection]
) -> None:
    pool = make_pool(postgres_database_url, connections, max_size=1)
    await pool.open()
    with pytest.raises(asyncpg.UndefinedTableError):
        async with pool.acquire() as conn:
            await conn.execute("SELECT * FROM no_such_table")
    assert not connections[0].is_closed()
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            raise RuntimeError("the caller fails inside a transaction it did not end")
    assert connections[0].is_closed()  # never lent inside someone else's transaction
    async with pool.acquire() as conn:
        assert not conn.is_in_transaction()
    assert len(connections) == 2
    await pool.close()


async def test_a_connection_the_server_ended_is_replaced(
    postgres_database_url: str, connections: list[asyncpg.Connection]
) -> None:
    pool = make_pool(postgres_database_url, connections, max_size=1)
    await pool.open()
    async with pool.acquire() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
    killer = await asyncpg.connect(postgres_database_url)
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await killer.close()
    # The dead connection is never lent again: skipped once the driver saw it close, or closed by
    # the pool after its next statement failed.
    new_pid = None
    for _ in range(2):
        try:
            async with pool.acquire() as conn:
                new_pid = await conn.fetchval("SELECT pg_backend_pid()")
            break
        except (
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
            asyncpg.PostgresError,
            OSError,
        ):
            continue
    assert new_pid is not None and new_pid != pid
    assert connections[0].is_closed() and pool.size == 1
    await pool.close()


async def test_closing_fails_waiters_and_later_acquires(
    postgres_database_url: str, connections: list[asyncpg.Connection]
) -> None:
    pool = make_pool(postgres_database_url, connections, max_size=1)
    await pool.open()

    async def waiter() -> None:
        async with pool.acquire():
            pass

    holder = Holder(pool)
    await holder.inside.wait()
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    await pool.close()
    with pytest.raises(PoolClosed):
        await waiting
    await holder.release()
    assert connections[0].is_closed() and pool.size == 0  # closed as it came back
    with pytest.raises(PoolClosed):
        async with pool.acquire():
            pass
