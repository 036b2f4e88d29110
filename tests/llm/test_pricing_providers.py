"""Pricing, catalogue and model facts from the bundled map, held to LiteLLM's own answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from opencode_api.llm import _model_map, _token_count
from opencode_api.llm._litellm_client import import_litellm
from opencode_api.llm._pricing import step_cost
from opencode_api.llm._providers import (
    get_provider,
    list_models,
    list_providers,
    resolve_model,
)
from opencode_api.settings import Settings
from opencode_api.usage import Usage

# The providers of our catalogue: every chat model the map lists for them is compared.
PROVIDERS = ["openai", "anthropic", "gemini", "deepseek", "mistral", "xai"]

USAGES = {
    "plain": Usage(input_tokens=1000, output_tokens=200),
    "cache-read": Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=800),
    "cache-read-and-write": Usage(
        input_tokens=900, output_tokens=50, cache_read_tokens=100, cache_write_tokens=400
    ),
    "reasoning": Usage(input_tokens=5000, output_tokens=3000, reasoning_tokens=1200),
    "long-prompt": Usage(
        input_tokens=250_000, output_tokens=1000, reasoning_tokens=500, cache_read_tokens=100_000
    ),
    "longer-prompt": Usage(input_tokens=300_000, output_tokens=10, cache_write_tokens=1000),
    "at-200k": Usage(input_tokens=200_000, output_tokens=5),
    "at-272k": Usage(input_tokens=272_000, output_tokens=5, cache_read_tokens=1),
    "nothing": Usage(),
}


def litellm_usage(usage: Usage) -> Any:
    """Our usage as the LiteLLM ``Usage`` a streamed call produces: ``input_tokens`` counts the
    cached tokens (OpenAI's convention, which LiteLLM uses for Anthropic too)."""
    import_litellm()
    from litellm.types.utils import (
        CompletionTokensDetailsWrapper,
        PromptTokensDetailsWrapper,
    )
    from litellm.types.utils import Usage as LiteLLMUsage

    return LiteLLMUsage(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.input_tokens + usage.output_tokens,
        prompt_tokens_details=PromptTokensDetailsWrapper(
            cached_tokens=usage.cache_read_tokens,
            cache_creation_tokens=usage.cache_write_tokens,
        ),
        completion_tokens_details=CompletionTokensDetailsWrapper(
            reasoning_tokens=usage.reasoning_tokens
        ),
    )


def litellm_cost(model: str, usage: Usage) -> float | None:
    """LiteLLM's cost, or None when LiteLLM cannot price the model."""
    litellm = import_litellm()
    try:
        prompt, completion = litellm.cost_per_token(
            model=model,
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
            usage_object=litellm_usage(usage),
        )
    except Exception:
        return None
    return float(prompt) + float(completion)


def chat_models(provider: str) -> list[str]:
    """Every chat model the map lists for ``provider``, as LiteLLM model strings."""
    models = []
    for key, entry in _model_map.model_map().entries.items():
        if entry.get("mode") != "chat" or entry.get("litellm_provider") != provider:
            continue
        models.append(key if key.startswith(f"{provider}/") else f"{provider}/{key}")
    return sorted(set(models))


def assert_same_cost(model: str, usage: Usage, now: datetime | None = None) -> None:
    theirs = litellm_cost(model, usage)
    ours, priced = step_cost(model, usage, now=now)
    if theirs is None or (theirs == 0.0 and not priced):
        # Unknown to LiteLLM, or listed without any price (LiteLLM says 0): unpriced for us.
        assert (ours, priced) == (0.0, False), model
        return
    assert priced, model
    assert abs(ours - theirs) <= 1e-9 * abs(theirs), (model, usage, ours, theirs)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cost_equals_litellm_for_every_chat_model(provider: str) -> None:
    models = chat_models(provider)
    assert len(models) >= 10
    for model in models:
        for usage in USAGES.values():
            assert_same_cost(model, usage)


@pytest.mark.parametrize(
    "model",
    [
        "openai/gpt-4o-mini-2024-07-18",  # dated, listed
        "openai/gpt-4o-mini-2099-01-01",  # dated, not listed: its undated price
        "anthropic/claude-3-5-sonnet-20241022",
        "gemini/gemini-2.5-flash-001",  # a version suffix, as LiteLLM strips it
        "gpt-4o",  # bare
        "claude-haiku-4-5",
        "openai/GPT-4o",  # case
    ],
)
def test_cost_equals_litellm_for_other_spellings(model: str) -> None:
    for usage in USAGES.values():
        assert_same_cost(model, usage)


@pytest.mark.parametrize(
    "when",
    [datetime(2026, 3, 2, 3, 0, tzinfo=UTC), datetime(2026, 3, 7, 12, 0, tzinfo=UTC)],
    ids=["peak", "off-peak"],
)
def test_off_peak_prices_equal_litellm(when: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    import_litellm()
    from litellm.litellm_core_utils.llm_cost_calc import utils

    monkeypatch.setattr(utils, "current_billing_time", lambda: when)
    models = [m for m in chat_models("deepseek") if "off_peak_pricing" in _entry(m)]
    assert models
    for model in models:
        for usage in USAGES.values():
            assert_same_cost(model, usage, now=when)
    plain = USAGES["plain"]
    assert step_cost(models[0], plain, now=datetime(2026, 3, 2, 3, 0, tzinfo=UTC)) != (
        step_cost(models[0], plain, now=datetime(2026, 3, 7, 12, 0, tzinfo=UTC))
    )


def _entry(model: str) -> Any:
    found = _model_map.find_model(model)
    assert found is not None
    return found[2]


def test_cached_tokens_are_cheaper() -> None:
    full, _ = step_cost("openai/gpt-4o-mini", Usage(input_tokens=1000, output_tokens=0))
    cached, _ = step_cost(
        "openai/gpt-4o-mini", Usage(input_tokens=1000, output_tokens=0, cache_read_tokens=1000)
    )
    assert 0 < cached < full


@pytest.mark.parametrize(
    "model", ["openai/no-such-model-xyz", "hosted_vllm/my-model", "nope", "gemini/gemini-0-zz"]
)
def test_unknown_model_is_unpriced(model: str) -> None:
    usage = Usage(input_tokens=10, output_tokens=10)
    assert step_cost(model, usage) == (0.0, False)
    assert litellm_cost(model, usage) in (None, 0.0)


def test_bare_names_take_litellm_provider() -> None:
    litellm = import_litellm()
    compared = 0
    for key, entry in _model_map.model_map().entries.items():
        if "/" in key or entry.get("litellm_provider") not in PROVIDERS:
            continue
        try:
            _, theirs, _, _ = litellm.get_llm_provider(model=key)
        except Exception:
            continue  # LiteLLM cannot route it; we take the map's provider
        assert _model_map.split_model(key) == (theirs, key), key
        compared += 1
    assert compared > 100


def test_context_window_and_anthropic_max_tokens_equal_litellm() -> None:
    litellm = import_litellm()
    for provider in PROVIDERS:
        for model in chat_models(provider):
            bare = model.split("/", 1)[1]
            info = litellm.model_cost.get(model) or litellm.model_cost.get(bare) or {}
            expected = info.get("max_input_tokens") or info.get("max_tokens")
            assert _model_map.context_window(model) == expected, model
    for model in [*chat_models("anthropic"), "anthropic/claude-unknown-9", "anthropic/x"]:
        bare = model.split("/", 1)[1]
        expected = litellm.AnthropicConfig.get_max_tokens_for_model(bare)
        assert _model_map.anthropic_max_tokens(bare) == expected, model
    assert _model_map.context_window("openai/no-such-model-xyz") is None


@pytest.mark.parametrize(
    "text",
    [
        "weigh both options carefully",
        "Hello world " * 100,  # more than one 1,024-character piece
        "日本語のテキスト <|endoftext|> and emoji 🙂 " * 60,
        "",
    ],
    ids=["short", "pieces", "unicode-and-special", "empty"],
)
def test_token_count_equals_litellm(text: str) -> None:
    litellm = import_litellm()
    expected = litellm.token_counter(text=text, count_response_tokens=True)
    assert _token_count.count_tokens(text) == expected


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
        (None, "hosted_vllm/llama", ("hosted_vllm", "llama", "hosted_vllm/llama")),
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
        resolve_model(None, "nowhere/some-model", "openai/gpt-4o-mini")
    with pytest.raises(ValueError):
        resolve_model("anthropic", None, "openai/gpt-4o-mini")


def test_resolve_bare_names_of_the_main_families() -> None:
    assert resolve_model(None, "claude-sonnet-4-5", "openai/gpt-4o-mini")[0] == "anthropic"
    # A retired dated name the map no longer lists still goes to its family's provider.
    assert resolve_model(None, "claude-3-5-sonnet-20241022", "openai/gpt-4o-mini") == (
        "anthropic",
        "claude-3-5-sonnet-20241022",
        "anthropic/claude-3-5-sonnet-20241022",
    )
