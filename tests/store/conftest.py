"""The ``store`` fixture: every contract test runs against SQLite, PostgreSQL and Supabase REST.

The Supabase backend runs against tests/store/fake_postgrest.py, a local server speaking the
PostgREST subset the backend uses: a protocol test, not a test of Supabase itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from opencode_api.store import PostgresStore, SqliteStore, Store, SupabaseStore

MakeStore = Callable[[], Store]


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        "supabase",
    ]
)
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeStore]:
    """Builds unopened stores that all share one fresh database of the backend under test."""
    backend: str = request.param
    if backend == "sqlite":
        path = str(tmp_path / "data" / "store.db")
        yield lambda: SqliteStore(path)
    elif backend == "postgres":
        url: str = request.getfixturevalue("postgres_database_url")
        yield lambda: PostgresStore(url, max_size=20)
    else:
        from tests.store.fake_postgrest import FakePostgrest

        async with FakePostgrest() as server:
            yield lambda: SupabaseStore(server.url, "service-key", max_connections=10)


@pytest.fixture
async def store(make_store: MakeStore) -> AsyncIterator[Store]:
    s = make_store()
    await s.open()
    try:
        yield s
    finally:
        await s.close()
