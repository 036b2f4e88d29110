"""Bodies no store can take answer 400 ``invalid_request`` naming the field (queries 422), the same
on SQLite and PostgreSQL, and nothing of them is stored: deep nesting, NUL characters, lone
surrogates, text that is not UTF-8, numbers too long to read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opencode_api.http._validation import MAX_DEPTH
from opencode_api.testing import FakeLLMServer, Reply, ToolCall
from tests.http.conftest import ClientFactory, read_frame

JSON = {"Content-Type": "application/json"}
DEEP = b"[" * 10_000 + b"]" * 10_000
QUESTIONS = {
    "questions": [
        {
            "question": "Which color?",
            "header": "Color",
            "options": [{"label": "Red", "description": "warm"}],
        }
    ]
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides selecting the store (a fresh PostgreSQL database, or SQLite)."""
    if request.param == "postgres":
        return {"database_url": request.getfixturevalue("postgres_database_url")}
    return {}


@pytest.fixture
async def client(database: dict[str, Any], make_client: ClientFactory) -> Any:
    # ``database`` comes first, so that it outlives the runtime that make_client closes.
    return await make_client(**database)


def _nested(depth: int) -> Any:
    """``{"title": [[...]]}`` with containers ``depth`` levels deep, the outer object included."""
    value: Any = "x"
    for _ in range(depth - 1):
        value = [value]
    return {"title": value}


async def _refused(response: Any, field: str) -> None:
    assert response.status == 400, await response.text()
    error = (await response.json())["error"]
    assert error["type"] == "invalid_request"
    assert error["field"] == field
    assert "\x00" not in error["message"]


async def _sessions(client: Any) -> list[str]:
    return [s["id"] for s in await (await client.get("/session")).json()]


async def _messages(client: Any, sid: str) -> list[dict[str, Any]]:
    page = await (await client.get(f"/session/{sid}/message")).json()
    return list(page["messages"])


async def _session(client: Any) -> str:
    return str((await (await client.post("/session", json={"title": "kept"})).json())["id"])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(DEEP, id="10000-deep-array"),
        pytest.param(b'{"title": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001, id="10000-deep"),
        pytest.param(json.dumps(_nested(MAX_DEPTH + 1)).encode(), id="one-past-the-limit"),
    ],
)
async def test_deep_nesting_on_create_is_400(client: Any, body: bytes) -> None:
    before = await _sessions(client)
    await _refused(await client.post("/session", data=body, headers=JSON), "body")
    assert await _sessions(client) == before


async def test_nesting_up_to_the_limit_is_read(client: Any) -> None:
    """At ``MAX_DEPTH`` the body is read (and the wrong type of ``title`` is a 422)."""
    response = await client.post("/session", data=json.dumps(_nested(MAX_DEPTH)), headers=JSON)
    assert response.status == 422
    assert (await response.json())["error"]["field"] == "title"
    # Brackets inside strings are text, not nesting.
    response = await client.post("/session", json={"title": "[{" * 500})
    assert response.status == 200
    assert (await response.json())["title"] == "[{" * 500


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(DEEP, "body", id="deep-array"),
        pytest.param(
            b'{"content": "hi", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
            "body",
            id="deep-unknown-field",
        ),
        pytest.param({"content": "a\x00b"}, "content", id="nul-content"),
        pytest.param({"content": "hi", "system": "be \x00 brief"}, "system", id="nul-system"),
        pytest.param({"content": "hi", "model_id": "gpt\x00"}, "model_id", id="nul-model"),
        pytest.param(b'{"content": "a\\udc00"}', "content", id="lone-surrogate"),
        pytest.param(b'{"content": "\xed\xa0\x80"}', "body", id="utf8-encoded-surrogate"),
        pytest.param('{"content": "hi"}'.encode("utf-16"), "body", id="utf-16"),
        pytest.param(
            b'{"content": "hi", "max_steps": ' + b"9" * 5000 + b"}", "body", id="5000-digit-number"
        ),
    ],
)
async def test_hostile_message_is_400_and_nothing_is_stored(
    client: Any, fake: FakeLLMServer, body: Any, field: str
) -> None:
    sid = await _session(client)
    before = await _messages(client, sid)
    url = f"/session/{sid}/message"
    if isinstance(body, bytes):
        response = await client.post(url, data=body, headers=JSON)
    else:
        response = await client.post(url, json=body)
    await _refused(response, field)
    assert await _messages(client, sid) == before
    assert fake.requests == []  # no turn started
    # The session still takes a message.
    fake.enqueue(Reply(text="fine"))
    ok = await client.post(url, json={"content": "hi"})
    assert ok.status == 200 and (await ok.text()).rstrip().endswith("data: [DONE]")
    assert len(await _messages(client, sid)) == len(before) + 2


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_does_not_decompress_is_400(client: Any, encoding: str) -> None:
    before = await _sessions(client)
    # aiohttp closes the connection after a body it could not parse (without saying so in the
    # response): keep the client from reusing it.
    headers = {**JSON, "Content-Encoding": encoding, "Connection": "close"}
    await _refused(await client.post("/session", data=b"not compressed", headers=headers), "body")
    assert await _sessions(client) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"title": "a\x00b"}, "title", id="nul-title"),
        pytest.param({"system": "\x00"}, "system", id="nul-system"),
        pytest.param({"title": "ok", "extra": {"k\x00": 1}}, "extra", id="nul-key"),
        pytest.param({"title": "ok", "extra": ["fine", ["\x00"]]}, "extra.1.0", id="nul-nested"),
        pytest.param(b'{"title": "\\ud800"}', "title", id="lone-surrogate"),
    ],
)
async def test_hostile_session_text_is_400_and_nothing_is_stored(
    client: Any, body: Any, field: str
) -> None:
    sid = await _session(client)
    before = await _sessions(client)
    for method, url in (("POST", "/session"), ("PATCH", f"/session/{sid}")):
        if isinstance(body, bytes):
            response = await client.request(method, url, data=body, headers=JSON)
        else:
            response = await client.request(method, url, json=body)
        await _refused(response, field)
    assert await _sessions(client) == before
    assert (await (await client.get(f"/session/{sid}")).json())["title"] == "kept"


async def test_nul_in_a_question_reply_is_400_and_the_question_stays_pending(
    client: Any, fake: FakeLLMServer
) -> None:
    fake.enqueue(Reply(tool_calls=[ToolCall("question", QUESTIONS, id="q1")]), Reply(text="ok"))
    sid = await _session(client)
    turn = await client.post(f"/session/{sid}/message", json={"content": "ask me"})
    while (frame := await read_frame(turn)).get("event") != "question":
        pass
    question_id = json.loads(frame["data"])["question_id"]
    url = f"/question/{question_id}/reply"
    for body, field in (
        ({"answers": [["Red", "Bl\x00ue"]]}, "answers.0.1"),
        ({"answers": [["\x00"]]}, "answers.0.0"),
    ):
        await _refused(await client.post(url, json=body), field)
    await _refused(await client.post(url, data=DEEP, headers=JSON), "body")
    pending = await (await client.get(f"/question?session_id={sid}")).json()
    assert [q["id"] for q in pending] == [question_id]

    assert await (await client.post(url, json={"answers": [["Red"]]})).json() == {"success": True}
    body = await turn.text()
    assert '"stop_reason":"stop"' in body and body.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize(
    "path",
    ["/event?session_id=%00", "/question?session_id=ses_%00", "/session?limit=1&x%00=1"],
)
async def test_nul_in_a_query_is_422(client: Any, path: str) -> None:
    """As any query parameter that fails validation."""
    response = await client.get(path)
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["type"] == "invalid_request"
    assert error["field"] in {"session_id", "query"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/session/%00/stream"),
        ("POST", "/session/ses_%00/message"),
        ("GET", "/session/%00"),
        ("GET", "/session/ses_%00/message"),
        ("POST", "/question/que_%00/reject"),
    ],
)
async def test_nul_in_a_path_id_is_not_found(client: Any, method: str, path: str) -> None:
    """No stored id holds a NUL: 404 on every store (PostgreSQL is not asked, it would fail)."""
    response = await client.request(method, path, json={"content": "hi"})
    assert response.status == 404
    assert (await response.json())["error"]["type"] == "not_found"
