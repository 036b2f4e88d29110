"""SQLite group commit: the writes of one loop tick share a COMMIT, and each stays atomic alone."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from opencode_api.store import Message, Session, SqliteStore, StoreConflict
from tests.store.test_contract import new_session, uid


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "groups.db"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def committed_sessions(path: str) -> set[str]:
    """What another connection sees: committed rows only."""
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT id FROM sessions")}


async def test_writes_of_one_tick_share_one_commit(store: SqliteStore) -> None:
    before = store.transactions
    created = await asyncio.gather(
        *(store.create_session(Session(id=uid("ses"), user_id="u")) for _ in range(20))
    )
    assert store.transactions - before == 1
    # Each write returned only once its group was committed: all visible from outside.
    assert {s.id for s in created} <= committed_sessions(store.path)


async def test_a_write_alone_commits_alone(store: SqliteStore) -> None:
    before = store.transactions
    for _ in range(3):
        await new_session(store, "u")
    assert store.transactions - before == 3


async def test_a_failing_write_is_undone_alone(store: SqliteStore) -> None:
    good = await new_session(store, "u")

    def message(session_id: str) -> Message:
        return Message(id=uid("msg"), session_id=session_id, role="user", content="hi")

    before = store.transactions
    first, missing, last = await asyncio.gather(
        store.append_message(message(good.id)),
        store.append_message(message("ses_missing")),  # a foreign key violation
        store.append_message(message(good.id)),
        return_exceptions=True,
    )
    assert isinstance(missing, StoreConflict)
    assert isinstance(first, Message) and isinstance(last, Message)
    assert store.transactions - before == 1
    page = await store.list_messages(good.id)
    assert page is not None and [m.id for m in page.messages] == [first.id, last.id]
    session = await store.get_session(good.id)
    assert session is not None and session.message_count == 2


async def test_the_first_write_failing_leaves_the_others_their_own_group(
    store: SqliteStore,
) -> None:
    good = await new_session(store, "u")
    results = await asyncio.gather(
        store.append_message(
            Message(id=uid("msg"), session_id="ses_missing", role="user", content="x")
        ),
        store.append_message(Message(id=uid("msg"), session_id=good.id, role="user", content="y")),
        return_exceptions=True,
    )
    assert isinstance(results[0], StoreConflict) and isinstance(results[1], Message)
    page = await store.list_messages(good.id)
    assert page is not None and [m.content for m in page.messages] == ["y"]


async def test_a_writer_cancelled_while_its_group_commits_cancels_no_one_else(
    store: SqliteStore,
) -> None:
    first = asyncio.create_task(new_session(store, "u"))
    second = asyncio.create_task(new_session(store, "u"))
    await asyncio.sleep(0)  # both wrote and wait for their group's COMMIT
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    kept = await second
    # The cancelled writer's row was in the group too: cancelling the wait does not undo a write.
    assert kept.id in committed_sessions(store.path)
    assert len(committed_sessions(store.path)) == 2


async def test_close_commits_an_open_group(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "closing.db"))
    await store.open()
    write = asyncio.create_task(new_session(store, "u"))
    await asyncio.sleep(0)  # written, its COMMIT not yet run
    await store.close()
    session = await write
    assert committed_sessions(store.path) == {session.id}
