"""The fast streaming path for the OpenAI and Anthropic wire protocols: SSE parsed in place.

LiteLLM's per-chunk work (SDK model construction, delta re-checks) caps a core near 40 turns/s;
this client streams over one pooled aiohttp session and turns each SSE line into our events with
one ``json.loads``. It yields what ``LiteLLMClient`` yields for the same provider answer, and maps
errors the same way; the one difference is granularity: text (or reasoning) chunks that arrive in
the same network read are merged into one delta, so a loaded server pays per read, not per token.
LiteLLM is used only off the hot path (routes, defaults, token count).
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from opencode_api.actors._llm import (
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    LLMError,
    LLMRequest,
    ModelNotFoundError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    ReasoningDelta,
    StreamEvent,
    StreamFinish,
    StreamUsage,
    TextDelta,
    ToolCallRequest,
)
from opencode_api.settings import Settings

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "max_tokens": "length",
    "pause_turn": "stop",
    "refusal": "content_filter",
}
_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "too many tokens",
)


def normalize_finish(reason: str | None, has_tool_calls: bool) -> str:
    """One vocabulary for all providers: stop, tool_calls, length, content_filter."""
    if not reason:
        return "tool_calls" if has_tool_calls else "stop"
    return _FINISH_REASONS.get(reason, reason)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_context_window_error(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _CONTEXT_MARKERS)


def error_for_status(
    status: int, message: str, *, retry_after: float | None, provider: str | None
) -> LLMError:
    """The ``LLMError`` for an HTTP error answer, as LiteLLM's exception mapping would choose it."""
    kind: type[LLMError]
    if status == 429:
        kind = RateLimitError
    elif status in (401, 403):
        kind = AuthenticationError
    elif status == 404:
        kind = ModelNotFoundError
    elif status == 408:
        kind = ProviderTimeoutError
    elif status in (400, 413, 422):
        kind = ContextWindowExceededError if is_context_window_error(message) else BadRequestError
    elif status >= 500:
        kind = ProviderUnavailableError
    else:
        kind = LLMError
    return kind(message, status=status, retry_after=retry_after, provider=provider)


def error_message_from_body(body: str) -> str:
    """The provider's own message from an OpenAI or Anthropic error body, else the raw body."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip() or "provider error"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(data.get("message"), str):
            return str(data["message"])
    return body.strip() or "provider error"


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
    tools: ToolCallAssembler, finish: str | None, usage: StreamUsage | None
) -> list[StreamEvent]:
    """What closes every stream: the tool calls whole, the finish, then the usage (zero if none)."""
    events: list[StreamEvent] = list(tools.calls())
    events.append(StreamFinish(normalize_finish(finish, bool(tools))))
    events.append(usage if usage is not None else StreamUsage())
    return events


# A protocol module turns a request into (url, headers, body) and SSE data into events.
Shaper = Callable[[LLMRequest, str, Settings], tuple[str, dict[str, str], dict[str, Any]]]


class FastLLMClient:
    """``LLMClient`` for ``openai/`` (any ``api_base``) and ``anthropic/`` models over raw HTTP."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    def supports(self, model: str) -> bool:
        from opencode_api.actors._llm_router import provider_of

        return provider_of(model)[0] in ("openai", "anthropic")

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None)
            )
        return self._session

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        return self._stream(request)

    async def _stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        from opencode_api.actors import _fast_anthropic, _fast_openai
        from opencode_api.actors._llm_router import provider_of

        provider, model = provider_of(request.model)
        parse: Callable[[aiohttp.StreamReader, str], AsyncIterator[StreamEvent]]
        if provider == "anthropic":
            url, headers, body = _fast_anthropic.shape_request(request, model, self._settings)
            parse = _fast_anthropic.parse_events
        elif provider == "openai":
            url, headers, body = _fast_openai.shape_request(request, model, self._settings)
            parse = _fast_openai.parse_events
        else:
            raise BadRequestError(
                f"the fast path does not serve {request.model!r}", provider=provider
            )
        timeout = request.timeout or self._settings.llm_timeout
        client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        try:
            response = await self._http().post(
                url, data=encode_body(body), headers=headers, timeout=client_timeout
            )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderTimeoutError(f"{provider} timed out: {exc}", provider=provider) from exc
        except aiohttp.ClientError as exc:
            raise ProviderUnavailableError(
                f"{provider} connection failed: {exc}", provider=provider
            ) from exc
        try:
            if response.status >= 400:
                text = await response.text()
                raise error_for_status(
                    response.status,
                    error_message_from_body(text),
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    provider=provider,
                )
            try:
                async for event in parse(response.content, provider):
                    yield event
                # Read to the end (normally nothing is left) so the connection goes back to
                # the pool instead of being closed below.
                await response.content.read()
            except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
                raise ProviderTimeoutError(
                    f"{provider} timed out: {exc}", provider=provider
                ) from exc
            except aiohttp.ClientError as exc:
                raise ProviderUnavailableError(
                    f"{provider} stream dropped: {exc}", provider=provider
                ) from exc
        finally:
            # close(), not release(): an unfinished stream must not go back to the pool, and the
            # provider must see the connection go away at once (abort).
            if not response.closed:
                response.close()

    async def complete(self, request: LLMRequest) -> str:
        """Non-streamed calls are not on the hot path: they go through LiteLLM."""
        from opencode_api.actors._litellm_client import LiteLLMClient

        return await LiteLLMClient(self._settings).complete(request)

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


# The tool schemas of a runtime are one list, sent with every request (a few KB of JSON):
# encoded once per list, keyed by identity (the list is held, so its id is not reused).
_ENCODED_TOOLS: dict[int, tuple[object, bytes]] = {}
_ENCODED_TOOLS_MAX = 16


def encode_body(body: dict[str, Any]) -> bytes:
    """``body`` as JSON bytes, with its ``tools`` list encoded once and reused afterwards.

    Tool lists are read-only once built (``ToolRegistry.schemas`` hands out one shared list).
    """
    tools = body.get("tools")
    if not tools:
        return json.dumps(body, separators=(",", ":")).encode()
    cached = _ENCODED_TOOLS.get(id(tools))
    if cached is None or cached[0] is not tools:
        if len(_ENCODED_TOOLS) >= _ENCODED_TOOLS_MAX:
            _ENCODED_TOOLS.clear()
        cached = _ENCODED_TOOLS[id(tools)] = (
            tools,
            json.dumps(tools, separators=(",", ":")).encode(),
        )
    rest = json.dumps({k: v for k, v in body.items() if k != "tools"}, separators=(",", ":"))
    return rest[:-1].encode() + b',"tools":' + cached[1] + b"}"


async def sse_data_blocks(content: aiohttp.StreamReader) -> AsyncIterator[list[bytes]]:
    """The ``data:`` payloads of each network read; a stream cut short raises ``ClientError``.

    One await per read rather than per line: under load several chunks arrive per read, and the
    parsers merge their deltas (``DeltaBatch``) so the rest of the server handles one event.
    """
    pending = b""
    async for block in content.iter_any():
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
