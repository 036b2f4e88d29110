"""OpenAI Chat Completions on the fast path: request shaping and the per-chunk SSE parser."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from opencode_api.llm._errors import ProviderUnavailableError
from opencode_api.llm._protocol import LLMRequest, StreamEvent
from opencode_api.llm._provider_errors import error_message_from_body
from opencode_api.llm._stream_events import (
    DeltaBatch,
    ToolCallAssembler,
    final_events,
    sse_data_blocks,
)
from opencode_api.llm._stream_watchdog import StreamWatchdog
from opencode_api.settings import Settings
from opencode_api.usage import Usage

DEFAULT_API_BASE = "https://api.openai.com/v1"
# Reasoning models take max_completion_tokens and only the default temperature (as LiteLLM sends).
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")


def shape_request(
    request: LLMRequest, model: str, settings: Settings, *, stream: bool = True
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(url, headers, JSON body) of a Chat Completions call, streamed with usage or not."""
    api_base = request.api_base or settings.openai_api_base or DEFAULT_API_BASE
    api_key = request.api_key or (
        settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    )
    body: dict[str, Any] = {"model": model, "messages": request.messages, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if request.tools:
        body["tools"] = request.tools
    reasoning_model = _REASONING_MODEL.match(model) is not None
    if request.temperature is not None and not (reasoning_model and request.temperature != 1):
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body["max_completion_tokens" if reasoning_model else "max_tokens"] = request.max_tokens
    body.update(request.extra)
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return f"{api_base.rstrip('/')}/chat/completions", headers, body


def usage_from_openai(usage: dict[str, Any]) -> Usage:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=usage.get("prompt_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
        reasoning_tokens=completion_details.get("reasoning_tokens") or 0,
        cache_read_tokens=prompt_details.get("cached_tokens")
        or usage.get("cache_read_input_tokens")
        or 0,
        cache_write_tokens=usage.get("cache_creation_input_tokens")
        or prompt_details.get("cache_creation_tokens")
        or 0,
    )


def completion_text(answer: Any) -> str:
    """The text of a non-streamed answer: ``choices[0].message.content``."""
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not choices or not isinstance(choices[0], dict):
        return ""
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else ""


async def parse_events(
    content: aiohttp.StreamReader, provider: str, watchdog: StreamWatchdog
) -> AsyncIterator[StreamEvent]:
    """Chat Completions SSE -> events. The hot loop: one ``json.loads`` and a few lookups."""
    tools = ToolCallAssembler()
    batch = DeltaBatch()
    finish: str | None = None
    usage: Usage | None = None
    done = False
    async for payloads in sse_data_blocks(content, watchdog):
        for data in payloads:
            if data == b"[DONE]":
                done = True
                break
            chunk = orjson.loads(data)
            if "error" in chunk:
                for event in batch.take():
                    yield event
                raise ProviderUnavailableError(
                    error_message_from_body(data.decode()), provider=provider
                )
            raw_usage = chunk.get("usage")
            if raw_usage:
                usage = usage_from_openai(raw_usage)
            choices = chunk.get("choices")
            if not choices:
                continue
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if reasoning:
                    batch.reasoning(reasoning)
                text = delta.get("content")
                if text:
                    batch.text(text)
                calls = delta.get("tool_calls")
                if calls:
                    for call in calls:
                        index = call.get("index", 0)
                        function = call.get("function") or {}
                        if call.get("id") or function.get("name"):
                            tools.start(index, call.get("id"), function.get("name"))
                        arguments = function.get("arguments")
                        if arguments:
                            tools.add_arguments(index, arguments)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        for event in batch.take():
            yield event
        if done:
            break
    for event in final_events(tools, finish, usage):
        yield event
