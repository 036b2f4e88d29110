"""Structured output and tool allowlists over HTTP (API.md "Richer input and output"): the
format reaches the provider (fast path and LiteLLM alike), the answer is validated, one
corrective step, ``output`` on ``done``, ``invalid_output``; ``tools`` limits what is offered."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opencode_api.testing import FakeLLMServer, Reply, ToolCall
from tests.http.conftest import parse_sse

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}


async def _session(client: Any) -> str:
    return str((await (await client.post("/session")).json())["id"])


async def _turn(client: Any, sid: str, **body: Any) -> list[dict[str, Any]]:
    response = await client.post(f"/session/{sid}/message", json=body)
    assert response.status == 200, await response.text()
    frames = parse_sse(await response.text())
    return [json.loads(f["data"]) for f in frames if f.get("data", "[DONE]") != "[DONE]"]


@pytest.mark.parametrize("fast_path", ["auto", "off"])
async def test_a_valid_answer_is_the_output_and_the_format_reaches_the_provider(
    make_client: Any, fake: FakeLLMServer, fast_path: str
) -> None:
    client = await make_client(auto_title=False, llm_fast_path=fast_path)
    sid = await _session(client)
    fake.enqueue(Reply(text='```json\n{"city": "Lyon", "population": 522250}\n```'))
    events = await _turn(client, sid, content="Largest city?", response_format=FORMAT)
    done = events[-1]
    assert done["type"] == "done" and done["stop_reason"] == "stop"
    assert done["output"] == {"city": "Lyon", "population": 522250}
    request = fake.requests[-1]
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["schema"] == SCHEMA
    assert "JSON schema" in request["messages"][0]["content"]
    # Without a format, done has no output field (the replaced service's shape).
    fake.enqueue(Reply(text="plain"))
    plain = (await _turn(client, sid, content="hi"))[-1]
    assert "output" not in plain and "response_format" not in fake.requests[-1]


async def test_one_corrective_step_then_invalid_output(
    make_client: Any, fake: FakeLLMServer
) -> None:
    client = await make_client(auto_title=False)
    sid = await _session(client)
    fake.enqueue(Reply(text='{"city": "Lyon"}'), Reply(text='{"city": "Lyon", "population": 5}'))
    events = await _turn(client, sid, content="City?", response_format=FORMAT)
    assert events[-1]["output"] == {"city": "Lyon", "population": 5}
    correction = fake.requests[-1]["messages"][-1]
    assert correction["role"] == "user" and "population" in correction["content"]

    fake.enqueue(Reply(text="not json"), Reply(text="still not json"))
    events = await _turn(client, sid, content="City?", response_format={"type": "json_object"})
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["type"] == "invalid_output"
    messages = (await (await client.get(f"/session/{sid}/message")).json())["messages"]
    assert messages[-1]["status"] == "error" and messages[-1]["error"]["type"] == "invalid_output"


async def test_the_tool_allowlist(make_client: Any, fake: FakeLLMServer) -> None:
    client = await make_client(auto_title=False)
    sid = await _session(client)
    fake.enqueue(
        Reply(tool_calls=[ToolCall("webfetch", {"url": "https://example.com"}, id="c1")]),
        Reply(text="done"),
    )
    events = await _turn(client, sid, content="todo?", tools=["todowrite", "todoread"])
    offered = {t["function"]["name"] for t in fake.requests[0]["tools"]}
    assert offered == {"todowrite", "todoread"}
    result = next(e for e in events if e["type"] == "tool_result")
    assert result["is_error"] and "not available" in result["text"]
    assert events[-1]["stop_reason"] == "stop"


async def test_bad_formats_and_tools_are_refused_and_nothing_is_stored(client: Any) -> None:
    sid = await _session(client)
    bad_bodies: list[dict[str, Any]] = [
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "nope"}},
            }
        },
        {"response_format": {"type": "json_schema"}},
        {"response_format": {"type": "xml"}},
        {"response_format": {"type": "json_object", "json_schema": {"name": "x", "schema": {}}}},
        {"tools": ["no_such_tool"]},
        {"tools": "todowrite"},
    ]
    for body in bad_bodies:
        response = await client.post(f"/session/{sid}/message", json={"content": "x", **body})
        assert response.status == 422, body
        error = (await response.json())["error"]
        assert error["type"] in ("invalid_request", "validation_error")
    unknown = await client.post(
        f"/session/{sid}/message", json={"content": "x", "tools": ["no_such_tool"]}
    )
    assert (await unknown.json())["error"]["field"] == "tools"
    page = await (await client.get(f"/session/{sid}/message")).json()
    assert page["total_count"] == 0
