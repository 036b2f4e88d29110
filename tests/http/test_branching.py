"""Branching and editing over HTTP (API.md, "Branching and editing"): fork, revert, unrevert and
regenerate against a real server, the real store (SQLite file) and the scripted fake provider;
what the model is sent is read from the fake's recorded requests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from opencode_api.testing import FakeLLMServer, Reply
from tests.http.conftest import parse_sse


async def _session(client: Any, **body: Any) -> str:
    return str((await (await client.post("/session", json=body)).json())["id"])


def _events(text: str) -> list[dict[str, Any]]:
    frames = parse_sse(text)
    return [json.loads(f["data"]) for f in frames if f.get("data", "[DONE]") != "[DONE]"]


async def _turn(client: Any, sid: str, content: str) -> list[dict[str, Any]]:
    response = await client.post(f"/session/{sid}/message", json={"content": content})
    assert response.status == 200, await response.text()
    return _events(await response.text())


async def _messages(client: Any, sid: str) -> list[dict[str, Any]]:
    page = await (await client.get(f"/session/{sid}/message")).json()
    return list(page["messages"])


def _sent(fake: FakeLLMServer) -> list[str]:
    """The conversation the model was sent in its last request (user and assistant texts)."""
    return [
        str(m["content"])
        for m in fake.requests[-1]["messages"]
        if m["role"] in ("user", "assistant") and isinstance(m["content"], str)
    ]


async def _conversation(client: Any, fake: FakeLLMServer, turns: int) -> str:
    sid = await _session(client)
    for i in range(turns):
        fake.enqueue(Reply(text=f"answer {i}"))
        await _turn(client, sid, f"question {i}")
    return sid


async def test_fork_copies_up_to_a_message_and_counts_its_own_cost(
    make_client: Any, fake: FakeLLMServer
) -> None:
    client = await make_client(auto_title=False)
    sid = await _conversation(client, fake, 2)
    source = await _messages(client, sid)
    response = await client.post(
        f"/session/{sid}/fork", json={"message_id": source[1]["id"], "title": "branch"}
    )
    assert response.status == 201
    fork = await response.json()
    assert fork["id"] != sid and fork["title"] == "branch"
    assert fork["forked_from"] == {"session_id": sid, "message_id": source[1]["id"]}
    assert fork["total_cost"] == 0 and fork["message_count"] == 2 and fork["revert"] is None
    copies = await _messages(client, fork["id"])
    assert [m["content"] for m in copies] == ["question 0", "answer 0"]
    assert {m["id"] for m in copies}.isdisjoint({m["id"] for m in source})

    # The fork's model sees the copied history; the source goes on unchanged.
    fake.enqueue(Reply(text="fork answer"))
    await _turn(client, fork["id"], "fork question")
    assert _sent(fake) == ["question 0", "answer 0", "fork question"]
    assert len(await _messages(client, sid)) == 4
    spent = await (await client.get(f"/session/{fork['id']}")).json()
    assert spent["message_count"] == 4 and spent["total_output_tokens"] > 0

    # Without a message id: everything.
    whole = await (await client.post(f"/session/{sid}/fork")).json()
    assert whole["message_count"] == 4 and whole["forked_from"]["message_id"] is None


async def test_fork_bad_input(client: Any, fake: FakeLLMServer) -> None:
    sid = await _conversation(client, fake, 1)
    other = await _conversation(client, fake, 1)
    foreign = (await _messages(client, other))[0]["id"]
    before = len(await (await client.get("/session")).json())
    missing = await client.post(f"/session/{sid}/fork", json={"message_id": "msg_nope"})
    assert missing.status == 404 and (await missing.json())["error"]["type"] == "not_found"
    assert (await client.post(f"/session/{sid}/fork", json={"message_id": foreign})).status == 404
    assert (await client.post("/session/ses_nope/fork")).status == 404
    bad = await client.post(f"/session/{sid}/fork", json={"message_id": 5})
    assert bad.status == 422
    assert len(await (await client.get("/session")).json()) == before  # nothing was created


async def test_revert_hides_from_list_and_model_until_the_next_turn_deletes(
    make_client: Any, fake: FakeLLMServer
) -> None:
    client = await make_client(auto_title=False)
    sid = await _conversation(client, fake, 3)
    messages = await _messages(client, sid)
    response = await client.post(f"/session/{sid}/revert", json={"message_id": messages[2]["id"]})
    assert response.status == 200
    assert (await response.json())["revert"] == {"message_id": messages[2]["id"]}
    assert [m["content"] for m in await _messages(client, sid)] == ["question 0", "answer 0"]

    # Unrevert shows them again; revert again, then a turn makes it final.
    unreverted = await (await client.post(f"/session/{sid}/unrevert")).json()
    assert unreverted["revert"] is None and len(await _messages(client, sid)) == 6
    await client.post(f"/session/{sid}/revert", json={"message_id": messages[2]["id"]})
    fake.enqueue(Reply(text="new answer"))
    await _turn(client, sid, "new question")
    assert _sent(fake) == ["question 0", "answer 0", "new question"]
    contents = [m["content"] for m in await _messages(client, sid)]
    assert contents == ["question 0", "answer 0", "new question", "new answer"]
    session = await (await client.get(f"/session/{sid}")).json()
    assert session["revert"] is None and session["message_count"] == 4
    # Gone for good: unrevert has nothing to show.
    await client.post(f"/session/{sid}/unrevert")
    assert len(await _messages(client, sid)) == 4


async def test_regenerate_an_answer_and_edit_a_question(
    make_client: Any, fake: FakeLLMServer
) -> None:
    client = await make_client(auto_title=False)
    sid = await _conversation(client, fake, 2)
    messages = await _messages(client, sid)
    # Regenerate the last answer: same question, new answer.
    fake.enqueue(Reply(text="better answer 1"))
    response = await client.post(f"/session/{sid}/message/{messages[3]['id']}/regenerate")
    assert response.status == 200
    events = _events(await response.text())
    assert events[-1]["type"] == "done"
    assert _sent(fake) == ["question 0", "answer 0", "question 1"]
    contents = [m["content"] for m in await _messages(client, sid)]
    assert contents == ["question 0", "answer 0", "question 1", "better answer 1"]

    # Edit the first question: everything after it is replaced.
    first = (await _messages(client, sid))[0]["id"]
    fake.enqueue(Reply(text="edited answer"))
    edited = await client.post(
        f"/session/{sid}/message/{first}/regenerate", json={"content": "edited question"}
    )
    assert edited.status == 200
    await edited.text()
    assert _sent(fake) == ["edited question"]
    contents = [m["content"] for m in await _messages(client, sid)]
    assert contents == ["edited question", "edited answer"]
    session = await (await client.get(f"/session/{sid}")).json()
    assert session["message_count"] == 2


async def test_history_edits_while_busy_answer_409_and_change_nothing(
    make_client: Any, fake: FakeLLMServer
) -> None:
    client = await make_client(auto_title=False)
    sid = await _conversation(client, fake, 1)
    messages = await _messages(client, sid)
    asked, release = asyncio.Event(), asyncio.Event()
    fake.enqueue(Reply(text="slow", received=asked, hold=release))
    running = await client.post(f"/session/{sid}/message?stream=false", json={"content": "slow"})
    assert running.status == 202
    await asyncio.wait_for(asked.wait(), 10)
    first = messages[0]["id"]
    for response in (
        await client.post(f"/session/{sid}/revert", json={"message_id": first}),
        await client.post(f"/session/{sid}/unrevert"),
        await client.post(f"/session/{sid}/message/{first}/regenerate"),
    ):
        assert response.status == 409
        assert (await response.json())["error"]["type"] == "busy"
    # A fork never waits: it copies what is stored (the running reply as interrupted).
    fork = await client.post(f"/session/{sid}/fork")
    assert fork.status == 201
    release.set()
    mid = (await running.json())["user_message_id"]
    reply = await (await client.get(f"/session/{sid}/message/{mid}/reply?wait=10")).json()
    assert reply["status"] == "done"
    session = await (await client.get(f"/session/{sid}")).json()
    assert session["revert"] is None and session["message_count"] == 4


async def test_edits_of_unknown_messages(client: Any, fake: FakeLLMServer) -> None:
    sid = await _conversation(client, fake, 1)
    other = await _conversation(client, fake, 1)
    foreign = (await _messages(client, other))[0]["id"]
    for path, body in (
        (f"/session/{sid}/revert", {"message_id": "msg_nope"}),
        (f"/session/{sid}/revert", {"message_id": foreign}),
        (f"/session/{sid}/message/msg_nope/regenerate", None),
        (f"/session/{sid}/message/{foreign}/regenerate", None),
        ("/session/ses_nope/unrevert", None),
    ):
        response = await client.post(path, json=body)
        assert response.status == 404, path
    assert (await client.post(f"/session/{sid}/revert", json={})).status == 422
    blank = await client.post(
        f"/session/{sid}/message/{foreign}/regenerate", json={"content": "  "}
    )
    assert blank.status == 422
    assert len(await _messages(client, sid)) == 2 and len(await _messages(client, other)) == 2


async def test_budget_and_webhook_fields_on_sessions(client: Any) -> None:
    created = await client.post(
        "/session", json={"max_cost": 0.5, "webhook_url": "https://hooks.example.com/x"}
    )
    session = await created.json()
    assert session["max_cost"] == 0.5 and session["webhook_url"] == "https://hooks.example.com/x"
    sid = session["id"]
    patched = await (await client.patch(f"/session/{sid}", json={"max_cost": 2})).json()
    assert patched["max_cost"] == 2 and patched["webhook_url"] == "https://hooks.example.com/x"
    cleared = await (await client.patch(f"/session/{sid}", json={"max_cost": None})).json()
    assert cleared["max_cost"] is None and cleared["webhook_url"] is not None
    negative = await client.patch(f"/session/{sid}", json={"max_cost": -1})
    assert negative.status == 422
    assert (await client.post("/session", json={"max_cost": -0.01})).status == 422
    bad_url = await client.post("/session", json={"webhook_url": "ftp://example.com/"})
    assert bad_url.status == 422


async def test_a_fork_of_a_compacted_session_keeps_what_the_model_sees(
    make_client: Any, fake: FakeLLMServer
) -> None:
    client = await make_client(auto_title=False, compaction_keep_messages=2)
    sid = await _conversation(client, fake, 3)
    fake.enqueue(Reply(text="SUMMARY: three questions were answered"))
    status = await (await client.post(f"/session/{sid}/compact")).json()
    assert status["compaction_count"] == 1
    fork = await (await client.post(f"/session/{sid}/fork")).json()
    copies = await _messages(client, fork["id"])
    assert len(copies) == len(await _messages(client, sid))
    assert sum(m["summary"] for m in copies) == 1 and any(m["compacted"] for m in copies)
    fork_status = await (await client.get(f"/session/{fork['id']}/compaction-status")).json()
    assert fork_status["compaction_count"] == 1

    fake.enqueue(Reply(text="fork answer"))
    await _turn(client, fork["id"], "and now?")
    sent = [str(m["content"]) for m in fake.requests[-1]["messages"]]
    assert "SUMMARY: three questions were answered" in sent[1]
    assert sent[2:] == ["question 2", "answer 2", "and now?"]
