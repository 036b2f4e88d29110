"""Background turns (``?stream=false`` / ``Prefer: respond-async``), the reply long-poll, and one
message by id (API.md, "Busy sessions and background turns" and "Branching and editing")."""

from __future__ import annotations

import asyncio
from typing import Any

from opencode_api.testing import FakeLLMServer, Reply


async def _session(client: Any) -> str:
    return str((await (await client.post("/session")).json())["id"])


async def test_a_background_turn_runs_to_its_end_and_its_reply_is_waited_for(
    client: Any, fake: FakeLLMServer
) -> None:
    asked, release = asyncio.Event(), asyncio.Event()
    fake.enqueue(Reply(text="done in the background", received=asked, hold=release))
    sid = await _session(client)
    response = await client.post(f"/session/{sid}/message?stream=false", json={"content": "hi"})
    assert response.status == 202
    accepted = await response.json()
    assert accepted["session_id"] == sid and accepted["status"] == "running"
    mid = accepted["user_message_id"]
    await asyncio.wait_for(asked.wait(), 10)

    # Nobody reads the turn's stream; it is running, and a reply without wait says so at once.
    now = await (await client.get(f"/session/{sid}/message/{mid}/reply")).json()
    assert now == {"status": "running", "message": None}
    # A long poll answers as soon as the turn ends.
    poll = asyncio.ensure_future(client.get(f"/session/{sid}/message/{mid}/reply?wait=30"))
    release.set()
    reply = await (await asyncio.wait_for(poll, 20)).json()
    assert reply["status"] == "done"
    assert reply["message"]["content"] == "done in the background"
    assert reply["message"]["parent_id"] == mid and reply["message"]["stop_reason"] == "stop"

    # The same message by id; the user message too.
    got = await client.get(f"/session/{sid}/message/{reply['message']['id']}")
    assert got.status == 200 and (await got.json())["content"] == "done in the background"
    user = await (await client.get(f"/session/{sid}/message/{mid}")).json()
    assert user["role"] == "user" and user["content"] == "hi"


async def test_prefer_respond_async_queues_behind_a_running_turn(
    client: Any, fake: FakeLLMServer
) -> None:
    asked, release = asyncio.Event(), asyncio.Event()
    fake.enqueue(Reply(text="first", received=asked, hold=release))
    sid = await _session(client)
    first = await client.post(f"/session/{sid}/message?stream=false", json={"content": "one"})
    await asyncio.wait_for(asked.wait(), 10)
    second = await client.post(
        f"/session/{sid}/message", json={"content": "two"}, headers={"Prefer": "respond-async"}
    )
    assert second.status == 202
    queued = await second.json()
    assert queued["status"] == "queued"
    mid = queued["user_message_id"]
    assert (await (await client.get(f"/session/{sid}/message/{mid}/reply")).json())["status"] == (
        "queued"
    )
    release.set()
    reply = await (await client.get(f"/session/{sid}/message/{mid}/reply?wait=30")).json()
    assert reply["status"] == "done" and reply["message"]["parent_id"] == mid
    assert (await first.json())["status"] == "running"


async def test_a_reply_wait_that_runs_out_answers_with_the_state(
    client: Any, fake: FakeLLMServer
) -> None:
    asked = asyncio.Event()
    fake.enqueue(Reply(text="slow", received=asked, hold=asyncio.Event()))
    sid = await _session(client)
    accepted = await (
        await client.post(f"/session/{sid}/message?stream=false", json={"content": "hi"})
    ).json()
    await asyncio.wait_for(asked.wait(), 10)
    mid = accepted["user_message_id"]
    reply = await client.get(f"/session/{sid}/message/{mid}/reply?wait=0.2")
    assert (await reply.json()) == {"status": "running", "message": None}
    assert (await client.post(f"/session/{sid}/abort")).status == 200
    reply = await (await client.get(f"/session/{sid}/message/{mid}/reply?wait=10")).json()
    assert reply["status"] == "aborted" and reply["message"]["stop_reason"] == "aborted"


async def test_unknown_messages_and_bad_waits(client: Any) -> None:
    sid = await _session(client)
    assert (await client.get(f"/session/{sid}/message/msg_nope")).status == 404
    assert (await client.get(f"/session/{sid}/message/msg_nope/reply")).status == 404
    assert (await client.get("/session/ses_nope/message/msg_nope")).status == 404
    too_long = await client.get(f"/session/{sid}/message/msg_nope/reply?wait=61")
    assert too_long.status == 422
    body = await too_long.json()
    assert body["error"]["type"] in ("invalid_request", "validation_error")


async def test_busy_interrupt_aborts_the_running_turn_and_runs_next(
    make_client: Any, fake: FakeLLMServer
) -> None:
    client = await make_client(auto_title=False)
    asked, release = asyncio.Event(), asyncio.Event()
    fake.enqueue(
        Reply(text="long running", received=asked, hold=release),
        Reply(text="interrupting answer"),
        Reply(text="queued answer"),
    )
    sid = await _session(client)
    running = await (
        await client.post(f"/session/{sid}/message?stream=false", json={"content": "one"})
    ).json()
    await asyncio.wait_for(asked.wait(), 10)
    queued = await (
        await client.post(f"/session/{sid}/message?stream=false", json={"content": "two"})
    ).json()
    assert queued["status"] == "queued"
    interrupt = await client.post(
        f"/session/{sid}/message?busy=interrupt", json={"content": "three"}
    )
    assert interrupt.status == 200
    stream = asyncio.ensure_future(interrupt.text())  # it runs once the running turn is aborted
    text = await asyncio.wait_for(stream, 20)
    assert "interrupting" in text and text.rstrip().endswith("data: [DONE]")
    release.set()
    first = await (
        await client.get(f"/session/{sid}/message/{running['user_message_id']}/reply?wait=20")
    ).json()
    assert first["status"] == "aborted"
    last = await (
        await client.get(f"/session/{sid}/message/{queued['user_message_id']}/reply?wait=20")
    ).json()
    assert last["status"] == "done"
    # The interrupting message ran before the one queued earlier (the provider's second call).
    assert fake.requests[1]["messages"][-1]["content"] == "three"
    assert fake.requests[2]["messages"][-1]["content"] == "two"


async def test_delete_a_message_unless_a_turn_runs(make_client: Any, fake: FakeLLMServer) -> None:
    client = await make_client(auto_title=False)
    sid = await _session(client)
    await (await client.post(f"/session/{sid}/message", json={"content": "hi"})).text()
    page = await (await client.get(f"/session/{sid}/message")).json()
    user, reply = page["messages"]
    asked = asyncio.Event()
    fake.enqueue(Reply(text="slow", received=asked, hold=asyncio.Event()))
    accepted = await (
        await client.post(f"/session/{sid}/message?stream=false", json={"content": "again"})
    ).json()
    await asyncio.wait_for(asked.wait(), 10)
    busy = await client.delete(f"/session/{sid}/message/{reply['id']}")
    assert busy.status == 409 and (await busy.json())["error"]["type"] == "busy"
    assert (await client.post(f"/session/{sid}/abort")).status == 200
    ended = f"/session/{sid}/message/{accepted['user_message_id']}/reply?wait=10"
    assert (await (await client.get(ended)).json())["status"] == "aborted"
    # Aborted: the session is idle again, and the edit goes through its mailbox.
    deleted = await client.delete(f"/session/{sid}/message/{reply['id']}")
    assert deleted.status == 200 and await deleted.json() == {"success": True}
    assert (await client.get(f"/session/{sid}/message/{reply['id']}")).status == 404
    again = await client.delete(f"/session/{sid}/message/{reply['id']}")
    assert again.status == 404
    page = await (await client.get(f"/session/{sid}/message")).json()
    assert user["id"] in [m["id"] for m in page["messages"]]
    assert reply["id"] not in [m["id"] for m in page["messages"]]
