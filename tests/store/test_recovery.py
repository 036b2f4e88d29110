"""Store contract: the replies a dead process left unfinished, once marked interrupted, are found
again (webhooks send ``turn.failed`` for them), on SQLite, PostgreSQL and the Supabase fake."""

from __future__ import annotations

from datetime import timedelta

from opencode_api.store import Message
from tests.store.conftest import MakeStore
from tests.store.test_contract import at, new_session, uid, user_message


async def test_interrupted_replies_are_listed_after_recovery(make_store: MakeStore) -> None:
    store = make_store()
    await store.open()
    try:
        session = await new_session(store)
        done_q, running_q = user_message(session.id, 0), user_message(session.id, 2)
        await store.append_message(done_q)
        await store.append_message(running_q)
        done = Message(
            id=uid("msg"),
            session_id=session.id,
            role="assistant",
            created_at=at(1),
            parent_id=done_q.id,
            status="completed",
        )
        running = Message(
            id=uid("msg"),
            session_id=session.id,
            role="assistant",
            created_at=at(3),
            parent_id=running_q.id,
            status="running",
        )
        await store.start_reply(done_q.id, done)
        await store.start_reply(running_q.id, running)
        await store.set_message_status(done.id, "completed")
        assert await store.interrupted_replies(since=at(0)) == []
        assert await store.mark_interrupted() == 1
        found = await store.interrupted_replies(since=at(0))
        assert [(m.id, m.parent_id, m.status) for m in found] == [
            (running.id, running_q.id, "interrupted")
        ]
        assert found[0].error is not None and found[0].error["type"] == "interrupted"
        assert await store.interrupted_replies(since=at(3) + timedelta(seconds=1)) == []
    finally:
        await store.close()
