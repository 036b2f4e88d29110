"""Images and PDFs through the fast paths and LiteLLM (API.md "Richer input and output"): the
context's OpenAI content parts reach each fake provider in its own wire shape, and the provider
receives the same thing whichever path sent it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from opencode_api.actors._context import build_context
from opencode_api.llm._fast_client import FastLLMClient
from opencode_api.llm._litellm_client import LiteLLMClient
from opencode_api.llm._protocol import LLMRequest, TextDelta
from opencode_api.store import FileData, Message, Part
from opencode_api.testing import (
    FakeAnthropicServer,
    FakeLLMServer,
    FakeProviderServer,
    Reply,
    received_files,
)

MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
PDF = b"%PDF-1.4\n%fake\n" + b"x" * 30
PNG64 = base64.b64encode(PNG).decode()
PDF64 = base64.b64encode(PDF).decode()
URL = "https://93.184.215.14/cat.jpg"


@pytest.fixture(params=list(MODELS))
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeProviderServer]:
    server: FakeProviderServer = (
        FakeLLMServer() if request.param == "openai" else FakeAnthropicServer()
    )
    async with server:
        yield server


def _file_part(mime: str, **meta: Any) -> Part:
    return Part(
        id="prt_1",
        message_id="msg_1",
        session_id="ses_1",
        type="file",
        content=meta.pop("filename", None),
        metadata={"mime": mime, **meta},
    )


def _context(*parts: Part) -> list[dict[str, Any]]:
    user = Message(
        id="msg_1", session_id="ses_1", role="user", content="what is this?", parts=list(parts)
    )
    files = {
        "fil_png": FileData(
            id="fil_png", session_id="ses_1", mime="image/png", size=48, data=PNG64
        ),
        "fil_pdf": FileData(
            id="fil_pdf", session_id="ses_1", mime="application/pdf", size=len(PDF), data=PDF64
        ),
    }
    return build_context(None, [user], files=files)


def test_context_uses_openai_content_parts() -> None:
    messages = _context(
        _file_part("image/png", file_id="fil_png"),
        _file_part("application/pdf", file_id="fil_pdf", filename="a.pdf"),
        _file_part("image/jpeg", url=URL),
        _file_part("image/png", file_id="fil_gone", filename="gone.png"),
    )
    assert messages[1]["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG64}"}},
        {
            "type": "file",
            "file": {"file_data": f"data:application/pdf;base64,{PDF64}", "filename": "a.pdf"},
        },
        {"type": "image_url", "image_url": {"url": URL}},
        {"type": "text", "text": "[attached file gone.png is no longer available]"},
    ]


async def _send(
    client: FastLLMClient | LiteLLMClient, fake: FakeProviderServer, parts: list[Part]
) -> str:
    model = MODELS["anthropic" if isinstance(fake, FakeAnthropicServer) else "openai"]
    fake.enqueue(Reply(echo_files=True))
    request = LLMRequest(
        model=model, messages=_context(*parts), api_base=fake.base_url, api_key="sk-test"
    )
    text: list[str] = []
    stream = client.stream(request)
    try:
        async for event in stream:
            if isinstance(event, TextDelta):
                text.append(event.text)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return "".join(text)


CASES = {
    "png_data": [_file_part("image/png", file_id="fil_png")],
    "image_url": [_file_part("image/jpeg", url=URL)],
    "pdf_data": [_file_part("application/pdf", file_id="fil_pdf", filename="a.pdf")],
    "two_images": [_file_part("image/png", file_id="fil_png"), _file_part("image/jpeg", url=URL)],
}


@pytest.mark.parametrize("case", list(CASES))
async def test_same_files_reach_the_provider(
    case: str,
    fake: FakeProviderServer,
    fast_client: FastLLMClient,
    litellm_client: LiteLLMClient,
) -> None:
    parts = CASES[case]
    echoed_litellm = await _send(litellm_client, fake, parts)
    via_litellm = fake.requests[-1]
    echoed_fast = await _send(fast_client, fake, parts)
    via_fast = fake.requests[-1]
    # The same user message, block for block, in the provider's own shape.
    assert via_fast["messages"][-1] == via_litellm["messages"][-1]
    assert echoed_fast == echoed_litellm
    files = received_files(via_fast)
    expected = {
        "png_data": [{"kind": "image", "media_type": "image/png", "bytes": len(PNG), "url": None}],
        "image_url": [{"kind": "image", "media_type": None, "bytes": None, "url": URL}],
        "pdf_data": [
            {"kind": "document", "media_type": "application/pdf", "bytes": len(PDF), "url": None}
        ],
    }
    if case in expected:
        assert files == expected[case]
    else:
        assert [f["kind"] for f in files] == ["image", "image"]
    content = via_fast["messages"][-1]["content"]
    kinds = {block["type"] for block in content}
    if isinstance(fake, FakeAnthropicServer):
        assert kinds <= {"text", "image", "document"}
    else:
        assert kinds <= {"text", "image_url", "file"}


async def test_pdf_by_url_is_a_document_for_anthropic(
    anthropic_fake: FakeAnthropicServer,
    fast_client: FastLLMClient,
    litellm_client: LiteLLMClient,
) -> None:
    parts = [_file_part("application/pdf", url="https://93.184.215.14/a.pdf")]
    await _send(litellm_client, anthropic_fake, parts)
    via_litellm = anthropic_fake.requests[-1]
    await _send(fast_client, anthropic_fake, parts)
    via_fast = anthropic_fake.requests[-1]
    assert via_fast["messages"][-1] == via_litellm["messages"][-1]
    assert received_files(via_fast) == [
        {"kind": "document", "media_type": None, "bytes": None, "url": parts[0].metadata["url"]}
    ]
