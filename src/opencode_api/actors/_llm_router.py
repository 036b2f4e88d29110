"""Picks the LLM client per request: the fast path where it serves the route, else LiteLLM."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import lru_cache

from opencode_api.actors._fast_client import FastLLMClient
from opencode_api.actors._litellm_client import LiteLLMClient, import_litellm
from opencode_api.actors._llm import LLMRequest, StreamEvent
from opencode_api.settings import Settings

FAST_PROVIDERS = frozenset({"openai", "anthropic"})


@lru_cache(maxsize=1024)
def provider_of(model: str) -> tuple[str, str]:
    """(provider, model name without the provider prefix), as LiteLLM resolves the model string."""
    prefix, _, rest = model.partition("/")
    if rest and prefix in FAST_PROVIDERS:
        return prefix, rest
    try:
        name, provider, _, _ = import_litellm().get_llm_provider(model=model)
    except Exception:
        # Unknown to LiteLLM: not ours to serve; LiteLLM raises the proper error later.
        return (prefix if rest else ""), (rest or model)
    return str(provider), str(name)


class RoutingLLMClient:
    """``LLMClient``: streams through ``FastLLMClient`` for the routes it supports (OpenAI and
    Anthropic wire protocols) when ``LLM_FAST_PATH=auto``, through ``LiteLLMClient`` otherwise;
    ``complete()`` always goes through LiteLLM."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.fast = FastLLMClient(settings)
        self.litellm = LiteLLMClient(settings)

    def supports(self, model: str) -> bool:
        """Whether streams for ``model`` take the fast path."""
        return self._settings.llm_fast_path == "auto" and provider_of(model)[0] in FAST_PROVIDERS

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        if self.supports(request.model):
            return self.fast.stream(request)
        return self.litellm.stream(request)

    async def complete(self, request: LLMRequest) -> str:
        return await self.litellm.complete(request)

    async def aclose(self) -> None:
        try:
            await self.fast.aclose()
        finally:
            await self.litellm.aclose()
