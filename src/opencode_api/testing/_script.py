"""Reply scripts for the fake providers: what the fake model says, how fast, and how it fails."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_WORD = re.compile(r"\S+\s*|\s+")


def split_words(text: str) -> tuple[str, ...]:
    """Split text into word chunks keeping trailing whitespace (``"a b"`` -> ``a ``, ``b``)."""
    return tuple(_WORD.findall(text))


def _chunks(value: str | Sequence[str]) -> tuple[str, ...]:
    return split_words(value) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage in OpenAI terms: ``prompt_tokens`` includes cached (read and written) ones."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the fake model makes; its arguments are streamed in ``fragments`` pieces."""

    name: str
    arguments: str | dict[str, Any] = "{}"
    id: str | None = None
    fragments: int = 3

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)

    def argument_fragments(self) -> list[str]:
        args = self.arguments_json
        count = max(1, min(self.fragments, len(args)))
        size = -(-len(args) // count) if args else 1
        return [args[i : i + size] for i in range(0, len(args), size)] or [""]


@dataclass(frozen=True)
class Reply:
    """One scripted answer of the fake model.

    ``text`` and ``reasoning`` are chunk lists (a plain string is split into words). An error reply
    (``status`` >= 400) answers with the provider's error JSON and optional ``Retry-After``.
    ``drop_after`` closes the connection after that many streamed chunks; ``hang_after`` stops
    sending after that many chunks until the client goes away; ``error_event_after`` streams an
    in-band error event after that many chunks. ``ttft``/``token_delay`` override the server's
    defaults (seconds). ``usage`` ``None`` means: computed from the request and the reply.
    ``received`` is set when a request takes this reply; ``hold``: the answer (streamed or not)
    is sent only once that event is set. ``echo_files``: the text is what files the request held.
    """

    text: str | Sequence[str] = ()
    reasoning: str | Sequence[str] = ()
    tool_calls: Sequence[ToolCall] = ()
    usage: Usage | None = None
    finish_reason: str | None = None
    status: int = 200
    error_type: str | None = None
    error_message: str = "scripted error"
    retry_after: float | str | None = None
    drop_after: int | None = None
    hang_after: int | None = None
    error_event_after: int | None = None
    ttft: float | None = None
    token_delay: float | None = None
    model: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    received: asyncio.Event | None = None
    hold: asyncio.Event | None = None
    # Answer with the JSON list of the image and document parts received (``received_files``).
    echo_files: bool = False

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "scripted error",
        *,
        error_type: str | None = None,
        retry_after: float | str | None = None,
    ) -> Reply:
        return cls(
            status=status, error_message=message, error_type=error_type, retry_after=retry_after
        )

    @property
    def text_chunks(self) -> tuple[str, ...]:
        return _chunks(self.text)

    @property
    def reasoning_chunks(self) -> tuple[str, ...]:
        return _chunks(self.reasoning)

    @property
    def finish(self) -> str:
        """The OpenAI finish reason (``stop``, ``tool_calls``, ``length``, ``content_filter``)."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    def tool_call_id(self, index: int) -> str:
        call = self.tool_calls[index]
        return call.id if call.id is not None else f"call_{index}_{call.name}"

    def resolved_usage(self, body: dict[str, Any]) -> Usage:
        """The scripted usage, or one derived deterministically from the request and reply."""
        if self.usage is not None:
            return self.usage
        prompt = max(1, len(json.dumps(body.get("messages", []))) // 4)
        completion = len(self.text_chunks) + len(self.reasoning_chunks)
        completion += sum(len(call.argument_fragments()) for call in self.tool_calls)
        return Usage(prompt_tokens=prompt, completion_tokens=max(1, completion))


def default_reply(tokens: int) -> Reply:
    """The reply used when the queue is empty: ``tokens`` word chunks."""
    return Reply(text=tuple(f"tok{i} " for i in range(tokens)))
