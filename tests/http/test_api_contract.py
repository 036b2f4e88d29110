"""Black-box conformance of API.md's "Beyond the replaced service" (branching and editing, busy
sessions and background turns, webhooks, budgets, richer input and output, MCP tools), the
Session object's new fields and the error conventions: one real server process (``python -m
opencode_api serve``) driven over HTTP as a client would, with the scripted fake provider and a
local webhook receiver. Keys are checked for presence (API.md allows extra ones)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks import Webhook

from opencode_api.testing import FakeLLMServer, Reply, ToolCall
from tests.http.conftest import free_port, parse_sse, wait_listening
from tests.tools.mcp_processes import stdio_config, write_config

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
MAX_INPUT_BYTES = 4096
SETTINGS = f"""OPENAI_API_KEY=sk-test AUTO_TITLE=false LOG_FORMAT=json LLM_MAX_RETRIES=0
    MAX_INPUT_BYTES={MAX_INPUT_BYTES} MCP_RECONNECT_BASE_DELAY=0.05 WEBHOOK_ALLOW_PRIVATE=true
    WEBHOOK_POLL_INTERVAL=0.2"""
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
IMAGE = {
    "type": "file",
    "mime": "image/png",
    "data": "data:image/png;base64," + base64.b64encode(PNG).decode(),
    "filename": "dot.png",
}
SESSION_KEYS = {
    "id", "title", "created_at", "updated_at", "provider_id", "model_id", "user_id", "status",
    "message_count", "total_cost", "total_input_tokens", "total_output_tokens",
    "max_cost", "webhook_url", "forked_from", "revert",
}  # fmt: skip
MESSAGE_KEYS = {
    "id", "session_id", "role", "created_at", "content", "provider_id", "model_id", "usage",
    "cost", "finish", "stop_reason", "error", "parts", "compacted", "summary",
}  # fmt: skip
USAGE_KEYS = {
    "input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens"
}  # fmt: skip
SECTION_ROUTES = [
    "GET /session/{id}/message/{mid}", "DELETE /session/{id}/message/{mid}",
    "POST /session/{id}/fork", "POST /session/{id}/revert", "POST /session/{id}/unrevert",
    "POST /session/{id}/message/{mid}/regenerate", "GET /session/{id}/message/{mid}/reply",
    "POST /session/{id}/message", "GET /webhook/delivery", "GET /mcp",
]  # fmt: skip
DELIVERY_KEYS = {
    "id", "event", "session_id", "url", "status", "attempts", "last_status_code", "last_error",
    "next_attempt_at",
}  # fmt: skip


class Receiver:
    """A webhook target on 127.0.0.1 that keeps every request (path, headers, body) it got."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], str]] = []
        self.changed = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        async with self.changed:
            self.seen.append((request.path, dict(request.headers), body))
            self.changed.notify_all()
        return web.Response(status=204)

    async def first(
        self, path: str, match: Callable[[dict[str, Any]], bool]
    ) -> tuple[dict[str, str], str]:
        def found() -> tuple[dict[str, str], str] | None:
            seen = ((h, b) for p, h, b in self.seen if p == path and match(json.loads(b)))
            return next(seen, None)

        async with asyncio.timeout(15), self.changed:
            await self.changed.wait_for(lambda: found() is not None)
        result = found()
        assert result is not None
        return result


@dataclass
class Api:
    http: httpx.AsyncClient
    fake: FakeLLMServer
    hooks: Receiver


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    tmp = tmp_path_factory.mktemp("contract")
    config = write_config(
        tmp / "mcp.json",
        {
            "srv": stdio_config(),
            "gone": {"command": str(tmp / "no-such-server")},
            "off": {"url": "https://mcp.example/mcp", "disabled": True},
        },
    )
    hooks = Receiver()
    await hooks.server.start_server()
    async with FakeLLMServer(tokens=5) as fake:
        port = free_port()
        env = dict(os.environ, OPENAI_API_BASE=fake.base_url, WEBHOOK_SECRET=SECRET)
        env.update(DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite'}", MCP_CONFIG=str(config))
        env.update(WEBHOOK_URL=str(hooks.server.make_url("/hook")))
        env.update(item.split("=") for item in SETTINGS.split())
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "opencode_api", "serve", "--host", "127.0.0.1"),
            *("--port", str(port)),
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            await wait_listening(process)
            assert process.stderr is not None
            drain = asyncio.create_task(_drain(process.stderr))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
                yield Api(http, fake, hooks)
            process.terminate()
            await asyncio.wait_for(process.wait(), 20)
            await drain
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await hooks.server.close()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def poll(fetch: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    """Ask again (a client of the API has no event to wait on) until ``done``; 15 s at most."""
    async with asyncio.timeout(15):
        while not done(result := await fetch()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return result


def error_of(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    """API.md's error body: ``{"error": {"type", "message", ...}}`` with this status and type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == error_type and isinstance(error["message"], str), error
    return dict(error)


def events_of(response: httpx.Response, sid: str) -> list[dict[str, Any]]:
    """A finished turn stream: every frame ``id:`` (integer, growing), ``event:``, ``data:``
    with ``type`` == event, ``session_id``, ``message_id``; then ``data: [DONE]``."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = parse_sse(response.text)
    assert frames[-1] == {"data": "[DONE]"}, frames[-1]
    events, ids = [], []
    for frame in frames[:-1]:
        data = json.loads(frame["data"])
        assert frame["event"] == data["type"]
        assert data["session_id"] == sid and "message_id" in data
        if "id" in frame:
            ids.append(int(frame["id"]))
        events.append(data)
    assert ids == sorted(set(ids)) and len(ids) >= len(events) - 1  # a late error may lack one
    assert events[0]["type"] == "message_start" and events[0]["parent_id"].startswith("msg_")
    assert events[-1]["type"] in {"done", "error"}
    return events


async def new_session(api: Api, **body: Any) -> dict[str, Any]:
    response = await api.http.post("/session", json=body)
    assert response.status_code in (200, 201), response.text
    session = response.json()
    assert session.keys() >= SESSION_KEYS
    return dict(session)


async def turn(api: Api, sid: str, path: str = "", **body: Any) -> list[dict[str, Any]]:
    response = await api.http.post(path or f"/session/{sid}/message", json=body)
    return events_of(response, sid)


async def messages(api: Api, sid: str) -> list[dict[str, Any]]:
    response = await api.http.get(f"/session/{sid}/message")
    assert response.status_code == 200
    return list(response.json()["messages"])


def check_message(message: dict[str, Any]) -> None:
    assert message.keys() >= MESSAGE_KEYS, MESSAGE_KEYS - message.keys()
    assert message["id"].startswith("msg_") and message["role"] in ("user", "assistant")
    assert message["usage"] is None or message["usage"].keys() >= USAGE_KEYS
    for part in message["parts"]:
        assert {"id", "type"} <= part.keys() and part["id"].startswith("prt_")


async def test_session_fields_and_error_conventions(api: Api) -> None:
    session = await new_session(api)
    assert session["id"].startswith("ses_") and session["status"] == "idle"
    for key in ("max_cost", "webhook_url", "forked_from", "revert"):
        assert session[key] is None
    hook = "http://127.0.0.1:9/hook"
    patched = await api.http.patch(
        f"/session/{session['id']}", json={"max_cost": 2.5, "webhook_url": hook}
    )
    assert patched.status_code == 200
    assert (patched.json()["max_cost"], patched.json()["webhook_url"]) == (2.5, hook)
    cleared = await api.http.patch(f"/session/{session['id']}", json={"webhook_url": None})
    assert cleared.json()["webhook_url"] is None and cleared.json()["max_cost"] == 2.5

    error_of(await api.http.get("/session/ses_nope"), 404, "not_found")
    error_of(await api.http.post("/session/ses_nope/fork", json={}), 404, "not_found")
    sid = session["id"]
    bad = await api.http.post(f"/session/{sid}/message", json={"content": ""})
    assert "content" in error_of(bad, 422, "invalid_request")["message"]
    bad = await api.http.post(f"/session/{sid}/revert", json={})
    assert "message_id" in error_of(bad, 422, "invalid_request")["message"]
    bad = await api.http.post(f"/session/{sid}/message?busy=later", json={"content": "x"})
    assert "busy" in error_of(bad, 422, "invalid_request")["message"]
    bad = await api.http.post(f"/session/{sid}/message", content=b"{nope")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request"
    bad = await api.http.patch(f"/session/{sid}", json={"max_cost": "lots"})
    assert "max_cost" in error_of(bad, 422, "invalid_request")["message"]
    huge = await api.http.post("/session", content=b"{" + b" " * (5 * 1024 * 1024) + b"}")
    assert huge.status_code == 413 and "error" in huge.json()


async def test_every_route_of_the_section_is_in_the_openapi_document(api: Api) -> None:
    document = (await api.http.get("/openapi.json")).json()
    paths = document["paths"]
    for route in SECTION_ROUTES:
        method, path = route.split()
        assert method.lower() in paths.get(path, {}), f"{route} is not documented"
    send = paths["/session/{id}/message"]["post"]
    assert "202" in send["responses"]
    assert {"busy", "stream"} <= {p["name"] for p in send["parameters"]}
    # A 429 may be budget_exceeded, whose body has spent and limit (not quota's usage, limits).
    schemas = document["components"]["schemas"]
    for operation in (send, paths["/session/{id}/message/{mid}/regenerate"]["post"]):
        body = operation["responses"]["429"]["content"]["application/json"]["schema"]
        refs = [ref["$ref"].rsplit("/", 1)[-1] for ref in body["anyOf"]]
        assert any({"spent", "limit"} <= schemas[ref]["properties"].keys() for ref in refs)


async def test_a_turn_streams_and_its_messages_read_back(api: Api) -> None:
    sid = (await new_session(api))["id"]
    events = await turn(api, sid, content="hello")
    done = events[-1]
    assert done["type"] == "done" and done["stop_reason"] == "stop"
    assert {"input_tokens", "output_tokens"} <= done["usage"].keys() and "cost" in done
    assert any(e["type"] == "step_start" for e in events)
    listed = await messages(api, sid)
    assert [m["role"] for m in listed] == ["user", "assistant"]
    for message in listed:
        check_message(message)
        one = await api.http.get(f"/session/{sid}/message/{message['id']}")
        assert one.status_code == 200 and one.json()["id"] == message["id"]
        check_message(one.json())
    error_of(await api.http.get(f"/session/{sid}/message/msg_nope"), 404, "not_found")


async def test_fork_revert_unrevert_and_delete(api: Api) -> None:
    sid = (await new_session(api))["id"]
    await turn(api, sid, content="one")
    await turn(api, sid, content="two")
    first_user, first_reply, second_user, _ = await messages(api, sid)

    response = await api.http.post(
        f"/session/{sid}/fork", json={"message_id": first_reply["id"], "title": "branch"}
    )
    assert response.status_code == 201
    fork = response.json()
    assert fork.keys() >= SESSION_KEYS and fork["id"] != sid and fork["title"] == "branch"
    assert fork["forked_from"] == {"session_id": sid, "message_id": first_reply["id"]}
    assert fork["total_cost"] == 0 and fork["total_input_tokens"] == 0
    copies = await messages(api, fork["id"])
    assert [m["content"] for m in copies] == [first_user["content"], first_reply["content"]]
    assert not {m["id"] for m in copies} & {first_user["id"], first_reply["id"]}
    whole = await api.http.post(f"/session/{sid}/fork")
    assert whole.status_code == 201 and whole.json()["forked_from"]["session_id"] == sid
    assert len(await messages(api, whole.json()["id"])) == 4

    reverted = await api.http.post(f"/session/{sid}/revert", json={"message_id": second_user["id"]})
    assert reverted.status_code == 200 and reverted.json().keys() >= SESSION_KEYS
    assert reverted.json()["revert"] == {"message_id": second_user["id"]}
    assert [m["id"] for m in await messages(api, sid)] == [first_user["id"], first_reply["id"]]
    restored = await api.http.post(f"/session/{sid}/unrevert")
    assert restored.status_code == 200 and restored.json()["revert"] is None
    assert len(await messages(api, sid)) == 4

    # The next turn deletes what a revert hid: an unrevert after it brings nothing back.
    await api.http.post(f"/session/{sid}/revert", json={"message_id": second_user["id"]})
    await turn(api, sid, content="three")
    assert (await api.http.post(f"/session/{sid}/unrevert")).json()["revert"] is None
    after = await messages(api, sid)
    assert [m["content"] for m in after][:3] == ["one", first_reply["content"], "three"]
    assert second_user["id"] not in {m["id"] for m in after}

    deleted = await api.http.delete(f"/session/{sid}/message/{first_user['id']}")
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    error_of(await api.http.get(f"/session/{sid}/message/{first_user['id']}"), 404, "not_found")
    error_of(await api.http.delete(f"/session/{sid}/message/{first_user['id']}"), 404, "not_found")


async def test_regenerate_reruns_the_user_message_with_new_content(api: Api) -> None:
    sid = (await new_session(api))["id"]
    await turn(api, sid, content="first try")
    _, reply = await messages(api, sid)
    api.fake.enqueue(Reply(text="again"))
    path = f"/session/{sid}/message/{reply['id']}/regenerate"
    events = await turn(api, sid, path, content="second try")
    assert events[-1]["type"] == "done" and events[-1]["stop_reason"] == "stop"
    listed = await messages(api, sid)
    assert [m["content"] for m in listed] == ["second try", "again"]
    assert listed[1]["id"] != reply["id"]


async def test_busy_reject_history_edits_and_interrupt(api: Api) -> None:
    sid = (await new_session(api))["id"]
    asked, release = asyncio.Event(), asyncio.Event()
    api.fake.enqueue(Reply(text="held", received=asked, hold=release), Reply(text="next"))
    try:
        first = asyncio.create_task(api.http.post(f"/session/{sid}/message", json={"content": "a"}))
        await asyncio.wait_for(asked.wait(), 15)
        user = (await messages(api, sid))[0]
        running = await api.http.get(f"/session/{sid}")
        assert running.json()["status"] == "busy"
        reject = await api.http.post(f"/session/{sid}/message?busy=reject", json={"content": "b"})
        error_of(reject, 409, "busy")
        for response in (
            await api.http.delete(f"/session/{sid}/message/{user['id']}"),
            await api.http.post(f"/session/{sid}/revert", json={"message_id": user["id"]}),
            await api.http.post(f"/session/{sid}/unrevert"),
            await api.http.post(f"/session/{sid}/message/{user['id']}/regenerate", json={}),
        ):
            error_of(response, 409, "busy")
        fork = await api.http.post(f"/session/{sid}/fork")  # a fork never waits
        assert fork.status_code == 201

        interrupt = await api.http.post(
            f"/session/{sid}/message?busy=interrupt", json={"content": "c"}
        )
        second = events_of(interrupt, sid)
        assert second[-1]["type"] == "done" and second[-1]["stop_reason"] == "stop"
        aborted = events_of(await asyncio.wait_for(first, 15), sid)
        assert aborted[-1]["type"] == "done" and aborted[-1]["stop_reason"] == "aborted"
    finally:
        release.set()


async def test_background_turns_and_their_reply(api: Api) -> None:
    sid = (await new_session(api))["id"]
    asked, release = asyncio.Event(), asyncio.Event()
    api.fake.enqueue(Reply(text="background", received=asked, hold=release))
    try:
        accepted = await api.http.post(
            f"/session/{sid}/message?stream=false", json={"content": "x"}
        )
        assert accepted.status_code == 202
        body = accepted.json()
        assert body["session_id"] == sid and body["status"] in ("queued", "running")
        mid = body["user_message_id"]
        assert mid.startswith("msg_")
        queued = await api.http.post(
            f"/session/{sid}/message", json={"content": "y"}, headers={"Prefer": "respond-async"}
        )
        assert queued.status_code == 202 and queued.json()["status"] == "queued"
        await asyncio.wait_for(asked.wait(), 15)
        now = await api.http.get(f"/session/{sid}/message/{mid}/reply")
        assert now.status_code == 200 and now.json() == {"status": "running", "message": None}
    finally:
        release.set()
    reply = (await api.http.get(f"/session/{sid}/message/{mid}/reply?wait=15")).json()
    assert reply["status"] == "done"
    check_message(reply["message"])
    assert reply["message"]["role"] == "assistant" and reply["message"]["content"] == "background"
    later = queued.json()["user_message_id"]
    assert (await api.http.get(f"/session/{sid}/message/{later}/reply?wait=15")).json()[
        "status"
    ] == "done"
    too_long = await api.http.get(f"/session/{sid}/message/{mid}/reply?wait=61")
    assert "wait" in error_of(too_long, 422, "invalid_request")["message"]


async def test_webhook_body_headers_and_deliveries(api: Api) -> None:
    own = str(api.hooks.server.make_url("/own"))
    session = await new_session(api, webhook_url=own)
    sid = session["id"]
    assert session["webhook_url"] == own
    api.fake.enqueue(Reply(text="hooked"))
    accepted = await api.http.post(f"/session/{sid}/message?stream=false", json={"content": "w"})
    mid = accepted.json()["user_message_id"]
    headers, body = await api.hooks.first("/hook", lambda p: p["data"]["session_id"] == sid)
    # The session's own target gets the same event, signed with the server's secret.
    own_headers, own_body = await api.hooks.first("/own", lambda p: p["data"]["session_id"] == sid)
    assert Webhook(SECRET).verify(own_body, own_headers)["data"]["user_message_id"] == mid
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["webhook-id"] and int(headers["webhook-timestamp"]) > 0
    payload = Webhook(SECRET).verify(body, headers)
    assert {"type", "timestamp", "data"} <= payload.keys()
    assert payload["type"] == "turn.completed" and isinstance(payload["timestamp"], str)
    data = payload["data"]
    assert {"session_id", "user_message_id", "status", "message"} <= data.keys()
    assert (data["user_message_id"], data["status"]) == (mid, "done")
    check_message(data["message"])
    assert data["message"]["content"] == "hooked"

    listed = await poll(
        lambda: api.http.get("/webhook/delivery", params={"session_id": sid}),
        lambda r: [d["status"] for d in r.json()] == ["delivered", "delivered"],
    )
    [delivery] = [d for d in listed.json() if d["url"].endswith("/hook")]
    assert {d["url"] for d in listed.json()} == {own, delivery["url"]}
    assert delivery.keys() >= DELIVERY_KEYS
    assert (delivery["id"], delivery["event"]) == (headers["webhook-id"], "turn.completed")
    assert delivery["session_id"] == sid and delivery["attempts"] >= 1
    assert delivery["last_status_code"] == 204
    failed = await api.http.get("/webhook/delivery", params={"session_id": sid, "status": "failed"})
    assert failed.status_code == 200 and failed.json() == []
    # The route as API.md writes it: empty filters filter nothing.
    unfiltered = await api.http.get("/webhook/delivery?session_id=&status=")
    assert unfiltered.status_code == 200
    assert delivery["id"] in {d["id"] for d in unfiltered.json()}
    bad = await api.http.get("/webhook/delivery", params={"status": "lost"})
    assert "status" in error_of(bad, 422, "invalid_request")["message"]


async def test_a_budget_stops_the_turn_and_refuses_the_next(api: Api) -> None:
    sid = (await new_session(api, max_cost=1e-9))["id"]
    api.fake.enqueue(Reply(tool_calls=[ToolCall("todoread", {})]))  # a turn of several steps
    events = await turn(api, sid, content="spend")
    assert events[-1]["type"] == "done" and events[-1]["stop_reason"] == "budget"
    refused = await api.http.post(f"/session/{sid}/message", json={"content": "more"})
    error_of(refused, 429, "budget_exceeded")
    body = refused.json()
    assert body["limit"] == 1e-9 and body["spent"] > body["limit"]


async def test_file_parts_structured_output_and_their_refusals(api: Api) -> None:
    sid = (await new_session(api))["id"]
    events = await turn(api, sid, parts=[{"type": "text", "text": "look"}, IMAGE])
    assert events[-1]["type"] == "done"
    user = (await messages(api, sid))[0]
    check_message(user)
    assert [p["type"] for p in user["parts"] if p["type"] == "file"] == ["file"]

    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    api.fake.enqueue(Reply(text='{"n": 3}'))
    fmt = {"type": "json_schema", "json_schema": {"name": "count", "schema": schema}}
    events = await turn(api, sid, content="count", response_format=fmt)
    assert events[-1]["type"] == "done" and events[-1]["output"] == {"n": 3}

    old = {"content": "see", "model_id": "openai/gpt-3.5-turbo", "parts": [IMAGE]}
    refused = await api.http.post(f"/session/{sid}/message", json=old)
    assert "gpt-3.5-turbo" in error_of(refused, 400, "unsupported_input")["message"]
    big = dict(IMAGE, data="data:image/png;base64," + base64.b64encode(PNG * 40).decode())
    too_big = await api.http.post(f"/session/{sid}/message", json={"parts": [big]})
    assert too_big.status_code == 413 and "error" in too_big.json()
    assert len(await messages(api, sid)) == 4  # nothing refused was stored


async def test_mcp_servers_are_listed(api: Api) -> None:
    def ready(response: httpx.Response) -> bool:
        status = {s["name"]: s["status"] for s in response.json()}
        return status["srv"] == "connected" and status["gone"] == "failed"

    response = await poll(lambda: api.http.get("/mcp"), ready)
    assert response.status_code == 200
    servers = {s["name"]: s for s in response.json()}
    for server in servers.values():
        assert {"name", "status", "tools"} <= server.keys()
    assert "srv_add" in servers["srv"]["tools"]
    assert servers["gone"]["tools"] == [] and isinstance(servers["gone"]["error"], str)
    assert servers["off"]["status"] == "disabled"
