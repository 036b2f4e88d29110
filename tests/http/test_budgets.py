"""Budgets over HTTP (API.md "Budgets"): a session's ``max_cost`` and ``DAILY_COST_LIMIT`` stop a
running turn after the step that crossed them (``stop_reason: "budget"``) and refuse the next
turn with 429 ``budget_exceeded``. Prices are LiteLLM's bundled ones for gpt-4o-mini ($0.15 per
million input tokens): each scripted step below costs $0.15."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opencode_api.testing import FakeLLMServer, Reply, ToolCall, Usage
from tests.http.conftest import JWT_SECRET, bearer, hs256_token, parse_sse

STEP = Usage(prompt_tokens=1_000_000, completion_tokens=0)  # $0.15 on gpt-4o-mini


def _tool_step() -> Reply:
    return Reply(tool_calls=[ToolCall("todowrite", {"todos": []})], usage=STEP)


async def _events(response: Any) -> list[dict[str, Any]]:
    assert response.status == 200, await response.text()
    frames = parse_sse(await response.text())
    return [json.loads(f["data"]) for f in frames if f.get("data", "[DONE]") != "[DONE]"]


async def test_a_session_budget_stops_the_turn_and_refuses_the_next(
    make_client: Any, fake: FakeLLMServer
) -> None:
    client = await make_client(auto_title=False)
    session = await (await client.post("/session", json={"max_cost": 0.2})).json()
    sid = session["id"]
    # Step 1 leaves $0.05; step 2 crosses the limit: the turn ends there, its third step unasked.
    fake.enqueue(_tool_step(), _tool_step(), Reply(text="never reached", usage=STEP))
    events = await _events(await client.post(f"/session/{sid}/message", json={"content": "go"}))
    done = events[-1]
    assert done["type"] == "done" and done["stop_reason"] == "budget"
    assert done["cost"] == pytest.approx(0.30)
    assert len(fake.requests) == 2
    stored = (await (await client.get(f"/session/{sid}/message")).json())["messages"]
    assert stored[-1]["stop_reason"] == "budget"

    refused = await client.post(f"/session/{sid}/message", json={"content": "more"})
    assert refused.status == 429
    body = await refused.json()
    assert body["error"]["type"] == "budget_exceeded"
    assert body["spent"] == pytest.approx(0.30) and body["limit"] == 0.2
    page = await (await client.get(f"/session/{sid}/message")).json()
    assert page["total_count"] == 2  # the refused message was not stored as a turn

    # Raising the budget lets the session go on.
    await client.patch(f"/session/{sid}", json={"max_cost": 1})
    fake.enqueue(Reply(text="fine", usage=STEP))
    events = await _events(await client.post(f"/session/{sid}/message", json={"content": "ok"}))
    assert events[-1]["stop_reason"] == "stop"


async def test_the_daily_cost_limit_is_per_user(make_client: Any, fake: FakeLLMServer) -> None:
    client = await make_client(
        auto_title=False, supabase_jwt_secret=JWT_SECRET, daily_cost_limit=0.2
    )
    alice = bearer(hs256_token("alice"))
    bob = bearer(hs256_token("bob"))
    sid = (await (await client.post("/session", headers=alice)).json())["id"]
    fake.enqueue(_tool_step(), _tool_step(), Reply(text="never reached", usage=STEP))
    response = await client.post(f"/session/{sid}/message", json={"content": "go"}, headers=alice)
    assert (await _events(response))[-1]["stop_reason"] == "budget"

    # Alice's other sessions are refused too; Bob's day is his own.
    other = (await (await client.post("/session", headers=alice)).json())["id"]
    refused = await client.post(f"/session/{other}/message", json={"content": "x"}, headers=alice)
    assert refused.status == 429
    body = await refused.json()
    assert body["error"]["type"] == "budget_exceeded" and body["limit"] == 0.2
    assert body["spent"] == pytest.approx(0.30)
    bobs = (await (await client.post("/session", headers=bob)).json())["id"]
    fake.enqueue(Reply(text="hello bob", usage=STEP))
    response = await client.post(f"/session/{bobs}/message", json={"content": "hi"}, headers=bob)
    assert (await _events(response))[-1]["stop_reason"] == "stop"
