"""The PostgreSQL store's connection pool: asyncpg connections on a free list.

Why not ``asyncpg.Pool``: the store runs each write as one statement on a connection borrowed for
it alone, so a turn borrows five times, and asyncpg's pool spends more CPU lending a connection
than the statement does on it (a shielded task, a coroutine for the reset and an inactivity timer
per release). Measured here with ten connections and ``SELECT 1``: 100-150 us of client CPU per
borrowed statement through ``asyncpg.Pool`` (with this store's reset), 46 us through a free list.

What it keeps of asyncpg's: connections made on demand up to ``max_size`` (``min_size`` at open),
waiters served first come first served, a connection that broke (closed, a driver error, a
transaction left open) never lent again, a statement cancelled or timed out cancelled on the
server before its connection runs another, and idle connections above ``min_size`` closed after
``max_idle`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

Connect = Callable[[], Awaitable["asyncpg.Connection"]]


class PoolClosed(ConnectionError):
    """The pool was closed: no more connections are lent."""


class PgPool:
    """``acquire()`` lends a connection for one ``async with``; see the module docstring."""

    def __init__(
        self, connect: Connect, *, min_size: int, max_size: int, max_idle: float = 300.0
    ) -> None:
        self._connect = connect
        self._min_size = min(min_size, max_size)
        self._max_size = max_size
        self._max_idle = max_idle
        # (connection, when it came back), the most recently used last: lent from the end, so
        # the least used ones age out at the front.
        self._free: deque[tuple[asyncpg.Connection, float]] = deque()
        # A waiter gets a connection, or None: a free slot to connect in itself.
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._size = 0  # connections open or being opened, lent or free
        self._closed = False
        self._reaper: asyncio.Task[None] | None = None

    @property
    def size(self) -> int:
        return self._size

    async def open(self) -> None:
        for _ in range(self._min_size):
            self._size += 1
            try:
                conn = await self._connect()
            except BaseException:
                self._size -= 1
                raise
            self._free.append((conn, time.monotonic()))
        if self._max_idle > 0:
            self._reaper = asyncio.create_task(self._reap_idle())

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self._get()
        try:
            yield conn
        except BaseException as exc:
            self._give_back(conn, healthy=_leaves_connection_usable(exc))
            raise
        self._give_back(conn, healthy=True)

    async def close(self) -> None:
        """Close the free connections; lent ones are closed as they come back."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosed("the PostgreSQL pool is closed"))
        free = [conn for conn, _ in self._free]
        self._free.clear()
        self._size -= len(free)
        await _close_all(free)

    # -- lending ---------------------------------------------------------------------------------
    async def _get(self) -> asyncpg.Connection:
        if self._closed:
            raise PoolClosed("the PostgreSQL pool is closed")
        while self._free:
            conn, _ = self._free.pop()
            if not conn.is_closed():
                return conn
            self._size -= 1
        if self._size < self._max_size:
            self._size += 1
            return await self._open_one()
        waiter: asyncio.Future[asyncpg.Connection | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        try:
            conn = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed a connection (or a slot) just as we were cancelled: pass it on.
                given = waiter.result()
                if given is None:
                    self._free_slot()
                else:
                    self._give_back(given, healthy=True)
            raise
        if conn is None:  # a slot another connection freed: ours to fill
            return await self._open_one()
        return conn

    async def _open_one(self) -> asyncpg.Connection:
        """Connect in a slot already counted in ``_size``; a failure frees the slot."""
        try:
            return await self._connect()
        except BaseException:
            self._free_slot()
            raise

    def _give_back(self, conn: asyncpg.Connection, *, healthy: bool) -> None:
        if not healthy or self._closed or conn.is_closed() or conn.is_in_transaction():
            conn.terminate()
            self._free_slot()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._free.append((conn, time.monotonic()))

    def _free_slot(self) -> None:
        """One connection fewer: a waiter, if any, may open one in its place."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._size -= 1

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(self._max_idle / 2)
            await self.reap(time.monotonic())

    async def reap(self, now: float) -> None:
        """Close the free connections above ``min_size`` unused for ``max_idle`` at ``now``."""
        deadline = now - self._max_idle
        idle: list[asyncpg.Connection] = []
        while self._free and self._size > self._min_size and self._free[0][1] < deadline:
            idle.append(self._free.popleft()[0])
            self._size -= 1
        await _close_all(idle)


async def _close_all(connections: list[asyncpg.Connection]) -> None:
    """Say goodbye to the server on each (the close message), or drop the ones that cannot."""
    for conn in connections:
        try:
            await asyncio.wait_for(conn.close(), timeout=5)
        except Exception:  # one that cannot say goodbye is dropped
            conn.terminate()


def _leaves_connection_usable(exc: BaseException) -> bool:
    """Whether a connection is fit to lend again after ``exc`` ended its use.

    An error the server reported, or one the caller raised between statements, leaves the
    protocol idle (a transaction it was in is rolled back by then; ``_give_back`` checks). A
    statement cancelled or timed out is cancelled on the server by asyncpg, which makes the
    connection's next statement wait for that: the connection is lent again (closing it would
    drop the cancel request, and the statement would run on). A driver-level failure (a broken
    socket, a protocol error) closes it.
    """
    import asyncpg

    if isinstance(exc, TimeoutError):  # an OSError, but the driver's statement timeout
        return True
    return not isinstance(exc, OSError | asyncpg.InterfaceError | asyncpg.InternalClientError)
