"""Service routes (health, OpenAPI, docs, metrics) and the JSON error shape for every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from opencode_api._version import __version__
from tests.http.conftest import ClientFactory


async def test_health(client: Any) -> None:
    response = await client.get("/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "version": __version__}
    assert response.headers["X-Request-ID"]


async def test_openapi_lists_every_route(client: Any) -> None:
    document = await (await client.get("/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    expected = {
        ("GET", "/session"),
        ("POST", "/session"),
        ("GET", "/session/{id}"),
        ("PATCH", "/session/{id}"),
        ("DELETE", "/session/{id}"),
        ("GET", "/session/{id}/message"),
        ("POST", "/session/{id}/message"),
        ("POST", "/session/{id}/abort"),
        ("POST", "/session/{id}/generate-title"),
        ("GET", "/session/{id}/cost"),
        ("POST", "/session/{id}/compact"),
        ("GET", "/session/{id}/compaction-status"),
        ("GET", "/session/{id}/todo"),
        ("GET", "/session/{id}/stream"),
        ("GET", "/question"),
        ("POST", "/question/{id}/reply"),
        ("POST", "/question/{id}/reject"),
        ("GET", "/provider"),
        ("GET", "/provider/{id}"),
        ("GET", "/provider/{id}/model"),
        ("GET", "/event"),
        ("GET", "/health"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("GET", "/metrics"),
    }
    assert expected <= operations
    schemas = document["components"]["schemas"]
    names = {"Session", "MessageRequest", "MessagePageOut", "SessionCost", "CompactionStatus"}
    assert names <= set(schemas)
    assert "stop_reason" in schemas["MessageOut"]["properties"]
    # content is required unless parts are given
    assert schemas["MessageRequest"]["anyOf"] == [
        {"required": ["content"]},
        {"required": ["parts"]},
    ]


async def test_docs_assets_are_served_locally(client: Any) -> None:
    page = await (await client.get("/docs")).text()
    assert "docs/static/swagger-ui-bundle.js" in page and "//cdn" not in page
    bundle = await client.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.status == 200
    redoc = await (await client.get("/redoc")).text()
    assert "redoc/redoc.standalone.js" in redoc
    script = await client.get("/redoc/redoc.standalone.js")
    assert script.status == 200 and len(await script.read()) > 100_000


async def test_metrics(client: Any) -> None:
    await client.post("/session")
    await client.get("/session/ses_missing")
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    for name in (
        "opencode_live_sessions",
        "opencode_busy_sessions",
        "opencode_mailbox_depth",
        "opencode_turns",
        "opencode_tokens",
        "opencode_cost_usd",
        "opencode_errors",
        "opencode_sse_subscribers",
        "opencode_http_request_duration_seconds_bucket",
    ):
        assert name in text
    assert 'route="/session/{id}"' in text


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error_type"),
    [
        ("GET", "/nowhere", None, 404, "not_found"),
        ("PUT", "/session", None, 405, "method_not_allowed"),
        ("GET", "/session/ses_nope", None, 404, "not_found"),
        ("PATCH", "/session/ses_nope", b"{}", 404, "not_found"),
        ("DELETE", "/session/ses_nope", None, 404, "not_found"),
        ("GET", "/session/ses_nope/message", None, 404, "not_found"),
        ("POST", "/session/ses_nope/abort", None, 404, "not_found"),
        ("GET", "/session/ses_nope/cost", None, 404, "not_found"),
        ("GET", "/session/ses_nope/todo", None, 404, "not_found"),
        ("GET", "/session/ses_nope/compaction-status", None, 404, "not_found"),
        ("POST", "/session/ses_nope/compact", None, 404, "not_found"),
        ("POST", "/session/ses_nope/generate-title", None, 404, "not_found"),
        ("GET", "/session/ses_nope/stream", None, 404, "not_found"),
        ("POST", "/session/ses_nope/message", b'{"content": "hi"}', 404, "not_found"),
        ("POST", "/question/que_nope/reject", None, 404, "not_found"),
        ("POST", "/question/que_nope/reply", b'{"answers": [["a"]]}', 404, "not_found"),
        ("GET", "/provider/nope", None, 404, "not_found"),
        ("GET", "/provider/nope/model", None, 404, "not_found"),
        ("POST", "/session", b"{not json", 400, "invalid_request"),
        ("POST", "/session", b"[1, 2]", 400, "invalid_request"),
        ("POST", "/session", b'{"title": 5}', 422, "invalid_request"),
        ("GET", "/session?limit=abc", None, 422, "invalid_request"),
        ("GET", "/session?offset=-1", None, 422, "invalid_request"),
        # Past the databases' 64-bit integers: a 422, not the store's OverflowError (a 500).
        ("GET", "/session?offset=21588442883563720704", None, 422, "invalid_request"),
        ("GET", "/session/ses_x/message?limit=99999999999999999999", None, 422, "invalid_request"),
        ("GET", "/session/ses_x/stream?after=99999999999999999999", None, 422, "invalid_request"),
        # A lone surrogate escape is valid JSON but not text (UTF-8 cannot encode it).
        ("POST", "/session", b'{"title": "\\udc00x"}', 400, "invalid_request"),
        ("PATCH", "/session/ses_x", b'{"title": "\\ud800"}', 400, "invalid_request"),
    ],
    ids=lambda value: str(value)[:30],
)
async def test_errors_are_json(
    client: Any, method: str, path: str, body: bytes | None, status: int, error_type: str
) -> None:
    response = await client.request(
        method, path, data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == status
    assert response.content_type == "application/json"
    payload = await response.json()
    assert payload["error"]["type"] == error_type
    assert payload["error"]["message"]


async def test_message_body_validation_names_the_field(client: Any) -> None:
    session = await (await client.post("/session")).json()
    url = f"/session/{session['id']}/message"
    for body, field in (
        ({}, "content"),
        ({"content": ""}, "content"),
        ({"content": " \n\t"}, "content"),
        ({"content": "x", "max_steps": 0}, "max_steps"),
        ({"content": "x", "temperature": "hot"}, "temperature"),
    ):
        response = await client.post(url, json=body)
        assert response.status == 422, body
        assert (await response.json())["error"]["field"] == field
    response = await client.post(url + "?busy=maybe", json={"content": "hi"})
    assert response.status == 422
    assert (await response.json())["error"]["field"] == "busy"
    response = await client.post(url, data=b"", headers={"Content-Type": "application/json"})
    assert response.status == 400


async def test_oversize_body_is_413(make_client: ClientFactory) -> None:
    client = await make_client(client_max_size=1024)
    response = await client.post("/session", data=b'{"title": "' + b"x" * 4096 + b'"}')
    assert response.status == 413
    assert (await response.json())["error"]["type"] == "payload_too_large"


async def test_cors(make_client: ClientFactory) -> None:
    client = await make_client(cors_origins="https://app.example", opencode_server_password="pw")
    preflight = await client.options(
        "/session",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    refused = await client.get("/session", headers={"Origin": "https://app.example"})
    assert refused.status == 401  # the preflight passes auth, the request itself does not
    assert refused.headers["Access-Control-Allow-Origin"] == "https://app.example"
    other = await client.get("/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_surrogate_pairs_are_text(client: Any) -> None:
    """An escaped surrogate pair (an emoji) is valid text; only lone surrogates are refused."""
    response = await client.post(
        "/session",
        data=b'{"title": "hi \\ud83d\\ude00"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 200
    assert (await response.json())["title"] == "hi \U0001f600"


@pytest.mark.parametrize("value", ["abc", "-1", "99999999999999999999"])
async def test_bad_last_event_id_is_400(client: Any, value: str) -> None:
    session = await (await client.post("/session")).json()
    response = await client.get(
        f"/session/{session['id']}/stream", headers={"Last-Event-ID": value}
    )
    assert response.status == 400
    body = await response.json()
    assert body["error"] == {
        "type": "invalid_request",
        "message": body["error"]["message"],
        "field": "Last-Event-ID",
    }


async def test_event_stream_heartbeats(make_client: ClientFactory) -> None:
    client = await make_client(sse_heartbeat=0.05)
    async with client.get("/event") as events:
        assert events.headers["Content-Type"].startswith("text/event-stream")
        seen = b""
        while b"server.connected" not in seen:
            seen += await events.content.readline()
        line = await events.content.readline()
        while line == b"\n":
            line = await events.content.readline()
        assert line == b": ping\n"  # a comment line, as EventSource ignores it
