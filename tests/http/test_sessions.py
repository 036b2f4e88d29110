"""Session CRUD, pagination, cost, compaction status and todos against a real SQLite store."""

from __future__ import annotations

from typing import Any

from opencode_api.testing import FakeLLMServer, Reply

SESSION_KEYS = {
    "id",
    "title",
    "created_at",
    "updated_at",
    "provider_id",
    "model_id",
    "user_id",
    "status",
    "message_count",
    "total_cost",
    "total_input_tokens",
    "total_output_tokens",
}


async def test_session_crud(client: Any) -> None:
    created = await client.post(
        "/session", json={"title": "first", "model_id": "openai/gpt-4o-mini", "system": "be brief"}
    )
    assert created.status in (200, 201)
    session = await created.json()
    assert set(session) >= SESSION_KEYS
    assert session["id"].startswith("ses_") and session["status"] == "idle"
    assert (session["provider_id"], session["model_id"]) == ("openai", "gpt-4o-mini")
    empty = await (await client.post("/session")).json()  # body optional

    listed = await (await client.get("/session")).json()
    assert [s["id"] for s in listed] == [empty["id"], session["id"]]  # newest first
    assert len(await (await client.get("/session?limit=1&offset=1")).json()) == 1

    patched = await (await client.patch(f"/session/{session['id']}", json={"title": "t2"})).json()
    assert patched["title"] == "t2"
    assert (await (await client.get(f"/session/{session['id']}")).json())["title"] == "t2"

    deleted = await client.delete(f"/session/{session['id']}")
    assert await deleted.json() == {"success": True}
    assert (await client.get(f"/session/{session['id']}")).status == 404


async def test_session_subresources(client: Any) -> None:
    session = await (await client.post("/session")).json()
    sid = session["id"]
    page = await (await client.get(f"/session/{sid}/message?limit=20&offset=0&order=desc")).json()
    assert page == {"messages": [], "total_count": 0, "limit": 20, "offset": 0}
    cost = await (await client.get(f"/session/{sid}/cost")).json()
    assert cost["session_id"] == sid and cost["total_cost"] == 0 and cost["by_model"] == []
    status = await (await client.get(f"/session/{sid}/compaction-status")).json()
    assert status["session_id"] == sid and status["status"] == "idle"
    assert set(status) == {
        "session_id",
        "status",
        "message_count",
        "compaction_threshold",
        "should_compact",
        "compaction_count",
        "remaining_until_compaction",
        "last_compacted_at",
        "last_error",
    }
    assert await (await client.get(f"/session/{sid}/todo")).json() == []
    assert await (await client.post(f"/session/{sid}/abort")).json() == {"cancelled": False}
    assert await (await client.get("/question")).json() == []


async def test_providers(client: Any) -> None:
    providers = await (await client.get("/provider")).json()
    ids = {p["id"] for p in providers}
    assert {"anthropic", "openai", "gemini"} <= ids
    openai = next(p for p in providers if p["id"] == "openai")
    assert openai["available"] is True and openai["model_count"] > 0
    detail = await (await client.get("/provider/openai")).json()
    assert detail["env"] == ["OPENAI_API_KEY"] and detail["models"]
    models = await (await client.get("/provider/openai/model")).json()
    assert {"id", "name", "provider_id", "context_window", "supports_tools"} <= set(models[0])


MESSAGE_KEYS = {
    "id",
    "session_id",
    "role",
    "created_at",
    "content",
    "provider_id",
    "model_id",
    "usage",
    "cost",
    "finish",
    "stop_reason",
    "error",
    "parts",
    "compacted",
    "summary",
}
USAGE_KEYS = {
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
}
MODEL_KEYS = {
    "id",
    "name",
    "provider_id",
    "context_window",
    "max_output_tokens",
    "input_cost_per_token",
    "output_cost_per_token",
    "supports_tools",
    "supports_reasoning",
}


async def test_contract_shapes_after_a_turn(client: Any, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(text="Paris is the capital"), Reply(text="Capital cities"))
    sid = (await (await client.post("/session")).json())["id"]
    await (await client.post(f"/session/{sid}/message", json={"content": "capital?"})).read()

    page = await (await client.get(f"/session/{sid}/message?order=desc")).json()
    assert set(page) == {"messages", "total_count", "limit", "offset"}
    assert (page["total_count"], page["limit"], page["offset"]) == (2, None, 0)
    assistant, user = page["messages"]
    for message in (assistant, user):
        assert set(message) >= MESSAGE_KEYS
        assert message["id"].startswith("msg_") and message["session_id"] == sid
    assert (user["role"], user["content"], user["usage"]) == ("user", "capital?", None)
    assert assistant["role"] == "assistant" and set(assistant["usage"]) >= USAGE_KEYS
    assert assistant["compacted"] is False and assistant["summary"] is False
    types = [p["type"] for p in assistant["parts"]]
    assert "text" in types and "step_start" in types and "step_finish" in types
    for part in assistant["parts"]:
        assert part["id"].startswith("prt_")
        assert part["type"] in {"text", "reasoning", "tool_call", "step_start", "step_finish"}

    titled = await client.post(f"/session/{sid}/generate-title", json={})
    assert titled.status == 200
    title = (await titled.json())["title"]
    assert isinstance(title, str) and title
    assert (await (await client.get(f"/session/{sid}")).json())["title"] == title

    cost = await (await client.get(f"/session/{sid}/cost")).json()
    assert set(cost) >= {
        "session_id",
        "total_cost",
        "input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "by_model",
    }
    assert set(cost["by_model"][0]) >= {
        "provider_id",
        "model_id",
        "cost",
        "input_tokens",
        "output_tokens",
        "messages",
    }
    compacted = await client.post(f"/session/{sid}/compact")
    assert compacted.status == 200
    status = await compacted.json()
    assert status["session_id"] == sid and status["status"] in {"idle", "failed"}
    assert "compaction_count" in status and "remaining_until_compaction" in status


async def test_provider_shapes(client: Any) -> None:
    providers = await (await client.get("/provider")).json()
    for provider in providers:
        assert set(provider) == {"id", "name", "available", "model_count"}
    detail = await (await client.get("/provider/anthropic")).json()
    assert set(detail) == {"id", "name", "available", "env", "models"}
    assert detail["available"] is False  # no key configured in the tests
    models = await (await client.get("/provider/anthropic/model")).json()
    assert models and all(set(m) == MODEL_KEYS for m in models)
    assert {m["provider_id"] for m in models} == {"anthropic"}
