"""open_store() URL handling, the public names, and backend-specific behaviour."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

import opencode_api.store as store_pkg
from opencode_api.runtime import OpenCodeError
from opencode_api.store import (
    Message,
    Part,
    PostgresStore,
    Session,
    SqliteStore,
    StepRecord,
    Store,
    StoreError,
    SupabaseStore,
    UnsupportedDatabaseURL,
    Usage,
    open_store,
)
from tests.store.fake_postgrest import FakePostgrest


def test_all_lists_exactly_the_public_names() -> None:
    public = {n for n in dir(store_pkg) if not n.startswith("_")} - {"annotations"}
    assert sorted(store_pkg.__all__) == store_pkg.__all__
    assert set(store_pkg.__all__) == public
    assert issubclass(StoreError, OpenCodeError)


async def test_sqlite_relative_path_creates_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///./data/nested/opencode.db")
    assert isinstance(store, SqliteStore)
    await store.open()
    try:
        await store.create_session(Session(id="ses_1"))
    finally:
        await store.close()
    assert "opencode.db" in os.listdir(tmp_path / "data" / "nested")


async def test_sqlite_memory() -> None:
    store = open_store("sqlite:///:memory:")
    await store.open()
    try:
        await store.create_session(Session(id="ses_1"))
        page = await store.list_messages("ses_1")
        assert page is not None and page.total_count == 0
    finally:
        await store.close()


def test_urls() -> None:
    pg = open_store("postgres://u:p@db:6543/x?statement_cache_size=0&sslmode=require")
    assert isinstance(pg, PostgresStore)
    assert pg.dsn == "postgres://u:p@db:6543/x?sslmode=require"
    assert pg._statement_cache_size == 0
    assert open_store("postgresql://db/x")._statement_cache_size == 100  # type: ignore[attr-defined]
    pinned = open_store("postgresql://db/x", statement_cache_size=7)
    assert pinned._statement_cache_size == 7  # type: ignore[attr-defined]
    sb = open_store("supabase:", supabase_url="https://x.supabase.co/", supabase_key="k")
    assert isinstance(sb, SupabaseStore) and sb.url == "https://x.supabase.co"
    for bad in ("mysql://x", "sqlite:///", "nothing"):
        with pytest.raises(UnsupportedDatabaseURL):
            open_store(bad)
    with pytest.raises(UnsupportedDatabaseURL):
        open_store("supabase:")


@pytest.mark.postgres
async def test_postgres_without_statement_cache(postgres_database_url: str) -> None:
    store = open_store(postgres_database_url + "?statement_cache_size=0")
    await store.open()
    try:
        await store.create_session(Session(id="ses_1"))
        for _ in range(3):
            assert await store.get_session("ses_1") is not None
    finally:
        await store.close()


async def test_sqlite_cancelled_write_leaves_store_usable(tmp_path: Path) -> None:
    await _cancelled_writes_leave_store_usable(SqliteStore(str(tmp_path / "x.db")))


async def test_postgres_cancelled_write_leaves_pool_usable(postgres_database_url: str) -> None:
    # Two connections, reused by twenty writes: one given back mid-transaction must come back
    # clean (the pool's release hook ends the interrupted transaction instead of a reset query).
    await _cancelled_writes_leave_store_usable(open_store(postgres_database_url, max_size=2))


async def _cancelled_writes_leave_store_usable(store: Store) -> None:
    await store.open()
    try:
        await store.create_session(Session(id="ses_1"))
        steps = [
            asyncio.create_task(
                store.save_step(
                    StepRecord(
                        message=Message(id=f"msg_{i}", session_id="ses_1", role="assistant"),
                        parts=[Part(id=f"prt_{i}", message_id=f"msg_{i}", session_id="ses_1",
                                    type="text", content="x")],
                        usage_delta=Usage(input_tokens=1),
                        cost_delta=0.0,
                    )
                )
            )
            for i in range(20)
        ]  # fmt: skip
        await asyncio.sleep(0)  # let them start; then cancel them wherever they are
        for task in steps[5:]:
            task.cancel()
        results = await asyncio.gather(*steps, return_exceptions=True)
        done = sum(r is None for r in results)
        session = await store.get_session("ses_1")
        assert session is not None
        page = await store.list_messages("ses_1")
        assert page is not None
        # every step is all-or-nothing: counts agree with the messages actually stored
        assert session.message_count == page.total_count == session.total_input_tokens
        assert page.total_count >= done
        await store.create_session(Session(id="ses_2"))
    finally:
        await store.close()


async def test_supabase_user_stores_send_the_users_jwt_and_share_the_pool() -> None:
    async with FakePostgrest() as server:
        service = SupabaseStore(server.url, "anon-key")
        await service.open()
        try:
            alice, bob = (
                SupabaseStore(server.url, "anon-key", http_client=service._http, jwt=jwt)
                for jwt in ("jwt-alice", "jwt-bob")
            )
            assert alice._http is service._http is bob._http
            await asyncio.gather(
                *(s.get_session("ses_x") for s in (alice, bob, service) for _ in range(5))
            )
            seen = set(server.seen_auth)
            assert seen == {
                ("Bearer jwt-alice", "anon-key"),
                ("Bearer jwt-bob", "anon-key"),
                ("Bearer anon-key", "anon-key"),
            }
            assert server.seen_auth.count(("Bearer jwt-alice", "anon-key")) == 5
            await alice.close()  # closing a per-user store leaves the shared pool open
            assert await service.get_session("ses_x") is None
        finally:
            await service.close()


def test_settings_size_the_postgres_pool() -> None:
    from opencode_api.actors._runtime import open_store_for
    from opencode_api.settings import Settings

    store = open_store_for(Settings(database_url="postgresql://db/x", database_pool_size=7))
    assert isinstance(store, PostgresStore) and store._max_size == 7


@pytest.mark.postgres
async def test_a_statement_past_the_timeout_fails_and_the_store_goes_on(
    postgres_database_url: str,
) -> None:
    """DATABASE_STATEMENT_TIMEOUT: a write stuck behind a row lock fails once it passes."""
    import asyncpg

    from opencode_api.actors._runtime import open_store_for
    from opencode_api.settings import Settings

    settings = Settings(database_url=postgres_database_url, database_statement_timeout=0.5)
    store = open_store_for(settings)
    await store.open()
    locker = await asyncpg.connect(postgres_database_url)
    try:
        session = await store.create_session(Session(id="ses_timeout", user_id="u"))
        message = Message(id="msg_timeout", session_id=session.id, role="user", content="x")
        async with locker.transaction():
            await locker.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", session.id)
            with pytest.raises(StoreError):
                await store.append_message(message)  # its session update waits on the lock
            # The driver cancels the statement on the server: once nothing waits on the lock any
            # more, releasing it lets nothing through.
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            while await locker.fetchval(waiting):
                pass
        page = await store.list_messages(session.id)
        assert page is not None and page.messages == []  # the timed-out write stored nothing
        await store.append_message(message)
        page = await store.list_messages(session.id)
        assert page is not None and [m.id for m in page.messages] == ["msg_timeout"]
    finally:
        await locker.close()
        await store.close()


class _BusyOnce:
    """The loop's connection, but its first SELECT is refused as if another process held a lock
    (a real one is hard to get in WAL mode: only crash recovery makes readers wait)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.refused = 0

    def execute(self, sql: str, args: object = ()) -> sqlite3.Cursor:
        if sql.lstrip().upper().startswith("SELECT") and not self.refused:
            self.refused += 1
            raise sqlite3.OperationalError("database is locked")
        return self._db.execute(sql, args)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)


async def test_sqlite_point_read_falls_back_to_a_waiting_reader(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "x.db"))
    await store.open()
    try:
        await store.create_session(Session(id="ses_1", title="kept"))
        busy = _BusyOnce(store._loop_writer)  # type: ignore[arg-type]
        store._loop_writer = busy  # type: ignore[assignment]
        session = await store.get_session("ses_1")
        assert busy.refused == 1  # refused on the loop, answered by a reader thread
        assert session is not None and session.title == "kept"
        store._loop_writer = busy._db
    finally:
        await store.close()
