"""The fast parsers merge deltas per network read: one event per read under load, per token when
tokens arrive one at a time, and never across a change of kind or a tool call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp.base_protocol import BaseProtocol

from opencode_api.llm import _fast_anthropic, _fast_openai
from opencode_api.llm._protocol import (
    ReasoningDelta,
    StreamEvent,
    StreamFinish,
    TextDelta,
    ToolCallRequest,
)
from opencode_api.llm._stream_events import DeltaBatch
from opencode_api.llm._stream_watchdog import StreamWatchdog


def _reader() -> aiohttp.StreamReader:
    loop = asyncio.get_running_loop()
    return aiohttp.StreamReader(BaseProtocol(loop), 2**16, loop=loop)


def _unwatched() -> StreamWatchdog:
    return StreamWatchdog(None, idle=None, total=None)


def _openai(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _anthropic(kind: str, **fields: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


def _text_delta(text: str) -> bytes:
    return _anthropic("content_block_delta", index=0, delta={"type": "text_delta", "text": text})


async def test_openai_one_event_per_read() -> None:
    reader = _reader()
    events: AsyncIterator[StreamEvent] = _fast_openai.parse_events(reader, "openai", _unwatched())
    reader.feed_data(_openai({"role": "assistant", "content": "a"}))
    assert await anext(events) == TextDelta("a")  # alone in its read: streamed as it came
    reader.feed_data(
        _openai({"content": "b"}) + _openai({"content": "c"}) + _openai({"content": "d"})
    )
    assert await anext(events) == TextDelta("bcd")  # three chunks read together: one event
    reader.feed_data(_openai({}, finish="stop") + b"data: [DONE]\n\n")
    reader.feed_eof()
    assert [event async for event in events][:1] == [StreamFinish("stop")]


async def test_openai_kinds_and_tool_calls_keep_their_order() -> None:
    reader = _reader()
    call = {"index": 0, "id": "call_1", "function": {"name": "todoread", "arguments": "{}"}}
    reader.feed_data(
        _openai({"reasoning_content": "think "})
        + _openai({"reasoning_content": "more"})
        + _openai({"content": "x"})
        + _openai({"content": "y"})
        + _openai({"reasoning_content": "again"})
        + _openai({"tool_calls": [call]}, finish="tool_calls")
        + b"data: [DONE]\n\n"
    )
    reader.feed_eof()
    events = [event async for event in _fast_openai.parse_events(reader, "openai", _unwatched())]
    assert events[:4] == [
        ReasoningDelta("think more"),
        TextDelta("xy"),
        ReasoningDelta("again"),
        ToolCallRequest("call_1", "todoread", "{}"),
    ]
    assert events[4] == StreamFinish("tool_calls")


async def test_anthropic_one_event_per_read() -> None:
    reader = _reader()
    events = _fast_anthropic.parse_events(reader, "anthropic", _unwatched())
    reader.feed_data(
        _anthropic("message_start", message={"usage": {"input_tokens": 3, "output_tokens": 1}})
        + _anthropic("content_block_start", index=0, content_block={"type": "text", "text": ""})
        + _text_delta("one ")
    )
    assert await anext(events) == TextDelta("one ")
    reader.feed_data(_text_delta("two ") + _text_delta("three"))
    assert await anext(events) == TextDelta("two three")
    reader.feed_data(
        _anthropic("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 3})
        + _anthropic("message_stop")
    )
    reader.feed_eof()
    assert [event async for event in events][:1] == [StreamFinish("stop")]


def test_delta_batch_is_empty_after_take() -> None:
    batch = DeltaBatch()
    batch.text("a")
    batch.text("b")
    assert batch.take() == [TextDelta("ab")]
    assert batch.take() == []


def test_request_body_encodes_the_shared_tools_once() -> None:
    from opencode_api.llm._fast_client import encode_body

    tools = [{"type": "function", "function": {"name": "todoread", "parameters": {}}}]
    body = {"model": "m", "messages": [{"role": "user", "content": 'hé "x"'}], "tools": tools}
    assert json.loads(encode_body(body)) == body
    again = {**body, "messages": [{"role": "user", "content": "next"}]}
    assert json.loads(encode_body(again)) == again  # the cached tools, a new rest
    more = [*tools, {"type": "function", "function": {"name": "other", "parameters": {}}}]
    other = {**body, "tools": more}  # another list: encoded anew
    assert json.loads(encode_body(other)) == other
    assert json.loads(encode_body({"model": "m"})) == {"model": "m"}
