"""Turn streams over SSE: frames, [DONE], resume by Last-Event-ID, disconnects, busy, quota, bus."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from opencode_api.testing import FakeLLMServer, Reply
from tests.http.conftest import (
    JWT_SECRET,
    ClientFactory,
    bearer,
    hs256_token,
    parse_sse,
    read_frame,
)


async def _session(client: Any, headers: dict[str, str] | None = None) -> str:
    return str((await (await client.post("/session", headers=headers)).json())["id"])


async def test_turn_stream_frames(client: Any, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(text="Hello there friend"))
    sid = await _session(client)
    response = await client.post(f"/session/{sid}/message", json={"content": "hi"})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    frames = parse_sse(await response.text())
    assert frames[-1] == {"data": "[DONE]"}
    events = frames[:-1]
    types = [f["event"] for f in events]
    assert types[0] == "message_start" and types[-1] == "done"
    assert "step_start" in types and "step_finish" in types
    ids = [int(f["id"]) for f in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for frame in events:
        data = json.loads(frame["data"])
        assert data["type"] == frame["event"] and data["session_id"] == sid
        assert "message_id" in data
    text = "".join(json.loads(f["data"])["text"] for f in events if f["event"] == "text")
    assert text == "Hello there friend"
    done = json.loads(events[-1]["data"])
    assert done["stop_reason"] == "stop" and done["usage"]["output_tokens"] > 0

    page = await (await client.get(f"/session/{sid}/message")).json()
    assert page["total_count"] == 2
    assistant = page["messages"][1]
    assert assistant["content"] == "Hello there friend"
    assert assistant["finish"] == assistant["stop_reason"] == "stop"
    session = await (await client.get(f"/session/{sid}")).json()
    assert session["total_output_tokens"] > 0  # status may still read busy: see report
    cost = await (await client.get(f"/session/{sid}/cost")).json()
    assert cost["by_model"][0]["model_id"] == "gpt-4o-mini"
    metrics = await (await client.get("/metrics")).text()
    assert 'opencode_turns_total{stop_reason="stop"} 1.0' in metrics


async def test_disconnect_does_not_stop_the_turn_and_resume(
    client: Any, fake: FakeLLMServer
) -> None:
    words = [f"w{i} " for i in range(30)]
    fake.enqueue(Reply(text=words, token_delay=0.01))
    sid = await _session(client)
    response = await client.post(f"/session/{sid}/message", json={"content": "long"})
    start = await read_frame(response)
    response.close()  # the client goes away after message_start
    assert start["event"] == "message_start"

    # Re-attach after the first event: everything after it is replayed, then live, up to done.
    async with client.get(
        f"/session/{sid}/stream", headers={"Last-Event-ID": start["id"]}
    ) as stream:
        received = [await read_frame(stream)]
        while received[-1].get("event") != "done":
            received.append(await read_frame(stream))
    assert int(received[0]["id"]) == int(start["id"]) + 1
    text = "".join(json.loads(f["data"])["text"] for f in received if f.get("event") == "text")
    assert text == "".join(words)
    page = await (await client.get(f"/session/{sid}/message")).json()
    assert page["messages"][-1]["content"] == "".join(words)
    assert page["messages"][-1]["finish"] == "stop"

    # ?after= works like Last-Event-ID.
    async with client.get(f"/session/{sid}/stream?after={start['id']}") as stream:
        assert "id" in await read_frame(stream)


async def test_busy_reject_and_abort(client: Any, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(text=[f"t{i} " for i in range(200)], token_delay=0.02))
    sid = await _session(client)
    running = await client.post(f"/session/{sid}/message", json={"content": "slow"})
    while (await read_frame(running)).get("event") != "text":
        pass  # until the turn is surely running
    rejected = await client.post(f"/session/{sid}/message?busy=reject", json={"content": "x"})
    assert rejected.status == 409
    assert (await rejected.json())["error"]["type"] == "busy"
    assert (await (await client.get(f"/session/{sid}")).json())["status"] == "busy"
    assert await (await client.post(f"/session/{sid}/abort")).json() == {"cancelled": True}
    frames = parse_sse((await running.content.read()).decode())
    done = json.loads(next(f for f in frames if f.get("event") == "done")["data"])
    assert done["stop_reason"] == "aborted"
    assert frames[-1] == {"data": "[DONE]"}


async def test_quota_with_20_concurrent_turns(make_client: ClientFactory) -> None:
    client = await make_client(
        supabase_jwt_secret=JWT_SECRET, daily_token_limit=1000, quota_reserve_tokens=100
    )
    headers = bearer(hs256_token("heavy"))
    sessions = [await _session(client, headers) for _ in range(20)]

    async def turn(sid: str) -> tuple[int, Any]:
        response = await client.post(
            f"/session/{sid}/message", json={"content": "go", "max_tokens": 100}, headers=headers
        )
        body = await response.text()
        return response.status, body

    results = await asyncio.gather(*(turn(s) for s in sessions))
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 429} and 429 in statuses and 200 in statuses
    body = json.loads(next(b for s, b in results if s == 429))
    assert body["error"]["type"] == "quota_exceeded"
    assert {"usage", "limits", "resets_at"} <= set(body)
    assert body["limits"]["daily_tokens"] == 1000


async def test_daily_request_limit(make_client: ClientFactory) -> None:
    client = await make_client(supabase_jwt_secret=JWT_SECRET, daily_request_limit=2)
    headers = bearer(hs256_token("counted"))
    sid = await _session(client, headers)
    for _ in range(2):
        response = await client.post(
            f"/session/{sid}/message", json={"content": "x"}, headers=headers
        )
        assert response.status == 200
        await response.read()
    response = await client.post(f"/session/{sid}/message", json={"content": "x"}, headers=headers)
    assert response.status == 429
    assert response.headers["Retry-After"]


async def test_event_bus_filters_by_user_and_session(make_client: ClientFactory) -> None:
    client = await make_client(supabase_jwt_secret=JWT_SECRET)
    alice, bob = bearer(hs256_token("alice")), bearer(hs256_token("bob"))
    async with (
        client.get("/event", headers=bob) as bob_events,
        client.get("/event", headers=alice) as alice_events,
    ):
        first = json.loads((await read_frame(alice_events))["data"])
        assert first == {"type": "server.connected", "properties": {}}
        await read_frame(bob_events)
        sid = await _session(client, alice)
        await _session(client, bob)
        event = json.loads((await read_frame(alice_events))["data"])
        assert event["type"] == "session.created"
        assert event["properties"]["info"]["id"] == sid
        event = json.loads((await read_frame(bob_events))["data"])
        assert event["properties"]["info"]["user_id"] == "bob"


async def test_queued_turn_streams_when_its_turn_begins(client: Any, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(text=[f"a{i} " for i in range(50)], token_delay=0.01))
    sid = await _session(client)
    first = await client.post(f"/session/{sid}/message", json={"content": "one"})
    while (await read_frame(first)).get("event") != "text":
        pass  # the first turn is running
    second = await client.post(f"/session/{sid}/message", json={"content": "two"})
    assert second.status == 200  # busy=queue (the default): queued, its stream open
    first_frames = parse_sse(await first.text())
    second_frames = parse_sse(await second.text())
    for frames in (first_frames, second_frames):
        assert frames[-1] == {"data": "[DONE]"}
        assert json.loads(frames[-2]["data"])["stop_reason"] == "stop"
    assert second_frames[0]["event"] == "message_start"
    assert int(second_frames[0]["id"]) > max(int(f["id"]) for f in first_frames if "id" in f)
    text = "".join(json.loads(f["data"])["text"] for f in second_frames if f.get("event") == "text")
    assert text  # the fake's default reply (the automatic title may take a scripted one)
    page = await (await client.get(f"/session/{sid}/message")).json()
    assert [m["role"] for m in page["messages"]] == ["user", "assistant", "user", "assistant"]


async def test_failed_turn_ends_with_error_then_done_frame(
    client: Any, fake: FakeLLMServer
) -> None:
    fake.enqueue(Reply.error(400, "bad request from the provider"))
    sid = await _session(client)
    response = await client.post(f"/session/{sid}/message", json={"content": "x"})
    assert response.status == 200
    frames = parse_sse(await response.text())
    assert frames[-1] == {"data": "[DONE]"}
    last = frames[-2]
    assert last["event"] in {"error", "done"} and "id" in last
    data = json.loads(last["data"])
    assert data["session_id"] == sid and "message_id" in data
    if last["event"] == "error":
        assert set(data["error"]) >= {"type", "message"}
    else:
        assert data["stop_reason"] == "error"


async def test_delete_aborts_the_running_turn(client: Any, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(text=[f"t{i} " for i in range(200)], token_delay=0.02))
    sid = await _session(client)
    running = await client.post(f"/session/{sid}/message", json={"content": "slow"})
    while (await read_frame(running)).get("event") != "text":
        pass  # the turn is surely running
    deleted = await client.delete(f"/session/{sid}")
    assert await deleted.json() == {"success": True}
    frames = parse_sse((await running.content.read()).decode())
    assert frames[-1] == {"data": "[DONE]"}
    last = json.loads(frames[-2]["data"])
    assert last["type"] in {"done", "error"}
    if last["type"] == "done":
        assert last["stop_reason"] == "aborted"
    assert (await client.get(f"/session/{sid}")).status == 404
    assert (await client.get(f"/session/{sid}/message")).status == 404
