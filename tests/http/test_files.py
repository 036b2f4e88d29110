"""Images and files over HTTP (API.md "Richer input and output"): an image message reaches the
provider in its own shape (fast OpenAI and Anthropic paths, LiteLLM), is stored as a ``file``
part listed without its bytes, and is kept by a regenerate; what is refused (a data URI lying
about its type, oversize input, a private address, a model without vision) is a clear 4xx with
nothing stored."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from opencode_api.actors import TurnRequest, UnsupportedInputError
from opencode_api.inputs import FileInput, TextInput
from opencode_api.testing import FakeAnthropicServer, FakeLLMServer, Reply, received_files
from tests.http.conftest import close_runtime, open_runtime, parse_sse

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
JPEG = b"\xff\xd8\xff\xe0" + bytes(100)
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()
JPEG_URI = "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()
IMAGE = {"type": "file", "mime": "image/png", "data": PNG_URI, "filename": "dot.png"}
PUBLIC_URL = "https://93.184.215.14/cat.jpg"


async def _session(client: Any, **body: Any) -> str:
    return str((await (await client.post("/session", json=body)).json())["id"])


async def _turn(
    client: Any, sid: str, body: dict[str, Any], path: str = ""
) -> list[dict[str, Any]]:
    response = await client.post(path or f"/session/{sid}/message", json=body)
    assert response.status == 200, await response.text()
    frames = parse_sse(await response.text())
    return [json.loads(f["data"]) for f in frames if f.get("data", "[DONE]") != "[DONE]"]


async def _messages(client: Any, sid: str) -> list[dict[str, Any]]:
    response = await client.get(f"/session/{sid}/message")
    assert response.status == 200
    return list((await response.json())["messages"])


def _echoed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    text = "".join(e["text"] for e in events if e["type"] == "text")
    return list(json.loads(text))


@pytest.mark.parametrize("fast_path", ["auto", "off"])
async def test_image_message_reaches_openai_and_is_stored_without_its_bytes(
    make_client: Any, fake: FakeLLMServer, fast_path: str
) -> None:
    client = await make_client(auto_title=False, llm_fast_path=fast_path)
    sid = await _session(client)
    fake.enqueue(Reply(echo_files=True))
    events = await _turn(client, sid, {"content": "What is this?", "parts": [IMAGE]})
    assert events[-1]["type"] == "done", events[-1]
    assert _echoed(events) == [
        {"kind": "image", "media_type": "image/png", "bytes": len(PNG), "url": None}
    ]
    user = fake.requests[-1]["messages"][-1]
    assert user["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG_URI}},
    ]

    response = await client.get(f"/session/{sid}/message")
    raw = await response.text()
    assert base64.b64encode(PNG).decode() not in raw  # listed without the bytes
    question = (await response.json())["messages"][0]
    assert question["content"] == "What is this?"
    [part] = question["parts"]
    assert part["type"] == "file" and part["content"] == "dot.png"
    meta = part["metadata"]
    assert (meta["mime"], meta["size"], meta["filename"]) == ("image/png", len(PNG), "dot.png")
    served = await client.get(f"/session/{sid}/file/{meta['file_id']}")
    assert served.status == 200 and served.content_type == "image/png"
    assert await served.read() == PNG
    assert (await client.get(f"/session/{sid}/file/fil_nope")).status == 404


@pytest.fixture
async def anthropic() -> AsyncIterator[FakeAnthropicServer]:
    async with FakeAnthropicServer() as server:
        yield server


@pytest.mark.parametrize("fast_path", ["auto", "off"])
async def test_image_message_reaches_anthropic_as_an_image_block(
    make_client: Any, anthropic: FakeAnthropicServer, fast_path: str
) -> None:
    client = await make_client(
        auto_title=False,
        llm_fast_path=fast_path,
        anthropic_api_base=anthropic.base_url,
        anthropic_api_key="sk-ant-test",
    )
    sid = await _session(client, model_id="anthropic/claude-haiku-4-5")
    anthropic.enqueue(Reply(echo_files=True))
    parts = [
        {"type": "text", "text": "Compare:"},
        IMAGE,
        {"type": "file", "mime": "image/jpeg", "url": PUBLIC_URL},
    ]
    events = await _turn(client, sid, {"parts": parts})
    assert events[-1]["type"] == "done", events[-1]
    user = anthropic.requests[-1]["messages"][-1]
    assert user["content"] == [
        {"type": "text", "text": "Compare:"},
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": "image/png",
                "data": base64.b64encode(PNG).decode(),
            },
        },
        {"type": "image", "source": {"type": "url", "url": PUBLIC_URL}},
    ]
    assert [f["kind"] for f in _echoed(events)] == ["image", "image"]


async def test_regenerate_keeps_the_files(make_client: Any, fake: FakeLLMServer) -> None:
    client = await make_client(auto_title=False)
    sid = await _session(client)
    await _turn(client, sid, {"content": "What is this?", "parts": [IMAGE]})
    question = (await _messages(client, sid))[0]
    fake.enqueue(Reply(echo_files=True))
    path = f"/session/{sid}/message/{question['id']}/regenerate"
    events = await _turn(client, sid, {"content": "And now?"}, path)
    assert [f["bytes"] for f in _echoed(events)] == [len(PNG)]
    messages = await _messages(client, sid)
    assert [m["content"] for m in messages if m["role"] == "user"] == ["And now?"]
    [part] = messages[0]["parts"]
    assert part["metadata"]["file_id"] == question["parts"][0]["metadata"]["file_id"]


async def _refused(
    client: Any, fake: Any, sid: str, body: dict[str, Any], status: int
) -> dict[str, Any]:
    sent = len(fake.requests)
    response = await client.post(f"/session/{sid}/message", json=body)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    assert await _messages(client, sid) == []  # nothing stored
    assert len(fake.requests) == sent  # nothing sent
    return dict((await response.json())["error"])


LIES = {
    "bytes_are_jpeg": (
        {"mime": "image/png", "data": JPEG_URI.replace("image/jpeg", "image/png")},
        "data",
    ),
    "uri_says_jpeg": ({"mime": "image/png", "data": JPEG_URI}, "data"),
    "not_base64": ({"mime": "image/png", "data": "data:image/png;base64,@@@@"}, "data"),
    "not_an_image": (
        {"mime": "image/svg+xml", "data": "data:image/svg+xml;base64,PHN2Zz4="},
        "mime",
    ),
    "private_url": ({"mime": "image/png", "url": "https://127.0.0.1/a.png"}, "url"),
    "private_net": ({"mime": "image/png", "url": "https://10.1.2.3/a.png"}, "url"),
    "localhost_name": ({"mime": "image/png", "url": "https://localhost/a.png"}, "url"),
    "metadata_ip": ({"mime": "image/png", "url": "https://169.254.169.254/a.png"}, "url"),
    "http_url": ({"mime": "image/png", "url": "http://93.184.215.14/a.png"}, "url"),
}


@pytest.mark.parametrize("case", list(LIES))
async def test_bad_files_are_refused_naming_the_field(
    make_client: Any, fake: FakeLLMServer, case: str
) -> None:
    client = await make_client(auto_title=False)
    sid = await _session(client)
    part, field = LIES[case]
    body = {"content": "look", "parts": [{"type": "text", "text": "x"}, {"type": "file", **part}]}
    error = await _refused(client, fake, sid, body, 400)
    assert error["type"] == "invalid_request"
    assert error["field"] == f"parts.1.{field}"


async def test_a_30_mb_image_is_413(make_client: Any, fake: FakeLLMServer) -> None:
    client = await make_client(auto_title=False)
    sid = await _session(client)
    big = "data:image/png;base64," + base64.b64encode(PNG + bytes(30 * 1024 * 1024)).decode()
    body = {"parts": [{"type": "file", "mime": "image/png", "data": big}]}
    error = await _refused(client, fake, sid, body, 413)
    assert error["type"] == "payload_too_large"
    # Other routes keep CLIENT_MAX_SIZE.
    response = await client.post("/session", data=b'{"title": "' + b"x" * (5 << 20) + b'"}')
    assert response.status == 413


async def test_over_max_input_bytes_is_413(make_client: Any, fake: FakeLLMServer) -> None:
    client = await make_client(auto_title=False, max_input_bytes=100)
    sid = await _session(client)
    error = await _refused(client, fake, sid, {"parts": [IMAGE]}, 413)
    assert error["type"] == "payload_too_large" and error["limit"] == 100


async def test_a_model_without_vision_is_unsupported_input(
    make_client: Any, fake: FakeLLMServer
) -> None:
    client = await make_client(auto_title=False)
    sid = await _session(client)
    body = {"content": "look", "model_id": "openai/gpt-3.5-turbo", "parts": [IMAGE]}
    error = await _refused(client, fake, sid, body, 400)
    assert error["type"] == "unsupported_input"
    assert error["model"] == "openai/gpt-3.5-turbo" and "gpt-3.5-turbo" in error["message"]


async def test_a_pdf_by_url_to_openai_is_unsupported_input(
    make_client: Any, fake: FakeLLMServer
) -> None:
    client = await make_client(auto_title=False)
    sid = await _session(client)
    pdf = {"type": "file", "mime": "application/pdf", "url": "https://93.184.215.14/a.pdf"}
    error = await _refused(client, fake, sid, {"content": "read", "parts": [pdf]}, 400)
    assert error["type"] == "unsupported_input" and error["field"] == "parts.0.url"


async def test_embedded_runtime_takes_parts(make_settings: Any, fake: FakeLLMServer) -> None:
    runtime = await open_runtime(make_settings(auto_title=False))
    try:
        session = await runtime.create_session()
        fake.enqueue(Reply(echo_files=True))
        parts = (
            TextInput(type="text", text="see"),
            FileInput(type="file", mime="image/png", data=PNG_URI),
        )
        events = [e async for e in runtime.send_request(TurnRequest(session.id, "", parts=parts))]
        assert events[-1].type == "done"
        assert received_files(fake.requests[-1]) == [
            {"kind": "image", "media_type": "image/png", "bytes": len(PNG), "url": None}
        ]
        with pytest.raises(UnsupportedInputError):
            request = TurnRequest(session.id, "x", model="openai/gpt-3.5-turbo", parts=parts)
            await runtime.send_request(request).start()
    finally:
        await close_runtime(runtime)


async def test_a_fork_has_its_own_copies(make_client: Any, fake: FakeLLMServer) -> None:
    client = await make_client(auto_title=False)
    sid = await _session(client)
    await _turn(client, sid, {"content": "What is this?", "parts": [IMAGE]})
    file_id = (await _messages(client, sid))[0]["parts"][0]["metadata"]["file_id"]
    fork = (await (await client.post(f"/session/{sid}/fork", json={})).json())["id"]
    assert (await client.delete(f"/session/{sid}")).status == 200
    assert (await client.get(f"/session/{sid}/file/{file_id}")).status == 404
    served = await client.get(f"/session/{fork}/file/{file_id}")
    assert served.status == 200 and await served.read() == PNG
    fake.enqueue(Reply(echo_files=True))
    events = await _turn(client, fork, {"content": "Still there?"})
    assert [f["bytes"] for f in _echoed(events)] == [len(PNG)]  # the history's image, re-sent
