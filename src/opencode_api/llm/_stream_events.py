"""Our stream events from a provider's SSE: data lines per network read, text merged per read,
tool calls assembled from their fragments, and the events that close every stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from opencode_api.llm._protocol import (
    ReasoningDelta,
    StreamEvent,
    StreamFinish,
    TextDelta,
    ToolCallRequest,
)
from opencode_api.llm._stream_watchdog import StreamWatchdog
from opencode_api.usage import Usage

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "max_tokens": "length",
    "pause_turn": "stop",
    "refusal": "content_filter",
}


def normalize_finish(reason: str | None, has_tool_calls: bool) -> str:
    """One vocabulary for all providers: stop, tool_calls, length, content_filter."""
    if not reason:
        return "tool_calls" if has_tool_calls else "stop"
    return _FINISH_REASONS.get(reason, reason)


class ToolCallAssembler:
    """Collects streamed tool-call fragments by index; ``calls()`` gives them whole, in order."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, list[str]] = {}

    def start(self, index: int, call_id: str | None, name: str | None) -> None:
        call = self._calls.setdefault(index, ["", "", ""])
        if call_id:
            call[0] = call_id
        if name:
            call[1] = name

    def add_arguments(self, index: int, fragment: str) -> None:
        self._calls.setdefault(index, ["", "", ""])[2] += fragment

    def __bool__(self) -> bool:
        return bool(self._calls)

    def calls(self) -> list[ToolCallRequest]:
        return [
            ToolCallRequest(id=call[0], name=call[1], arguments=call[2])
            for _, call in sorted(self._calls.items())
        ]


def final_events(
    tools: ToolCallAssembler, finish: str | None, usage: Usage | None
) -> list[StreamEvent]:
    """What closes every stream: the tool calls whole, the finish, then the usage (zero if none)."""
    events: list[StreamEvent] = list(tools.calls())
    events.append(StreamFinish(normalize_finish(finish, bool(tools))))
    events.append(usage if usage is not None else Usage())
    return events


async def sse_data_blocks(
    content: aiohttp.StreamReader, watchdog: StreamWatchdog
) -> AsyncIterator[list[bytes]]:
    """The ``data:`` payloads of each network read; a stream cut short raises ``ClientError``.

    One await per read rather than per line: under load several chunks arrive per read, and the
    parsers merge their deltas (``DeltaBatch``) so the rest of the server handles one event. Each
    read is one wait of the stream's ``watchdog``.
    """
    pending = b""
    while True:
        watchdog.wait()
        block = await content.readany()
        watchdog.done()
        if not block:
            break
        pending += block
        *lines, pending = pending.split(b"\n")
        payloads = [line[5:].strip() for line in lines if line.startswith(b"data:")]
        if payloads:
            yield payloads
    if pending.startswith(b"data:"):
        yield [pending[5:].strip()]


class DeltaBatch:
    """The events parsed from one read, consecutive text (or reasoning) deltas merged into one."""

    __slots__ = ("_events", "_kind", "_parts")

    def __init__(self) -> None:
        self._events: list[StreamEvent] = []
        self._kind: type[TextDelta] | type[ReasoningDelta] | None = None
        self._parts: list[str] = []

    def text(self, text: str) -> None:
        self._delta(TextDelta, text)

    def reasoning(self, text: str) -> None:
        self._delta(ReasoningDelta, text)

    def _delta(self, kind: type[TextDelta] | type[ReasoningDelta], text: str) -> None:
        if self._kind is not kind:
            self._flush()
            self._kind = kind
        self._parts.append(text)

    def take(self) -> list[StreamEvent]:
        """The batch's events in order; the batch is empty afterwards."""
        self._flush()
        events, self._events = self._events, []
        return events

    def _flush(self) -> None:
        if self._kind is not None:
            parts = self._parts
            self._events.append(self._kind(parts[0] if len(parts) == 1 else "".join(parts)))
            self._parts = []
            self._kind = None
