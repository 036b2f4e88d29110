"""Provider failures as ``LLMError``s, chosen the same way for both clients.

An HTTP error answer keeps the provider's own message and status. A failure below HTTP gets a
message of ours, never the exception's text (it names hosts, ports and objects):

    host name does not resolve -> ProviderUnreachableError "openai is unreachable: ..." (final)
    refused, reset, cut short  -> ProviderUnavailableError "openai connection failed"   (retried)
    timed out, idle too long   -> ProviderTimeoutError     "openai timed out"           (retried)
"""

from __future__ import annotations

import email.utils
import json
import socket
import time

import aiohttp

from opencode_api.llm._errors import (
    AuthenticationError,
    ContextWindowExceededError,
    LLMError,
    ModelNotFoundError,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    ProviderUnreachableError,
    RateLimitError,
)

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "too many tokens",
)


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
        kind = ProviderRequestError
        if is_context_window_error(message):
            kind = ContextWindowExceededError
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


def unreachable(provider: str | None, *, invalid_url: bool = False) -> ProviderUnreachableError:
    name = provider or "the provider"
    why = "its address is not a valid URL" if invalid_url else "its host name does not resolve"
    return ProviderUnreachableError(f"{name} is unreachable: {why}", provider=provider)


def connection_failed(
    provider: str | None, *, mid_stream: bool = False
) -> ProviderUnavailableError:
    name = provider or "the provider"
    what = "connection was lost mid-stream" if mid_stream else "connection failed"
    return ProviderUnavailableError(f"{name} {what}", provider=provider)


def timed_out(provider: str | None, *, idle: float | None = None) -> ProviderTimeoutError:
    name = provider or "the provider"
    if idle is not None:
        return ProviderTimeoutError(f"{name} sent nothing for {idle:g} s", provider=provider)
    return ProviderTimeoutError(f"{name} timed out", provider=provider)


def from_transport_error(
    exc: BaseException, provider: str | None, *, mid_stream: bool = False
) -> LLMError | None:
    """The error for a failure below HTTP found in ``exc`` or its causes, else None.

    Recognizes aiohttp's and the standard library's exceptions, and those of httpx (what LiteLLM's
    SDKs raise) by their class names, so this module never imports httpx.
    """
    found: LLMError | None = None
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror | aiohttp.ClientConnectorDNSError):
            return unreachable(provider)
        if isinstance(cause, aiohttp.InvalidURL):
            return unreachable(provider, invalid_url=True)
        if found is None:
            found = _transport_kind(cause, provider, mid_stream)
        cause = cause.__cause__ or cause.__context__
    return found


_SDK_MODULES = ("httpx", "httpcore", "openai")
_CONNECTION_ERRORS = (ConnectionError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)


def _transport_kind(exc: BaseException, provider: str | None, mid_stream: bool) -> LLMError | None:
    names: set[str] = set()
    if type(exc).__module__.split(".", 1)[0] in _SDK_MODULES:
        names = {klass.__name__ for klass in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or names & {"TimeoutException", "APITimeoutError"}:
        return timed_out(provider)
    if isinstance(exc, _CONNECTION_ERRORS):
        return connection_failed(provider, mid_stream=mid_stream)
    if names & {"TransportError", "APIConnectionError"}:
        return connection_failed(provider, mid_stream=mid_stream)
    return None
