"""Session CRUD, pagination, cost, compaction status and todos against a real SQLite store."""

from __future__ import annotations

from typing import Any

SESSION_KEYS = {
    "id", "title", "created_at", "updated_at", "provider_id", "model_id", "user_id", "status",
    "message_count", "total_cost", "total_input_tokens", "total_output_tokens",
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
        "session_id", "status", "message_count", "compaction_threshold", "should_compact",
        "compaction_count", "remaining_until_compaction", "last_compacted_at", "last_error",
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
