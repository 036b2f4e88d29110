"""Step cost from LiteLLM's price map, and the provider catalogue built from its model map."""

from __future__ import annotations

import pytest

from opencode_api.actors._litellm_client import import_litellm
from opencode_api.actors._llm import StreamUsage
from opencode_api.actors._pricing import litellm_usage, step_cost
from opencode_api.actors._providers import (
    get_provider,
    list_models,
    list_providers,
    resolve_model,
)
from opencode_api.settings import Settings


@pytest.mark.parametrize(
    ("model", "usage"),
    [
        ("openai/gpt-4o-mini", StreamUsage(1000, 200)),
        ("openai/gpt-4o-mini", StreamUsage(1000, 200, cache_read_tokens=800)),
        ("anthropic/claude-haiku-4-5", StreamUsage(1000, 200, cache_read_tokens=300)),
        ("anthropic/claude-haiku-4-5", StreamUsage(900, 50, cache_write_tokens=400)),
    ],
    ids=["plain", "openai-cached", "anthropic-cache-read", "anthropic-cache-write"],
)
def test_cost_equals_litellm(model: str, usage: StreamUsage) -> None:
    litellm = import_litellm()
    prompt, completion = litellm.cost_per_token(
        model=model,
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        usage_object=litellm_usage(usage),
    )
    cost, priced = step_cost(model, usage)
    assert priced
    assert cost == pytest.approx(prompt + completion)
    assert cost > 0


def test_cached_tokens_are_cheaper() -> None:
    full, _ = step_cost("openai/gpt-4o-mini", StreamUsage(1000, 0))
    cached, _ = step_cost("openai/gpt-4o-mini", StreamUsage(1000, 0, cache_read_tokens=1000))
    assert cached < full


def test_unknown_model_is_unpriced() -> None:
    assert step_cost("openai/no-such-model-xyz", StreamUsage(10, 10)) == (0.0, False)
    assert step_cost("hosted_vllm/my-model", StreamUsage(10, 10)) == (0.0, False)


def test_provider_list_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None, anthropic_api_key="sk-ant")  # type: ignore[call-arg]
    providers = {p.id: p for p in list_providers(settings)}
    assert {"anthropic", "openai", "gemini"} <= set(providers)
    assert providers["anthropic"].available and not providers["gemini"].available
    assert set(providers["openai"].model_dump()) == {"id", "name", "available", "model_count"}
    assert providers["openai"].model_count == len(list_models("openai")) > 10


def test_provider_detail_and_models() -> None:
    detail = get_provider("openai", Settings(_env_file=None))  # type: ignore[call-arg]
    assert detail is not None
    assert set(detail.model_dump()) == {"id", "name", "available", "env", "models"}
    assert detail.env == ["OPENAI_API_KEY"]
    model = next(m for m in detail.models if m.id == "gpt-4o-mini")
    assert set(model.model_dump()) == {
        "id",
        "name",
        "provider_id",
        "context_window",
        "max_output_tokens",
        "input_cost_per_token",
        "output_cost_per_token",
        "supports_tools",
        "supports_reasoning",
    }
    assert model.provider_id == "openai" and model.supports_tools
    assert model.context_window == 128000
    gemini = list_models("gemini")
    assert gemini and all("/" not in m.id for m in gemini)
    assert get_provider("nope", Settings(_env_file=None)) is None  # type: ignore[call-arg]
    assert list_models("nope") == []


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        (None, None, ("openai", "gpt-4o-mini", "openai/gpt-4o-mini")),
        ("openai", "gpt-4o", ("openai", "gpt-4o", "openai/gpt-4o")),
        (
            None,
            "anthropic/claude-haiku-4-5",
            ("anthropic", "claude-haiku-4-5", "anthropic/claude-haiku-4-5"),
        ),
        ("gemini", "gemini-2.5-flash", ("gemini", "gemini-2.5-flash", "gemini/gemini-2.5-flash")),
        ("openai", "openai/gpt-4o", ("openai", "gpt-4o", "openai/gpt-4o")),
        (None, "gpt-4o-mini", ("openai", "gpt-4o-mini", "openai/gpt-4o-mini")),
        ("", "", ("openai", "gpt-4o-mini", "openai/gpt-4o-mini")),
    ],
)
def test_resolve_model(
    provider: str | None, model: str | None, expected: tuple[str, str, str]
) -> None:
    assert resolve_model(provider, model, "openai/gpt-4o-mini") == expected


def test_resolve_model_errors() -> None:
    with pytest.raises(ValueError):
        resolve_model(None, "definitely-not-a-model", "openai/gpt-4o-mini")
    with pytest.raises(ValueError):
        resolve_model("anthropic", None, "openai/gpt-4o-mini")


def test_resolve_bare_names_of_the_main_families() -> None:
    from opencode_api.actors._providers import resolve_model

    assert resolve_model(None, "claude-sonnet-4-5", "openai/gpt-4o-mini")[0] == "anthropic"
    # A retired dated name LiteLLM no longer maps still goes to its family's provider.
    assert resolve_model(None, "claude-3-5-sonnet-20241022", "openai/gpt-4o-mini") == (
        "anthropic",
        "claude-3-5-sonnet-20241022",
        "anthropic/claude-3-5-sonnet-20241022",
    )
