"""API.md's failure table over HTTP: a provider without credentials, a host that does not resolve,
failing requests during a turn, the store down: clear JSON errors and SSE error events, never a
500, never an exception's text, and the session stays usable."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from structlog.testing import capture_logs

from opencode_api.http._keys import RUNTIME
from opencode_api.llm import _router
from opencode_api.testing import FakeLLMServer, Reply
from tests.http.conftest import ClientFactory, parse_sse, read_frame

NO_KEYS: dict[str, Any] = {
    "openai_api_key": None,
    "openai_api_base": None,
    "anthropic_api_key": None,
    "gemini_api_key": None,
}


async def _session(client: Any, **body: Any) -> str:
    return str((await (await client.post("/session", json=body)).json())["id"])


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The missing-key warning is logged once per provider and process: start each test anew,
    and with no provider key from the environment."""
    monkeypatch.setattr(_router, "_warned", set())
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_BASE"):
        monkeypatch.delenv(name, raising=False)


def _sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(f["data"]) for f in parse_sse(text) if f.get("data") != "[DONE]"]


async def test_no_key_fails_the_turn_at_once_naming_the_variable(
    make_client: ClientFactory, fake: FakeLLMServer
) -> None:
    client = await make_client(**NO_KEYS)
    sid = await _session(client)
    with capture_logs() as logs:
        response = await client.post(f"/session/{sid}/message", json={"content": "hi"})
        text = await response.text()
    assert response.status == 200
    events = _sse_events(text)
    assert [e["type"] for e in events] == ["message_start", "step_start", "error"]
    error = events[-1]["error"]
    assert error["type"] == "provider_not_configured"
    assert error["env"] == ["OPENAI_API_KEY"] and "OPENAI_API_KEY" in error["message"]
    assert parse_sse(text)[-1] == {"data": "[DONE]"}
    assert fake.requests == []  # never sent, never retried
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert any("OPENAI_API_KEY" in json.dumps(entry, default=str) for entry in warnings)
    # The session is not stuck: it is idle and takes the next message.
    session = await (await client.get(f"/session/{sid}")).json()
    assert session["status"] == "idle"


async def test_no_key_for_title_and_compaction_is_a_400_naming_the_variable(
    make_client: ClientFactory,
) -> None:
    client = await make_client(**NO_KEYS)
    sid = await _session(client)
    response = await client.post(
        f"/session/{sid}/generate-title", json={"message": "plan a trip to Lisbon"}
    )
    assert response.status == 400
    body = await response.json()
    assert body["error"]["type"] == "provider_not_configured"
    assert body["error"]["env"] == ["OPENAI_API_KEY"]

    # A session with enough history to compact: stored as any past turns would be.
    runtime = client.server.app[RUNTIME]
    from opencode_api.store import Message

    for i in range(10):
        role = "user" if i % 2 == 0 else "assistant"
        await runtime.store.append_message(
            Message(id=f"msg_{i:02d}", session_id=sid, role=role, content=f"message {i}")
        )
    response = await client.post(f"/session/{sid}/compact", json={})
    assert response.status == 400
    body = await response.json()
    assert body["error"]["type"] == "provider_not_configured"
    assert "OPENAI_API_KEY" in body["error"]["message"]
    status = await (await client.get(f"/session/{sid}/compaction-status")).json()
    assert status["status"] == "failed" and status["last_error"]


async def test_failing_title_requests_during_a_turn_do_not_stop_the_session(
    make_client: ClientFactory, fake: FakeLLMServer
) -> None:
    client = await make_client(anthropic_api_key=None)
    sid = await _session(client)
    fake.enqueue(Reply(text="one two three four five six", token_delay=0.1), Reply(text="next"))
    turn = await client.post(f"/session/{sid}/message", json={"content": "hi"})
    assert (await read_frame(turn))["event"] == "message_start"
    # Title requests wait in the mailbox behind the running turn, then fail one after the other:
    # far past the restart intensity (3 in 5 s), and each failure is an answer, not a crash.
    titles = [
        asyncio.create_task(
            client.post(
                f"/session/{sid}/generate-title",
                json={"message": "hello", "model_id": "anthropic/claude-sonnet-4-5"},
            )
        )
        for _ in range(6)
    ]
    queued = asyncio.create_task(client.post(f"/session/{sid}/message", json={"content": "2"}))
    first = _sse_events(await turn.text())
    assert first[-1]["type"] == "done" and first[-1]["stop_reason"] == "stop"
    for response in await asyncio.gather(*titles):
        assert response.status == 400
        body = await response.json()
        assert body["error"]["type"] == "provider_not_configured"
        assert body["error"]["env"] == ["ANTHROPIC_API_KEY"]
    # The turn queued behind them runs as usual, and so does the next one.
    second = _sse_events(await (await queued).text())
    assert second[0]["type"] == "message_start" and second[-1]["type"] == "done"
    fake.enqueue(Reply(text="still here"))
    third = await client.post(f"/session/{sid}/message", json={"content": "3"})
    assert _sse_events(await third.text())[-1]["type"] == "done"
    assert client.server.app[RUNTIME].supervisor.stats().restarts == 0


async def test_a_host_that_does_not_resolve_is_unavailable_without_retries(
    make_client: ClientFactory,
) -> None:
    client = await make_client(openai_api_base="http://no-such-host.invalid/v1", llm_max_retries=4)
    sid = await _session(client)
    response = await client.post(f"/session/{sid}/message", json={"content": "hi"})
    events = _sse_events(await response.text())
    error = events[-1]["error"]
    assert error["type"] == "unavailable"
    assert "no-such-host" not in error["message"]  # no addresses in what clients see
    response = await client.post(f"/session/{sid}/generate-title", json={"message": "hi"})
    assert response.status == 503
    assert "Retry-After" in response.headers
    assert (await response.json())["error"]["type"] == "unavailable"


async def test_store_down_is_503_unavailable_with_retry_after(make_client: ClientFactory) -> None:
    client = await make_client()
    sid = await _session(client)
    runtime = client.server.app[RUNTIME]
    await runtime.store.close()  # what a vanished database looks like to the server
    try:
        for method, path, body in [
            ("GET", "/session", None),
            ("GET", f"/session/{sid}/message", None),
            ("POST", "/session", {}),
        ]:
            response = await client.request(method, path, json=body)
            assert response.status == 503, (method, path)
            assert response.headers["Retry-After"]
            data = await response.json()
            assert data["error"]["type"] == "unavailable"
            assert data["error"]["request_id"] == response.headers["X-Request-ID"]
            assert "Store" not in data["error"]["message"]
    finally:
        await runtime.store.open()
