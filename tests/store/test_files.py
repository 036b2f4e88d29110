"""Store contract for user messages' files (API.md, "Richer input and output"): a ``file`` part
names bytes kept apart from the message rows, on SQLite, PostgreSQL and the Supabase fake."""

from __future__ import annotations

import base64

from opencode_api.store import FileData, ForkOrigin, Message, Part, Session, Store
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
