"""The fast path for the OpenAI and Anthropic wire protocols: SSE parsed in place, no LiteLLM.

LiteLLM's per-chunk work (SDK model construction, delta re-checks) caps a core near 40 turns/s;
this client streams over one pooled aiohttp session and turns each SSE line into our events with
one ``json.loads``. It yields what ``LiteLLMClient`` yields for the same provider answer, and maps
errors the same way; the one difference is granularity: text (or reasoning) chunks that arrive in
the same network read are merged into one delta, so a loaded server pays per read, not per token.
Non-streamed calls (titles, compaction) are one request on the same session.

A stream ends with ``ProviderTimeoutError`` when the provider sends nothing for
``LLM_STREAM_IDLE_TIMEOUT`` seconds, or when the whole call outlasts the request's timeout
(``LLM_TIMEOUT``); one watchdog timer per stream checks both (``_stream_watchdog``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from opencode_api.llm import _fast_anthropic, _fast_openai
from opencode_api.llm._errors import LLMError, ProviderRequestError, ProviderUnavailableError
from opencode_api.llm._model_map import split_model
from opencode_api.llm._protocol import LLMRequest, StreamEvent
from opencode_api.llm._provider_errors import (
    connection_failed,
    error_for_status,
    error_message_from_body,
    from_transport_error,
    parse_retry_after,
    timed_out,
)
from opencode_api.llm._stream_watchdog import StreamWatchdog
from opencode_api.settings import Settings

FAST_PROVIDERS = frozenset({"openai", "anthropic"})

# A protocol module turns a request into (url, headers, body) and SSE data into events.
Shaper = Callable[..., tuple[str, dict[str, str], dict[str, Any]]]
Parser = Callable[[aiohttp.StreamReader, str, StreamWatchdog], AsyncIterator[StreamEvent]]


class FastLLMClient:
    """``LLMClient`` for ``openai/`` (any ``api_base``) and ``anthropic/`` models over raw HTTP."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None)
            )
        return self._session

    def _shape(
        self, request: LLMRequest, *, stream: bool
    ) -> tuple[str, str, dict[str, str], dict[str, Any]]:
        provider, model = split_model(request.model)
        if provider == "anthropic":
            url, headers, body = _fast_anthropic.shape_request(
                request, model, self._settings, stream=stream
            )
        elif provider == "openai":
            url, headers, body = _fast_openai.shape_request(
                request, model, self._settings, stream=stream
            )
        else:
            raise ProviderRequestError(
                f"the fast path does not serve {request.model!r}", provider=provider or None
            )
        return provider, url, headers, body

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        return self._stream(request)

    async def _stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        provider, url, headers, body = self._shape(request, stream=True)
        parse: Parser = (
            _fast_anthropic.parse_events if provider == "anthropic" else _fast_openai.parse_events
        )
        settings = self._settings
        watchdog = StreamWatchdog(
            provider,
            idle=settings.llm_stream_idle_timeout,
            total=request.timeout or settings.llm_timeout,
        )
        response: aiohttp.ClientResponse | None = None
        received = False
        try:
            with watchdog:
                try:
                    watchdog.wait()
                    response = await self._http().post(url, data=encode_body(body), headers=headers)
                    watchdog.done()
                    if response.status >= 400:
                        watchdog.wait()
                        text = await response.text()
                        watchdog.done()
                        raise error_for_status(
                            response.status,
                            error_message_from_body(text),
                            retry_after=parse_retry_after(response.headers.get("Retry-After")),
                            provider=provider,
                        )
                    received = True
                    async for event in parse(response.content, provider, watchdog):
                        yield event
                    # Read to the end (normally nothing is left) so the connection goes back to
                    # the pool instead of being closed below.
                    watchdog.wait()
                    await response.content.read()
                    watchdog.done()
                except asyncio.CancelledError:
                    if watchdog.expired():
                        raise watchdog.error() from None
                    raise
        except LLMError:
            raise
        except (aiohttp.ClientError, OSError) as exc:
            if watchdog.expired():
                raise watchdog.error() from None
            raise _transport_error(exc, provider, mid_stream=received) from None
        finally:
            # close(), not release(): an unfinished stream must not go back to the pool, and the
            # provider must see the connection go away at once (abort).
            if response is not None and not response.closed:
                response.close()

    async def complete(self, request: LLMRequest) -> str:
        """One non-streamed request; the text of the answer. Bounded by the request's timeout
        (``LLM_TIMEOUT``) alone: a non-streamed answer sends nothing until it is whole."""
        provider, url, headers, body = self._shape(request, stream=False)
        timeout = request.timeout or self._settings.llm_timeout
        try:
            async with (
                asyncio.timeout(timeout if timeout > 0 else None),
                self._http().post(url, data=encode_body(body), headers=headers) as response,
            ):
                text = await response.text()
                if response.status >= 400:
                    raise error_for_status(
                        response.status,
                        error_message_from_body(text),
                        retry_after=parse_retry_after(response.headers.get("Retry-After")),
                        provider=provider,
                    )
        except LLMError:
            raise
        except TimeoutError:
            raise timed_out(provider) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _transport_error(exc, provider, mid_stream=False) from None
        try:
            answer = json.loads(text)
        except ValueError:
            raise ProviderUnavailableError(
                f"{provider} sent an answer that is not JSON", provider=provider
            ) from None
        if provider == "anthropic":
            return _fast_anthropic.completion_text(answer)
        return _fast_openai.completion_text(answer)

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _transport_error(exc: BaseException, provider: str, *, mid_stream: bool) -> LLMError:
    return from_transport_error(exc, provider, mid_stream=mid_stream) or connection_failed(
        provider, mid_stream=mid_stream
    )


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
