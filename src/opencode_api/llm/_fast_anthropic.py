"""Anthropic Messages on the fast path: request shaping from OpenAI format, and its SSE parser."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from opencode_api.llm import _token_count
from opencode_api.llm._errors import ProviderUnavailableError
from opencode_api.llm._model_map import anthropic_max_tokens
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

DEFAULT_API_BASE = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


def default_max_tokens(model: str) -> int:
    """Anthropic requires ``max_tokens``; send the model's maximum, as LiteLLM does."""
    return anthropic_max_tokens(model)


def messages_url(api_base: str) -> str:
    base = api_base.rstrip("/")
    if base.endswith("/v1/messages"):
        return base
    if base.endswith("/v1"):
        return f"{base}/messages"
    return f"{base}/v1/messages"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return "" if content is None else str(content)


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content or []:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part["image_url"]
            url = image["url"] if isinstance(image, dict) else image
            media = image.get("format") if isinstance(image, dict) else None
            block = "document" if media == "application/pdf" else "image"
            blocks.append({"type": block, "source": _source(url)})
        elif kind == "file":
            # OpenAI's file part (a PDF as a data: URI), as LiteLLM converts it.
            data = (part.get("file") or {}).get("file_data") or ""
            blocks.append({"type": "document", "source": _source(data)})
    return blocks


def _source(url: str) -> dict[str, Any]:
    """An Anthropic content source: base64 from a data: URI, else the URL itself."""
    if url.startswith("data:") and ";base64," in url:
        media, data = url[5:].split(";base64,", 1)
        return {"type": "base64", "media_type": media, "data": data}
    return {"type": "url", "url": url}


def convert_messages(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """OpenAI chat messages -> (Anthropic system prompt, Messages API messages).

    System messages move to ``system``; assistant tool calls become ``tool_use`` blocks; tool
    results become ``tool_result`` blocks of a user message; consecutive same-role turns merge,
    because Anthropic requires alternating roles.
    """
    system_parts: list[str] = []
    converted: list[dict[str, Any]] = []

    def append(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if converted and converted[-1]["role"] == role:
            converted[-1]["content"].extend(blocks)
        else:
            converted.append({"role": role, "content": blocks})

    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system_parts.append(_text_of(message.get("content")))
        elif role == "user":
            append("user", _content_blocks(message.get("content")))
        elif role == "assistant":
            blocks = _content_blocks(message.get("content"))
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    arguments = {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": arguments if isinstance(arguments, dict) else {},
                    }
                )
            append("assistant", blocks)
        elif role == "tool":
            append(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": message.get("tool_call_id", ""),
                        "content": _text_of(message.get("content")),
                    }
                ],
            )
    system = "\n\n".join(part for part in system_parts if part) or None
    return system, converted


_converted_tools: tuple[object, list[dict[str, Any]]] | None = None


def convert_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-format schemas in Anthropic's format; the runtime's one list is converted once
    (and the same result then reuses its encoded JSON: ``encode_body``)."""
    global _converted_tools
    cached = _converted_tools
    if cached is not None and cached[0] is tools:
        return cached[1]
    converted = _convert_tools(tools)
    _converted_tools = (tools, converted)
    return converted


def _convert_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    converted = []
    for tool in tools:
        function = tool.get("function", tool)
        entry: dict[str, Any] = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            entry["description"] = function["description"]
        converted.append(entry)
    return converted


def shape_request(
    request: LLMRequest, model: str, settings: Settings, *, stream: bool = True
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(url, headers, JSON body) of a Messages API call, streamed or not."""
    api_base = request.api_base or settings.anthropic_api_base or DEFAULT_API_BASE
    api_key = request.api_key or (
        settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
    )
    system, messages = convert_messages(request.messages)
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": request.max_tokens or default_max_tokens(model),
        "stream": stream,
    }
    if system:
        body["system"] = system
    if request.tools:
        body["tools"] = convert_tools(request.tools)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    body.update(request.extra)
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
        "anthropic-version": ANTHROPIC_VERSION,
    }
    if api_key:
        headers["x-api-key"] = api_key
    return messages_url(api_base), headers, body


def completion_text(answer: Any) -> str:
    """The text of a non-streamed answer: its ``text`` content blocks, joined."""
    blocks = answer.get("content") if isinstance(answer, dict) else None
    if not isinstance(blocks, list):
        return ""
    texts = (block for block in blocks if isinstance(block, dict) and block.get("type") == "text")
    return "".join(block["text"] for block in texts if isinstance(block.get("text"), str))


async def _reasoning_tokens(reported: Any, reasoning: list[str], output_tokens: int) -> int:
    """Anthropic rarely reports thinking tokens: estimate them from the text, as LiteLLM does
    (the tokenizer loads in a thread the first time)."""
    if isinstance(reported, int):
        return min(max(0, reported), output_tokens)
    if not reasoning:
        return 0
    await _token_count.load_encoding()
    counted = _token_count.count_tokens("".join(reasoning))
    return max(0, min(counted, output_tokens))


async def parse_events(
    content: aiohttp.StreamReader, provider: str, watchdog: StreamWatchdog
) -> AsyncIterator[StreamEvent]:
    """Messages API SSE -> events; tool calls are keyed by their content block index."""
    tools = ToolCallAssembler()
    tool_blocks: dict[int, int] = {}
    reasoning: list[str] = []
    finish: str | None = None
    start_usage: dict[str, Any] = {}
    output_tokens = 0
    thinking_reported: Any = None
    batch = DeltaBatch()
    done = False
    async for payloads in sse_data_blocks(content, watchdog):
        for data in payloads:
            event = orjson.loads(data)
            kind = event.get("type")
            if kind == "content_block_delta":
                delta = event["delta"]
                delta_kind = delta.get("type")
                if delta_kind == "text_delta":
                    if delta["text"]:
                        batch.text(delta["text"])
                elif delta_kind == "thinking_delta":
                    if delta["thinking"]:
                        reasoning.append(delta["thinking"])
                        batch.reasoning(delta["thinking"])
                elif delta_kind == "input_json_delta":
                    index = tool_blocks.get(event.get("index", 0))
                    if index is not None and delta.get("partial_json"):
                        tools.add_arguments(index, delta["partial_json"])
            elif kind == "content_block_start":
                block = event.get("content_block") or {}
                if block.get("type") == "tool_use":
                    index = len(tool_blocks)
                    tool_blocks[event.get("index", 0)] = index
                    tools.start(index, block.get("id"), block.get("name"))
            elif kind == "message_start":
                start_usage = (event.get("message") or {}).get("usage") or {}
                output_tokens = start_usage.get("output_tokens") or 0
            elif kind == "message_delta":
                finish = (event.get("delta") or {}).get("stop_reason") or finish
                usage = event.get("usage") or {}
                output_tokens = usage.get("output_tokens", output_tokens) or 0
                for key in (
                    "input_tokens",
                    "cache_read_input_tokens",
                    "cache_creation_input_tokens",
                ):
                    if usage.get(key) is not None:
                        start_usage[key] = usage[key]
                details = usage.get("output_tokens_details")
                if isinstance(details, dict):
                    thinking_reported = details.get("thinking_tokens")
            elif kind == "message_stop":
                done = True
                break
            elif kind == "error":
                # An error after the stream began: LiteLLM reports every one as a broken stream.
                for pending in batch.take():
                    yield pending
                raise ProviderUnavailableError(
                    error_message_from_body(data.decode()), provider=provider
                )
        for pending in batch.take():
            yield pending
        if done:
            break
    cache_read = start_usage.get("cache_read_input_tokens") or 0
    cache_write = start_usage.get("cache_creation_input_tokens") or 0
    usage_event = Usage(
        input_tokens=(start_usage.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=output_tokens,
        reasoning_tokens=await _reasoning_tokens(thinking_reported, reasoning, output_tokens),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
    for final in final_events(tools, finish, usage_event):
        yield final
