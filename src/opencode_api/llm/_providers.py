"""The provider and model catalogue, built once from LiteLLM's bundled model map (never fetched),
and which providers have credentials."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, ConfigDict

from opencode_api.llm._model_map import (
    ModelMapUnavailableError,
    model_map,
    split_model,
)
from opencode_api.llm._model_map import context_window as map_context_window
from opencode_api.settings import Settings


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    provider_id: str
    context_window: int | None
    max_output_tokens: int | None
    input_cost_per_token: float | None
    output_cost_per_token: float | None
    supports_tools: bool
    supports_reasoning: bool


class ProviderInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    available: bool
    model_count: int


class ProviderDetail(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    available: bool
    env: list[str]
    models: list[ModelInfo]


# id -> (display name, key variables, the Settings attribute holding the key, if any)
_PROVIDERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "anthropic": ("Anthropic", ("ANTHROPIC_API_KEY",), "anthropic_api_key"),
    "openai": ("OpenAI", ("OPENAI_API_KEY",), "openai_api_key"),
    "gemini": ("Google Gemini", ("GEMINI_API_KEY",), "gemini_api_key"),
    "deepseek": ("DeepSeek", ("DEEPSEEK_API_KEY",), "deepseek_api_key"),
    "mistral": ("Mistral", ("MISTRAL_API_KEY",), "mistral_api_key"),
    "xai": ("xAI", ("XAI_API_KEY",), "xai_api_key"),
}


def provider_key(provider_id: str, settings: Settings) -> str | None:
    """The configured key of a catalogue provider (every key is read by ``Settings``)."""
    entry = _PROVIDERS.get(provider_id)
    secret = getattr(settings, entry[2], None) if entry is not None else None
    return secret.get_secret_value() if secret is not None else None


_catalogue: dict[str, list[ModelInfo]] | None = None
_catalogue_lock = threading.Lock()


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _build_catalogue() -> dict[str, list[ModelInfo]]:
    catalogue: dict[str, list[ModelInfo]] = {provider: [] for provider in _PROVIDERS}
    try:
        entries = model_map().entries
    except ModelMapUnavailableError:
        return catalogue
    for key, info in entries.items():
        provider = info.get("litellm_provider")
        if provider not in catalogue or info.get("mode") != "chat":
            continue
        model_id = key.split("/", 1)[1] if key.startswith(f"{provider}/") else key
        if "/" in model_id:
            # Regional or tiered variants (``us/...``, ``1024-x-1024/...``) are not separate models.
            continue
        catalogue[provider].append(
            ModelInfo(
                id=model_id,
                name=model_id,
                provider_id=provider,
                context_window=_int(info.get("max_input_tokens") or info.get("max_tokens")),
                max_output_tokens=_int(info.get("max_output_tokens") or info.get("max_tokens")),
                input_cost_per_token=_float(info.get("input_cost_per_token")),
                output_cost_per_token=_float(info.get("output_cost_per_token")),
                supports_tools=bool(info.get("supports_function_calling")),
                supports_reasoning=bool(info.get("supports_reasoning")),
            )
        )
    for models in catalogue.values():
        models.sort(key=lambda model: model.id)
    return catalogue


def _models() -> dict[str, list[ModelInfo]]:
    global _catalogue
    if _catalogue is None:
        with _catalogue_lock:
            if _catalogue is None:
                _catalogue = _build_catalogue()
    return _catalogue


def _available(provider_id: str, settings: Settings) -> bool:
    if provider_key(provider_id, settings) is not None:
        return True
    # A custom OpenAI-compatible endpoint often needs no key.
    return provider_id == "openai" and bool(settings.openai_api_base)


def missing_credentials(
    provider_id: str, settings: Settings, *, api_key: str | None = None, api_base: str | None = None
) -> list[str] | None:
    """The variables to set when a call to ``provider_id`` has no credentials, else None.

    A request's own ``api_key`` counts (and for ``openai`` its own ``api_base``: a custom
    endpoint often needs no key); providers outside the catalogue are LiteLLM's to judge (None).
    """
    if provider_id not in _PROVIDERS or api_key or (provider_id == "openai" and api_base):
        return None
    if _available(provider_id, settings):
        return None
    return list(_PROVIDERS[provider_id][1])


def list_providers(settings: Settings) -> list[ProviderInfo]:
    models = _models()
    return [
        ProviderInfo(
            id=provider_id,
            name=name,
            available=_available(provider_id, settings),
            model_count=len(models[provider_id]),
        )
        for provider_id, (name, _, _) in _PROVIDERS.items()
    ]


def get_provider(provider_id: str, settings: Settings) -> ProviderDetail | None:
    if provider_id not in _PROVIDERS:
        return None
    name, env, _ = _PROVIDERS[provider_id]
    return ProviderDetail(
        id=provider_id,
        name=name,
        available=_available(provider_id, settings),
        env=list(env),
        models=list(_models()[provider_id]),
    )


def list_models(provider_id: str) -> list[ModelInfo]:
    """The provider's chat models; an unknown provider has none."""
    return list(_models().get(provider_id, []))


def resolve_model(
    provider_id: str | None, model_id: str | None, default: str
) -> tuple[str, str, str]:
    """(provider id, model id, LiteLLM model string) for a request's provider and model.

    ``model_id`` may be a full LiteLLM string (``openai/gpt-4o-mini``); a bare model takes
    ``provider_id`` as its prefix, or the provider LiteLLM infers; neither given means ``default``.
    Raises ``ValueError`` when no provider can be determined.
    """
    provider_id = provider_id or None
    model_id = model_id or None
    if model_id is None:
        default_provider, _, default_model = default.partition("/")
        if provider_id is not None and default_model and provider_id != default_provider:
            raise ValueError(f"model_id is required for provider {provider_id!r}")
        model_id = default
    if provider_id is not None:
        if model_id.startswith(f"{provider_id}/"):
            return provider_id, model_id[len(provider_id) + 1 :], model_id
        return provider_id, model_id, f"{provider_id}/{model_id}"
    provider, name = split_model(model_id)
    if not provider and "/" not in model_id:
        provider = _family(model_id) or ""
    if not provider:
        raise ValueError(f"cannot tell the provider of model {model_id!r}")
    if name != model_id:
        return provider, name, model_id
    return provider, model_id, f"{provider}/{model_id}"


def _family(model_id: str) -> str | None:
    """Retired or future names of the three main families still have an obvious home."""
    family = model_id.split("-", 1)[0].lower()
    return {"claude": "anthropic", "gemini": "gemini", "gpt": "openai"}.get(family)


def context_window(model: str) -> int | None:
    """The model's context window from LiteLLM's bundled map, or None when it is unknown (or the
    map cannot be read)."""
    try:
        return map_context_window(model)
    except ModelMapUnavailableError:
        return None
