"""Optional accounts (Supabase JWT, AUTH_REQUIRED=false): anonymous and signed-in data stay apart.

A request without a token is scoped to the shared ``anonymous`` owner: it never reaches a signed-in
user's session, and a signed-in user never reaches anonymous sessions or another user's questions.
"""

from __future__ import annotations

import json
from typing import Any

from opencode_api.http._auth import ANONYMOUS_USER_ID
from opencode_api.testing import FakeLLMServer, Reply, ToolCall
from tests.http.conftest import JWT_SECRET, ClientFactory, bearer, hs256_token, read_frame

QUESTIONS = {
    "questions": [
        {
            "question": "Which color?",
            "header": "Color",
            "options": [{"label": "Red", "description": "warm"}],
        }
    ]
}

# Every per-session route an anonymous client might try on someone else's session.
SESSION_ROUTES = [
    ("GET", "/session/{sid}"),
    ("PATCH", "/session/{sid}"),
    ("DELETE", "/session/{sid}"),
    ("GET", "/session/{sid}/message"),
    ("POST", "/session/{sid}/message"),
    ("POST", "/session/{sid}/abort"),
    ("POST", "/session/{sid}/generate-title"),
    ("GET", "/session/{sid}/cost"),
    ("POST", "/session/{sid}/compact"),
    ("GET", "/session/{sid}/compaction-status"),
    ("GET", "/session/{sid}/todo"),
    ("GET", "/session/{sid}/stream"),
    ("GET", "/event?session_id={sid}"),
]


async def _wait_for_question(turn: Any) -> dict[str, Any]:
    """The turn stream's ``question`` event (the tool now waits for a reply)."""
    while True:
        frame = await read_frame(turn)
        if frame.get("event") == "question":
            return dict(json.loads(frame["data"]))


async def test_anonymous_and_signed_in_users_are_kept_apart(
    make_client: ClientFactory, fake: FakeLLMServer
) -> None:
    client = await make_client(supabase_jwt_secret=JWT_SECRET, auth_required=False)
    alice = bearer(hs256_token("alice"))
    mine = await (await client.post("/session", headers=alice)).json()
    assert mine["user_id"] == "alice"
    anon = await (await client.post("/session")).json()
    assert anon["user_id"] == ANONYMOUS_USER_ID

    # An anonymous client lists only anonymous sessions and reaches none of alice's routes.
    listed = await (await client.get("/session")).json()
    assert [s["id"] for s in listed] == [anon["id"]]
    for method, path in SESSION_ROUTES:
        response = await client.request(
            method, path.format(sid=mine["id"]), json={"content": "x", "title": "stolen"}
        )
        assert response.status == 404, (method, path)
        assert (await response.json())["error"]["type"] == "not_found"
    session = await (await client.get(f"/session/{mine['id']}", headers=alice)).json()
    assert session["title"] is None  # the PATCH above did not land

    # ...and alice reaches none of the anonymous sessions.
    listed = await (await client.get("/session", headers=alice)).json()
    assert [s["id"] for s in listed] == [mine["id"]]
    for method, path in SESSION_ROUTES:
        response = await client.request(
            method, path.format(sid=anon["id"]), headers=alice, json={"content": "x"}
        )
        assert response.status == 404, (method, path)

    # The anonymous event bus shows no event of alice's sessions.
    async with client.get("/event") as anon_events:
        assert "server.connected" in (await read_frame(anon_events))["data"]
        await client.patch(f"/session/{mine['id']}", json={"title": "a"}, headers=alice)
        await client.patch(f"/session/{anon['id']}", json={"title": "b"})
        event = json.loads((await read_frame(anon_events))["data"])
        assert event["properties"]["info"]["id"] == anon["id"]

    # A question asked in alice's turn is hers alone: anonymous and bob neither see nor answer it.
    fake.enqueue(Reply(tool_calls=[ToolCall("question", QUESTIONS, id="q1")]), Reply(text="ok"))
    turn = await client.post(
        f"/session/{mine['id']}/message", json={"content": "ask me"}, headers=alice
    )
    assert turn.status == 200
    asked = await _wait_for_question(turn)
    pending = await (await client.get("/question", headers=alice)).json()
    assert [q["session_id"] for q in pending] == [mine["id"]]
    question_id = pending[0]["id"]
    assert asked["question_id"] == question_id
    bob = bearer(hs256_token("bob"))
    for headers in ({}, bob):
        assert await (await client.get("/question", headers=headers)).json() == []
        filtered = await client.get(f"/question?session_id={mine['id']}", headers=headers)
        assert await filtered.json() == []
        reply = await client.post(
            f"/question/{question_id}/reply", json={"answers": [["Red"]]}, headers=headers
        )
        assert reply.status == 404
        reject = await client.post(f"/question/{question_id}/reject", headers=headers)
        assert reject.status == 404
    # Alice's own answer still works: the turn resumes and completes.
    reply = await client.post(
        f"/question/{question_id}/reply", json={"answers": [["Red"]]}, headers=alice
    )
    assert await reply.json() == {"success": True}
    body = await turn.text()
    assert '"stop_reason":"stop"' in body and body.rstrip().endswith("data: [DONE]")
