"""Picks the LLM client per request: the fast path where it serves the route, else LiteLLM.

A call to a provider of our catalogue that has no credentials fails here, before any network
call, with ``ProviderNotConfiguredError`` naming the variables to set (a warning is logged once
per provider). LiteLLM is imported only for a route that needs it, in a thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import structlog

from opencode_api.llm._errors import ProviderNotConfiguredError
from opencode_api.llm._fast_client import FAST_PROVIDERS, FastLLMClient
from opencode_api.llm._litellm_client import LiteLLMClient, litellm_loaded, warm_up
from opencode_api.llm._model_map import split_model
from opencode_api.llm._protocol import LLMRequest, StreamEvent
from opencode_api.llm._providers import missing_credentials
from opencode_api.settings import Settings

log = structlog.get_logger("opencode_api.llm")

_warned: set[str] = set()
_warned_lock = threading.Lock()


def provider_of(model: str) -> tuple[str, str]:
    """(provider, model name without the provider prefix), as LiteLLM resolves the model string;
    the provider is ``""`` when nothing tells it (LiteLLM then raises the proper error)."""
    return split_model(model)


def _warn_once(provider: str, env: list[str]) -> None:
    with _warned_lock:
        if provider in _warned:
            return
        _warned.add(provider)
    log.warning("provider not configured", provider=provider, env=env)


async def _failing(error: Exception) -> AsyncIterator[StreamEvent]:
    raise error
    yield  # an async generator: the error comes with the first event, like any stream's


class RoutingLLMClient:
    """``LLMClient``: streams and completions go through ``FastLLMClient`` for the routes it
    supports (OpenAI and Anthropic wire protocols) when ``LLM_FAST_PATH=auto``, through
    ``LiteLLMClient`` otherwise."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.fast = FastLLMClient(settings)
        self.litellm = LiteLLMClient(settings)
        self._warm_up: asyncio.Task[None] | None = None

    def supports(self, model: str) -> bool:
        """Whether calls for ``model`` take the fast path."""
        return self._settings.llm_fast_path == "auto" and provider_of(model)[0] in FAST_PROVIDERS

    def check_configured(self, request: LLMRequest) -> None:
        """Raise ``ProviderNotConfiguredError`` when the request's provider has no credentials."""
        provider = provider_of(request.model)[0]
        env = missing_credentials(
            provider, self._settings, api_key=request.api_key, api_base=request.api_base
        )
        if env is not None:
            _warn_once(provider, env)
            raise ProviderNotConfiguredError(provider, env, model=request.model)

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        try:
            self.check_configured(request)
        except ProviderNotConfiguredError as exc:
            return _failing(exc)
        if self.supports(request.model):
            return self.fast.stream(request)
        return self.litellm.stream(request)

    async def complete(self, request: LLMRequest) -> str:
        self.check_configured(request)
        if self.supports(request.model):
            return await self.fast.complete(request)
        return await self.litellm.complete(request)

    def start_warm_up(self) -> None:
        """Import and warm LiteLLM in a thread, in the background, if the default model needs it
        (``LLM_FAST_PATH=off``, or a default model the fast path does not serve); a route that
        needs it later waits for the same import instead of starting its own."""
        if self._warm_up is not None or litellm_loaded():
            return
        if self.supports(self._settings.default_model):
            return
        self._warm_up = asyncio.get_running_loop().create_task(self._warm(), name="litellm-warm-up")

    async def _warm(self) -> None:
        try:
            await asyncio.to_thread(warm_up)
        except Exception:
            log.exception("LiteLLM warm-up failed")

    async def aclose(self) -> None:
        if self._warm_up is not None and not self._warm_up.done():
            # The import itself cannot be interrupted: stop waiting for it.
            self._warm_up.cancel()
            await asyncio.wait([self._warm_up])
        try:
            await self.fast.aclose()
        finally:
            await self.litellm.aclose()
