"""The universal LLM client: every provider LiteLLM knows, streamed into our events.

LiteLLM is imported on first use, in a thread (~2 s, ~200 MB: ``ensure_litellm``), never at start-up
and never on the event loop. Streams end on the same idle and total timeouts as the fast path.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import os
import re
import threading
import warnings
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from opencode_api.llm._errors import (
    AuthenticationError,
    ContextWindowExceededError,
    LLMError,
    ModelNotFoundError,
    ProviderRequestError,
    ProviderUnavailableError,
    RateLimitError,
)
from opencode_api.llm._protocol import (
    LLMRequest,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
)
from opencode_api.llm._provider_errors import (
    error_for_status,
    from_transport_error,
    is_context_window_error,
    parse_retry_after,
    timed_out,
)
from opencode_api.llm._providers import provider_key
from opencode_api.llm._stream_events import ToolCallAssembler, final_events
from opencode_api.llm._stream_watchdog import StreamWatchdog
from opencode_api.settings import Settings
from opencode_api.usage import Usage

READONLY_WARNING = r".*is using the `ReadOnly` qualifier"
_import_lock = threading.Lock()
_litellm: ModuleType | None = None
_warm = False


def import_litellm() -> ModuleType:
    """LiteLLM, imported on first use (2 s, ~200 MB) with its price map kept offline."""
    global _litellm
    if _litellm is not None:
        return _litellm
    with _import_lock:
        if _litellm is None:
            # Without this LiteLLM fetches its price map over the network at import.
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            litellm.suppress_debug_info = True
            # Pydantic warns once per LiteLLM TypedDict with ReadOnly items, lazily, mid-call.
            warnings.filterwarnings("ignore", message=READONLY_WARNING, category=UserWarning)
            # LiteLLM's logger prints through its own handler and propagates: every line twice.
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
                logging.getLogger(name).handlers.clear()
            _litellm = litellm
    return _litellm


def warm_up() -> ModuleType:
    """Import LiteLLM and load its tokenizer now (blocking: call it in a thread).

    LiteLLM otherwise loads the tokenizer inside the first streamed call, on the event loop,
    stalling every session for seconds.
    """
    global _warm
    litellm = import_litellm()
    if not _warm:
        litellm.token_counter(model="gpt-4o-mini", text="warm up")
        _warm = True
    return litellm


def litellm_loaded() -> bool:
    """Whether LiteLLM is imported and warm (``ensure_litellm`` returns at once)."""
    return _warm


async def ensure_litellm() -> ModuleType:
    """LiteLLM, imported and warmed in a thread the first time (the event loop keeps serving)."""
    if _warm and _litellm is not None:
        return _litellm
    return await asyncio.to_thread(warm_up)


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def usage_from_litellm(usage: Any) -> Usage:
    prompt_details = _field(usage, "prompt_tokens_details")
    completion_details = _field(usage, "completion_tokens_details")
    return Usage(
        input_tokens=_field(usage, "prompt_tokens") or 0,
        output_tokens=_field(usage, "completion_tokens") or 0,
        reasoning_tokens=_field(completion_details, "reasoning_tokens") or 0,
        cache_read_tokens=_field(prompt_details, "cached_tokens")
        or _field(usage, "cache_read_input_tokens")
        or 0,
        cache_write_tokens=_field(usage, "cache_creation_input_tokens")
        or _field(prompt_details, "cache_creation_tokens")
        or 0,
    )


# LiteLLM wraps the provider's message in layers of prefixes and a hint: peel them off.
_PREFIX = re.compile(r"^(?:litellm\.\w+: |\w+(?:Error|Exception): |\w+(?:Error|Exception) - )")
_SUFFIX = re.compile(r"\.? Handle with `litellm\.\w+`\.?$")
_BYTES_BODY = re.compile(r"b(['\"])(\{.*\})\1", re.DOTALL)


def _message_from_json(text: str) -> str | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return None


def _provider_message(exc: Exception) -> str:
    """The provider's own error message when the body has one, else LiteLLM's text unwrapped
    (and stripped of addresses: LiteLLM's own texts may name hosts and objects)."""
    response = getattr(exc, "response", None)
    try:
        text = response.text if response is not None else None
    except Exception:
        text = None
    if isinstance(text, str) and (found := _message_from_json(text)):
        return found
    message = str(getattr(exc, "message", None) or exc)
    match = _BYTES_BODY.search(message)
    if match is not None:
        try:
            raw = ast.literal_eval(match.group(0))
        except (ValueError, SyntaxError):
            raw = None
        if isinstance(raw, bytes) and (found := _message_from_json(raw.decode(errors="replace"))):
            return found
    message = _unwrap(message)
    # Some routes (Anthropic's non-streamed one) give the provider's error body as the text.
    return _message_from_json(message) or _scrub(message)


def _unwrap(message: str) -> str:
    message = _SUFFIX.sub("", message.strip())
    while (peeled := _PREFIX.sub("", message)) != message:
        message = peeled
    return message


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if value is None:
        extra = getattr(exc, "litellm_response_headers", None)
        value = extra.get("retry-after") if extra is not None else None
    return parse_retry_after(value)


def map_litellm_error(exc: Exception, provider: str | None) -> LLMError:
    """LiteLLM's exception -> our ``LLMError`` tree.

    A failure below HTTP (found in the exception's causes) gets our own message, as on the fast
    path; an HTTP error answer keeps the provider's message.
    """
    import_litellm()
    from litellm import exceptions as litellm

    mid_stream = isinstance(exc, litellm.MidStreamFallbackError)
    if isinstance(exc, litellm.Timeout) or (
        isinstance(exc, litellm.MidStreamFallbackError)
        and isinstance(exc.original_exception, litellm.Timeout)
    ):
        return timed_out(provider)
    transport = from_transport_error(exc, provider, mid_stream=mid_stream)
    if transport is not None:
        return transport
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    message = _provider_message(exc)
    kind: type[LLMError]
    if isinstance(exc, litellm.MidStreamFallbackError | litellm.APIConnectionError):
        # No HTTP status: the stream broke after it started (an in-band error event, say).
        return ProviderUnavailableError(message, status=None, provider=provider)
    if isinstance(exc, litellm.RateLimitError):
        kind = RateLimitError
    elif isinstance(exc, litellm.ContextWindowExceededError):
        kind = ContextWindowExceededError
    elif isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
        kind = AuthenticationError
    elif isinstance(exc, litellm.NotFoundError):
        kind = ModelNotFoundError
    elif isinstance(exc, litellm.BadRequestError | litellm.UnprocessableEntityError):
        kind = ProviderRequestError
        if is_context_window_error(message):
            kind = ContextWindowExceededError
    elif isinstance(
        exc,
        litellm.ServiceUnavailableError | litellm.InternalServerError | litellm.BadGatewayError,
    ):
        kind = ProviderUnavailableError
    elif status is not None:
        return error_for_status(status, message, retry_after=_retry_after(exc), provider=provider)
    else:
        kind = LLMError
    return kind(message, status=status, retry_after=_retry_after(exc), provider=provider)


# What LiteLLM's own texts may carry that a client must not see: URLs, host:port, object reprs.
_ADDRESSES = re.compile(
    r"https?://\S+|<[^<>]* object at 0x[0-9a-f]+>|\b[\w.-]+\.[a-z]{2,}:\d+\b"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\[[0-9a-f:]+\](?::\d+)?|\blocalhost(?::\d+)?\b",
    re.IGNORECASE,
)


def _scrub(message: str) -> str:
    return _ADDRESSES.sub("<address>", message)


class LiteLLMClient:
    """``LLMClient`` over ``litellm.acompletion``: every provider; the SDK never retries itself
    (``max_retries=0``) because the agent loop owns the retry policy."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _kwargs(self, request: LLMRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "timeout": request.timeout or self._settings.llm_timeout,
            "max_retries": 0,
            # A parameter the model does not take (temperature on reasoning models) is dropped,
            # as the fast path does, instead of failing the turn.
            "drop_params": True,
        }
        api_base, api_key = request.api_base, request.api_key
        settings = self._settings
        if request.model.startswith("openai/"):
            api_base = api_base or settings.openai_api_base
            if api_key is None and settings.openai_api_key is not None:
                api_key = settings.openai_api_key.get_secret_value()
        elif request.model.startswith("anthropic/"):
            api_base = api_base or settings.anthropic_api_base
            if api_key is None and settings.anthropic_api_key is not None:
                api_key = settings.anthropic_api_key.get_secret_value()
        elif api_key is None:
            # Keys from Settings (a .env file included), which LiteLLM would not see itself.
            api_key = provider_key(request.model.partition("/")[0], settings)
        if api_base:
            kwargs["api_base"] = api_base
        if api_key:
            kwargs["api_key"] = api_key
        if request.tools:
            kwargs["tools"] = request.tools
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        kwargs.update(request.extra)
        return kwargs

    @staticmethod
    def _provider(model: str) -> str | None:
        prefix, _, rest = model.partition("/")
        return prefix if rest else None

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        return self._stream(request)

    async def _stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        litellm = await ensure_litellm()
        provider = self._provider(request.model)
        kwargs = self._kwargs(request)
        settings = self._settings
        watchdog = StreamWatchdog(
            provider,
            idle=settings.llm_stream_idle_timeout,
            total=request.timeout or settings.llm_timeout,
        )
        response: Any = None
        tools = ToolCallAssembler()
        finish: str | None = None
        usage: Usage | None = None
        try:
            with watchdog:
                try:
                    watchdog.wait()
                    response = await litellm.acompletion(
                        stream=True, stream_options={"include_usage": True}, **kwargs
                    )
                    watchdog.done()
                    stream = aiter(response)
                    while True:
                        watchdog.wait()
                        try:
                            chunk = await anext(stream)
                        except StopAsyncIteration:
                            break
                        watchdog.done()
                        raw_usage = getattr(chunk, "usage", None)
                        if raw_usage:
                            usage = usage_from_litellm(raw_usage)
                        if not chunk.choices:
                            continue
                        choice = chunk.choices[0]
                        delta = choice.delta
                        if delta is not None:
                            reasoning = getattr(delta, "reasoning_content", None)
                            if reasoning:
                                yield ReasoningDelta(reasoning)
                            if delta.content:
                                yield TextDelta(delta.content)
                            for call in delta.tool_calls or ():
                                index = call.index or 0
                                function = call.function
                                name = function.name if function is not None else None
                                if call.id or name:
                                    tools.start(index, call.id, name)
                                if function is not None and function.arguments:
                                    tools.add_arguments(index, function.arguments)
                        if choice.finish_reason:
                            finish = choice.finish_reason
                except asyncio.CancelledError:
                    if watchdog.expired():
                        raise watchdog.error() from None
                    raise
        except LLMError:
            raise
        except Exception as exc:
            if watchdog.expired():
                # The SDK turned the watchdog's cancellation into an error of its own.
                raise watchdog.error() from None
            raise map_litellm_error(exc, provider) from exc
        finally:
            # Breaking out of the iteration leaves the upstream streaming: close it explicitly.
            if response is not None:
                await response.aclose()
        for event in final_events(tools, finish, usage):
            yield event

    async def complete(self, request: LLMRequest) -> str:
        litellm = await ensure_litellm()
        try:
            response = await litellm.acompletion(stream=False, **self._kwargs(request))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise map_litellm_error(exc, self._provider(request.model)) from exc
        content = response.choices[0].message.content if response.choices else None
        return content or ""

    async def aclose(self) -> None:
        """LiteLLM pools its own connections per process; nothing of ours to release."""
