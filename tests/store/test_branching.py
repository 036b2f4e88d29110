"""Store contract for branching and budgets (API.md, "Beyond the replaced service"): the new
session fields, forks, reverts and their commit, on SQLite, PostgreSQL and the Supabase fake."""

from __future__ import annotations

import asyncio

from opencode_api.store import ForkOrigin, Message, Session, Store, Todo, Usage
from tests.store.conftest import MakeStore
from tests.store.test_contract import at, new_session, uid, user_message


async def opened(make_store: MakeStore) -> Store:
    store = make_store()
    await store.open()
    return store


def reply(session_id: str, question: Message, i: int, **fields: object) -> Message:
    return Message(
        id=uid("msg"),
        session_id=session_id,
        role="assistant",
        content=f"a{i}",
        created_at=at(i),
        parent_id=question.id,
        usage=Usage(input_tokens=3, output_tokens=4),
        cost=0.5,
        **fields,  # type: ignore[arg-type]
    )


async def conversation(
    store: Store, turns: int, **session: object
) -> tuple[Session, list[Message]]:
    s = await new_session(store, **session)
    messages: list[Message] = []
    for i in range(turns):
        q = user_message(s.id, 2 * i)
        a = reply(s.id, q, 2 * i + 1)
        await store.append_message(q)
        await store.append_message(a)
        messages += [q, a]
    return s, messages


async def contents(store: Store, session_id: str) -> list[str]:
    page = await store.list_messages(session_id)
    assert page is not None
    return [m.content for m in page.messages]


async def test_new_session_fields_round_trip_and_clear(make_store: MakeStore) -> None:
    store = await opened(make_store)
    try:
        s = await new_session(store, max_cost=1.25, webhook_url="https://hooks.example/x")
        got = await store.get_session(s.id)
        assert got is not None
        assert (got.max_cost, got.webhook_url, got.forked_from, got.revert) == (
            1.25,
            "https://hooks.example/x",
            None,
            None,
        )
        updated = await store.update_session(s.id, max_cost=3.0)
        assert updated is not None and updated.max_cost == 3.0
        assert updated.webhook_url == "https://hooks.example/x"
        cleared = await store.update_session(s.id, clear=["max_cost", "webhook_url"])
        assert cleared is not None and (cleared.max_cost, cleared.webhook_url) == (None, None)
    finally:
        await store.close()


async def test_fork_copies_visible_messages_with_new_ids(make_store: MakeStore) -> None:
    store = await opened(make_store)
    try:
        source, messages = await conversation(store, 3, user_id="alice")
        await store.set_todos(source.id, [Todo(id="t1", content="x", status="pending")])
        fork = Session(
            id=uid("ses") + "FORKTAG001",
            user_id="alice",
            forked_from=ForkOrigin(session_id=source.id, message_id=messages[3].id),
        )
        made = await store.fork_session(source.id, fork, upto=messages[3].id)
        assert made is not None and made.message_count == 4
        page = await store.list_messages(fork.id)
        assert page is not None
        copies = page.messages
        assert [m.content for m in copies] == ["m0", "a1", "m2", "a3"]
        assert not {m.id for m in copies} & {m.id for m in messages}
        assert all(m.session_id == fork.id for m in copies)
        assert copies[1].parent_id == copies[0].id  # parents follow their copies
        assert [p.message_id for p in copies[0].parts] == [copies[0].id]
        assert copies[0].parts[0].session_id == fork.id
        got = await store.get_session(fork.id)
        assert got is not None and got.forked_from == fork.forked_from
        assert got.total_cost == 0 and got.message_count == 4
        assert [t.id for t in await store.get_todos(fork.id)] == ["t1"]
        # The source is untouched.
        assert await contents(store, source.id) == ["m0", "a1", "m2", "a3", "m4", "a5"]
        # A fork of the fork: ids stay unique.
        second = Session(id=uid("ses") + "FORKTAG002", user_id="alice")
        assert await store.fork_session(fork.id, second) is not None
        page2 = await store.list_messages(second.id)
        assert page2 is not None and len(page2.messages) == 4
        assert not {m.id for m in page2.messages} & {m.id for m in copies}
    finally:
        await store.close()


async def test_fork_refuses_unknown_sources_and_messages(make_store: MakeStore) -> None:
    store = await opened(make_store)
    try:
        source, messages = await conversation(store, 1, user_id="alice")
        other, other_messages = await conversation(store, 1, user_id="alice")
        fork = Session(id=uid("ses"), user_id="alice")
        assert await store.fork_session("ses_missing", fork) is None
        assert await store.fork_session(source.id, fork, upto="msg_missing") is None
        assert await store.fork_session(source.id, fork, upto=other_messages[0].id) is None
        bob = Session(id=uid("ses"), user_id="bob")
        assert await store.fork_session(source.id, bob) is None  # another user's session
        assert await store.get_session(fork.id) is None  # nothing was created
        assert await store.get_session(bob.id) is None
        assert messages and other
    finally:
        await store.close()


async def test_revert_hides_unrevert_restores_commit_deletes(make_store: MakeStore) -> None:
    store = await opened(make_store)
    try:
        s, messages = await conversation(store, 3)
        reverted = await store.revert_session(s.id, messages[2].id)
        assert reverted is not None and reverted.revert is not None
        assert reverted.revert.message_id == messages[2].id
        assert await contents(store, s.id) == ["m0", "a1"]
        page = await store.list_messages(s.id)
        assert page is not None and page.total_count == 2
        # A fork of a reverted session copies what is visible.
        fork = Session(id=uid("ses"))
        made = await store.fork_session(s.id, fork)
        assert made is not None and made.message_count == 2
        # Moving the point later shows some again; unrevert shows all.
        assert await store.revert_session(s.id, messages[4].id) is not None
        assert await contents(store, s.id) == ["m0", "a1", "m2", "a3"]
        restored = await store.revert_session(s.id, None)
        assert restored is not None and restored.revert is None
        assert len(await contents(store, s.id)) == 6
        # Not a message of this session: nothing changes.
        assert await store.revert_session(s.id, "msg_missing") is None
        assert await store.revert_session("ses_missing", None) is None
        # Committed: the hidden ones are gone for good.
        await store.revert_session(s.id, messages[2].id)
        assert await store.commit_revert(s.id) == 4
        after = await store.get_session(s.id)
        assert after is not None and after.revert is None and after.message_count == 2
        assert await contents(store, s.id) == ["m0", "a1"]
    finally:
        await store.close()


async def test_commit_from_a_message_spares_queued_turns(make_store: MakeStore) -> None:
    store = await opened(make_store)
    try:
        s, messages = await conversation(store, 2)
        queued = user_message(s.id, 10, status="queued")
        await store.append_message(queued)
        assert await store.commit_revert(s.id, messages[2].id) == 2
        assert await contents(store, s.id) == ["m0", "a1", "m10"]
        got = await store.get_session(s.id)
        assert got is not None and got.message_count == 3
    finally:
        await store.close()


async def test_daily_cost_adds_up_under_concurrency(make_store: MakeStore) -> None:
    store = await opened(make_store)
    try:
        day = "2026-12-03"
        totals = await asyncio.gather(*(store.add_daily_cost("carol", day, 0.25) for _ in range(8)))
        assert max(totals) == 2.0 and sorted(totals) == [0.25 * i for i in range(1, 9)]
        usage = await store.get_daily_usage("carol", day)
        assert usage.cost == 2.0 and usage.total_tokens == 0
        # The token ledger and the cost share the row.
        reservation = await store.reserve_usage(
            "carol", day, tokens=10, token_limit=100, request_limit=None
        )
        assert reservation is not None
        assert (await store.get_daily_usage("carol", day)).cost == 2.0
    finally:
        await store.close()
