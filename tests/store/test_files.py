"""Store contract for user messages' files (API.md, "Richer input and output"): a ``file`` part
names bytes kept apart from the message rows, on SQLite, PostgreSQL and the Supabase fake."""

from __future__ import annotations

import base64
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from opencode_api.store import FileData, ForkOrigin, Message, Part, Session, SqliteStore, Store
from opencode_api.store._migrations import load_migrations
from tests.store.test_contract import at, new_session, uid

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()


def with_file(session_id: str, *file_ids: str, i: int = 0, **fields: Any) -> Message:
    """A user message at ``at(i)`` with a file part naming each of ``file_ids`` (none: a file
    by URL, whose part names no stored file)."""
    mid = uid("msg")
    metadata: list[dict[str, Any]] = [
        {"file_id": f, "mime": "image/png", "size": 72, "filename": "a.png"} for f in file_ids
    ] or [{"url": "https://example.com/a.png", "mime": "image/png", "filename": "a.png"}]
    parts = [
        Part(
            id=uid("prt"),
            message_id=mid,
            session_id=session_id,
            type="file",
            metadata=m,
            created_at=at(i),
        )
        for m in metadata
    ]
    return Message(
        id=mid,
        session_id=session_id,
        role="user",
        content="look",
        created_at=at(i),
        parts=parts,
        **fields,
    )


def reply(question: Message) -> Message:
    return Message(
        id=uid("msg"),
        session_id=question.session_id,
        role="assistant",
        content="seen",
        created_at=question.created_at + timedelta(seconds=1),
        parent_id=question.id,
    )


async def put(store: Store, session_id: str, *file_ids: str) -> None:
    await store.put_files(
        [
            FileData(id=f, session_id=session_id, mime="image/png", size=72, data=PNG)
            for f in file_ids
        ]
    )


async def stored(store: Store, session_id: str, *file_ids: str) -> list[str]:
    """Which of ``file_ids`` the session still has."""
    return sorted(f.id for f in await store.get_files(session_id, file_ids))


async def test_file_parts_and_their_bytes(store: Store) -> None:
    s = await new_session(store)
    data = FileData(id="fil_1", session_id=s.id, mime="image/png", size=72, data=PNG)
    await store.put_files([data])
    await store.put_files([data])  # a retried write stores it once
    message = with_file(s.id, "fil_1")
    await store.append_message(message)

    page = await store.list_messages(s.id)
    assert page is not None
    [listed] = page.messages
    [part] = listed.parts
    assert part.type == "file"
    assert part.metadata["file_id"] == "fil_1"
    assert "data" not in part.metadata  # the list never carries the bytes

    [got] = await store.get_files(s.id, ["fil_1", "fil_missing"])
    assert (got.id, got.mime, got.size, got.data) == ("fil_1", "image/png", 72, PNG)
    assert await store.get_files(s.id, []) == []
    other = await new_session(store)
    assert await store.get_files(other.id, ["fil_1"]) == []  # files belong to their session


async def test_a_fork_gets_copies_and_deleting_the_session_drops_them(store: Store) -> None:
    s = await new_session(store)
    await store.put_files(
        [FileData(id="fil_2", session_id=s.id, mime="image/png", size=72, data=PNG)]
    )
    await store.append_message(with_file(s.id, "fil_2"))
    fork = await store.fork_session(
        s.id, Session(id=uid("ses"), forked_from=ForkOrigin(session_id=s.id))
    )
    assert fork is not None
    assert await store.delete_session(s.id)
    assert await store.get_files(s.id, ["fil_2"]) == []
    [copy] = await store.get_files(fork.id, ["fil_2"])
    assert copy.data == PNG
    page = await store.list_messages(fork.id)
    assert page is not None and page.messages[0].parts[0].metadata["file_id"] == "fil_2"


async def test_deleting_a_message_deletes_the_files_only_it_names(store: Store) -> None:
    s = await new_session(store)
    await put(store, s.id, "fil_a", "fil_b", "fil_shared", "fil_pending")
    first = with_file(s.id, "fil_a", "fil_shared", i=0)
    second = with_file(s.id, "fil_b", "fil_shared", i=2)
    by_url = with_file(s.id, i=4)  # its part has no file_id: it must not keep or block anything
    for message in (first, second, by_url):
        await store.append_message(message)
    # fil_pending: stored just before its message (as a turn's admission does), named by none.

    assert await store.delete_message(s.id, first.id)
    assert await stored(store, s.id, "fil_a", "fil_b", "fil_shared", "fil_pending") == [
        "fil_b",
        "fil_pending",
        "fil_shared",
    ]
    assert not await store.delete_message(s.id, first.id)
    other = await new_session(store)
    assert not await store.delete_message(other.id, second.id)  # not its session: nothing goes
    assert await stored(store, s.id, "fil_b", "fil_shared") == ["fil_b", "fil_shared"]

    assert await store.delete_message(s.id, second.id)
    assert await stored(store, s.id, "fil_b", "fil_shared", "fil_pending") == ["fil_pending"]
    got = await store.get_session(s.id)
    assert got is not None and got.message_count == 1


async def test_commit_revert_deletes_the_files_of_the_deleted_messages(store: Store) -> None:
    s = await new_session(store)
    await put(store, s.id, "fil_kept", "fil_gone", "fil_later")
    kept = with_file(s.id, "fil_kept", i=0)
    hidden = with_file(s.id, "fil_gone", i=2)
    later = with_file(s.id, "fil_later", "fil_kept", i=4)
    for message in (kept, reply(kept), hidden, reply(hidden), later):
        await store.append_message(message)

    assert await store.revert_session(s.id, hidden.id) is not None
    # Hidden, not yet deleted: their files stay (an unrevert shows them again).
    assert await stored(store, s.id, "fil_gone", "fil_later") == ["fil_gone", "fil_later"]
    assert await store.commit_revert(s.id) == 3
    assert await stored(store, s.id, "fil_kept", "fil_gone", "fil_later") == ["fil_kept"]


async def test_a_regenerate_keeps_the_files_its_new_message_carries(store: Store) -> None:
    """A regenerate stores its new message (queued), naming the replaced message's files by the
    same ids, before the replaced message and all after it are deleted."""
    s = await new_session(store)
    await put(store, s.id, "fil_carried", "fil_dropped")
    replaced = with_file(s.id, "fil_carried", "fil_dropped", i=0)
    await store.append_message(replaced)
    await store.append_message(reply(replaced))
    new = with_file(s.id, "fil_carried", i=5, status="queued")
    await store.append_message(new)

    assert await store.commit_revert(s.id, replaced.id) == 2
    assert await stored(store, s.id, "fil_carried", "fil_dropped") == ["fil_carried"]
    page = await store.list_messages(s.id)
    assert page is not None
    [left] = page.messages
    assert [(p.message_id, p.metadata["file_id"]) for p in left.parts] == [(new.id, "fil_carried")]
    # Once the new message goes too, so does the file.
    assert await store.delete_message(s.id, new.id)
    assert await stored(store, s.id, "fil_carried") == []


async def test_a_fork_and_its_source_delete_their_own_copies(store: Store) -> None:
    s = await new_session(store)
    await put(store, s.id, "fil_f")
    message = with_file(s.id, "fil_f")
    await store.append_message(message)
    fork = await store.fork_session(
        s.id, Session(id=uid("ses"), forked_from=ForkOrigin(session_id=s.id))
    )
    assert fork is not None

    assert await store.delete_message(s.id, message.id)
    assert await stored(store, s.id, "fil_f") == []
    assert await stored(store, fork.id, "fil_f") == ["fil_f"]  # the fork's copy is its own
    page = await store.list_messages(fork.id)
    assert page is not None
    [copy] = page.messages
    assert await store.revert_session(fork.id, copy.id) is not None
    assert await store.commit_revert(fork.id) == 1
    assert await stored(store, fork.id, "fil_f") == []


async def test_sqlite_upgrade_keeps_the_parts(tmp_path: Path) -> None:
    """Migration 005 rebuilds message_parts (SQLite cannot widen a CHECK): rows survive it."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for migration in load_migrations("sqlite"):
        if migration.version <= 4:
            for statement in migration.statements():
                db.execute(statement)
    db.execute(
        "INSERT INTO sessions (id, status, created_at, updated_at) "
        "VALUES ('ses_old', 'idle', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')"
    )
    db.execute(
        "INSERT INTO messages (id, session_id, role, created_at, content, status) VALUES "
        "('msg_old', 'ses_old', 'assistant', '2026-01-01T00:00:00.000000Z', 'hi', 'completed')"
    )
    db.execute(
        "INSERT INTO message_parts (id, message_id, session_id, type, content, created_at) "
        "VALUES ('prt_old', 'msg_old', 'ses_old', 'text', 'hi', '2026-01-01T00:00:00.000000Z')"
    )
    db.execute("PRAGMA user_version = 4")
    db.commit()
    db.close()
    store = SqliteStore(str(path))
    await store.open()
    try:
        page = await store.list_messages("ses_old")
        assert page is not None
        assert [(p.id, p.type, p.content) for p in page.messages[0].parts] == [
            ("prt_old", "text", "hi")
        ]
        await store.append_message(with_file("ses_old", "fil_x"))  # the widened CHECK
        await store.delete_session("ses_old")  # cascades still hold after the rebuild
    finally:
        await store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM message_parts").fetchone() == (0,)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.close()
