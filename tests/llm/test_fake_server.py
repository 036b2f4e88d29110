"""The fake providers of opencode_api.testing, seen from a plain HTTP client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp

import opencode_api.testing as testing
from opencode_api.testing import FakeAnthropicServer, FakeLLMServer, Reply, ToolCall, Usage


def test_public_names() -> None:
    assert testing.__all__ == sorted(testing.__all__)
    assert set(testing.__all__) == {
        "FakeAnthropicServer",
        "FakeLLMServer",
        "FakeProviderServer",
        "Reply",
        "ToolCall",
        "Usage",
        "default_reply",
        "received_files",
        "split_words",
    }


async def _sse_data(response: aiohttp.ClientResponse) -> list[object]:
    payloads: list[object] = []
    async for line in response.content:
        if line.startswith(b"data: "):
            data = line[6:].strip()
            payloads.append("[DONE]" if data == b"[DONE]" else json.loads(data))
    return payloads


async def test_openai_stream_shape_and_recorded_request() -> None:
    async with FakeLLMServer() as fake, aiohttp.ClientSession() as http:
        fake.enqueue(
            Reply(
                text="hi you",
                tool_calls=[ToolCall("todoread", {"a": 1}, id="c1", fragments=2)],
                usage=Usage(9, 4, cached_tokens=2, reasoning_tokens=1),
            )
        )
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with http.post(f"{fake.base_url}/chat/completions", json=body) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            payloads = await _sse_data(response)
    assert fake.requests == [body]
    assert payloads[-1] == "[DONE]"
    usage_chunk = payloads[-2]
    assert isinstance(usage_chunk, dict) and usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens_details"] == {"cached_tokens": 2}
    assert usage_chunk["usage"]["completion_tokens_details"] == {"reasoning_tokens": 1}
    deltas = [p["choices"][0]["delta"] for p in payloads[1:-3] if isinstance(p, dict)]
    assert deltas[:2] == [{"content": "hi "}, {"content": "you"}]
    head = deltas[2]["tool_calls"][0]
    assert head == {
        "index": 0,
        "id": "c1",
        "type": "function",
        "function": {"name": "todoread", "arguments": ""},
    }
    fragments = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[3:]]
    assert len(fragments) == 2 and "".join(fragments) == '{"a": 1}'
    finish = payloads[-3]
    assert isinstance(finish, dict) and finish["choices"][0]["finish_reason"] == "tool_calls"


async def test_no_usage_chunk_without_include_usage() -> None:
    async with FakeLLMServer(tokens=3) as fake, aiohttp.ClientSession() as http:
        body = {"model": "m", "messages": [], "stream": True}
        async with http.post(f"{fake.base_url}/chat/completions", json=body) as response:
            payloads = await _sse_data(response)
    assert all(isinstance(p, str) or (isinstance(p, dict) and p["choices"]) for p in payloads)
    texts = [p["choices"][0]["delta"].get("content") for p in payloads[1:4] if isinstance(p, dict)]
    assert texts == ["tok0 ", "tok1 ", "tok2 "]


async def test_non_stream_and_error_replies() -> None:
    async with FakeLLMServer() as fake, aiohttp.ClientSession() as http:
        fake.enqueue(Reply(text="A title"), Reply.error(429, "later", retry_after=3))
        body = {"model": "m", "messages": []}
        async with http.post(f"{fake.base_url}/chat/completions", json=body) as response:
            data = await response.json()
        assert data["choices"][0]["message"]["content"] == "A title"
        assert data["usage"]["completion_tokens"] >= 1
        async with http.post(f"{fake.base_url}/chat/completions", json=body) as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "3"
            error = await response.json()
    assert error["error"]["message"] == "later"


async def test_anthropic_stream_events() -> None:
    async with FakeAnthropicServer() as fake, aiohttp.ClientSession() as http:
        fake.enqueue(
            Reply(
                reasoning="hmm",
                text="ok",
                tool_calls=[ToolCall("t", {"q": 1}, id="tu1")],
                usage=Usage(10, 5, cached_tokens=4, cache_write_tokens=1),
            )
        )
        body = {"model": "claude", "messages": [], "max_tokens": 10, "stream": True}
        async with http.post(f"{fake.base_url}/v1/messages", json=body) as response:
            events = await _sse_data(response)
    kinds = [e["type"] for e in events if isinstance(e, dict)]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    start = events[0]
    assert isinstance(start, dict)
    assert start["message"]["usage"]["input_tokens"] == 5
    assert start["message"]["usage"]["cache_read_input_tokens"] == 4
    deltas = [
        e["delta"]["type"]
        for e in events
        if isinstance(e, dict) and e["type"] == "content_block_delta"
    ]
    assert {"thinking_delta", "text_delta", "input_json_delta"} <= set(deltas)
    final = events[-2]
    assert isinstance(final, dict) and final["delta"]["stop_reason"] == "tool_use"


async def test_anthropic_non_stream() -> None:
    async with FakeAnthropicServer() as fake, aiohttp.ClientSession() as http:
        fake.enqueue(Reply(text="Summary."))
        body = {"model": "claude", "messages": [], "max_tokens": 10}
        async with http.post(f"{fake.base_url}/v1/messages", json=body) as response:
            data = await response.json()
    assert data["content"] == [{"type": "text", "text": "Summary."}]
    assert data["stop_reason"] == "end_turn"


async def test_client_disconnect_is_counted() -> None:
    async with FakeLLMServer() as fake, aiohttp.ClientSession() as http:
        fake.enqueue(Reply(text="a b c", hang_after=2))
        body = {"model": "m", "messages": [], "stream": True}
        response = await http.post(f"{fake.base_url}/chat/completions", json=body)
        await response.content.readline()
        response.close()
        async with asyncio.timeout(5):
            await fake.wait_for_disconnects(1)
        assert fake.disconnected.is_set()
        assert fake.disconnects == 1


def test_command_line_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "opencode_api.testing", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--anthropic" in result.stdout and "--token-delay" in result.stdout
