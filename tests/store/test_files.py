"""Store contract for user messages' files (API.md, "Richer input and output"): a ``file`` part
names bytes kept apart from the message rows, on SQLite, PostgreSQL and the Supabase fake."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

from opencode_api.store import FileData, ForkOrigin, Message, Part, Session, SqliteStore, Store
from opencode_api.store._migrations import load_migrations
from tests.store.test_contract import at, new_session, uid

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()


def with_file(session_id: str, file_id: str) -> Message:
    mid = uid("msg")
    part = Part(
        id=uid("prt"),
        message_id=mid,
        session_id=session_id,
        type="file",
        metadata={"file_id": file_id, "mime": "image/png", "size": 72, "filename": "a.png"},
        created_at=at(0),
    )
    return Message(
        id=mid, session_id=session_id, role="user", content="look", created_at=at(0), parts=[part]
    )


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
