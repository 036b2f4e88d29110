"""A provider without credentials fails at once: no request, no retry, the variables named."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from opencode_api.llm import _router as router_module
from opencode_api.llm._errors import ProviderNotConfiguredError
from opencode_api.llm._protocol import LLMRequest, TextDelta
from opencode_api.llm._router import RoutingLLMClient
from opencode_api.settings import Settings
from opencode_api.testing import FakeAnthropicServer, FakeLLMServer, Reply

KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY")


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (*KEYS, "OPENAI_API_BASE", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(router_module, "_warned", set())
    yield


def _router(**values: object) -> RoutingLLMClient:
    return RoutingLLMClient(Settings(_env_file=None, **values))  # type: ignore[arg-type]


async def _stream_error(router: RoutingLLMClient, request: LLMRequest) -> Exception | None:
    stream = router.stream(request)
    try:
        async for _ in stream:
            pass
    except Exception as exc:
        return exc
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return None


@pytest.mark.parametrize(
    ("model", "provider", "env"),
    [
        ("openai/gpt-4o-mini", "openai", ["OPENAI_API_KEY"]),
        ("anthropic/claude-haiku-4-5", "anthropic", ["ANTHROPIC_API_KEY"]),
        ("gemini/gemini-2.5-flash", "gemini", ["GEMINI_API_KEY"]),
        ("deepseek/deepseek-chat", "deepseek", ["DEEPSEEK_API_KEY"]),
        ("claude-haiku-4-5", "anthropic", ["ANTHROPIC_API_KEY"]),
    ],
)
async def test_unconfigured_provider_fails_at_once(
    model: str, provider: str, env: list[str]
) -> None:
    router = _router()
    request = LLMRequest(model, [{"role": "user", "content": "hi"}])
    try:
        with capture_logs() as logs:
            streamed = await _stream_error(router, request)
            with pytest.raises(ProviderNotConfiguredError) as completed:
                await router.complete(request)
    finally:
        await router.aclose()
    for error in (streamed, completed.value):
        assert isinstance(error, ProviderNotConfiguredError)
        assert error.provider == provider and error.env == env and not error.retryable
        assert error.to_dict() == {
            "type": "provider_not_configured",
            "message": error.message,
            "provider": provider,
            "env": env,
        }
        assert env[0] in error.message and model in error.message
    # One warning per provider per process, naming the variable.
    warnings = [log for log in logs if log["event"] == "provider not configured"]
    assert warnings == [
        {
            "event": "provider not configured",
            "log_level": "warning",
            "provider": provider,
            "env": env,
        }
    ]


async def test_nothing_is_sent(anthropic_fake: FakeAnthropicServer) -> None:
    router = _router()
    request = LLMRequest(
        "anthropic/claude-haiku-4-5",
        [{"role": "user", "content": "hi"}],
        api_base=anthropic_fake.base_url,
    )
    try:
        assert isinstance(await _stream_error(router, request), ProviderNotConfiguredError)
        with pytest.raises(ProviderNotConfiguredError):
            await router.complete(request)
    finally:
        await router.aclose()
    assert anthropic_fake.requests == []


async def test_what_counts_as_configured(
    openai_fake: FakeLLMServer, anthropic_fake: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [{"role": "user", "content": "hi"}]
    cases = [
        # The request's own key.
        (
            _router(),
            LLMRequest(
                "anthropic/claude-haiku-4-5",
                messages,
                api_base=anthropic_fake.base_url,
                api_key="k",
            ),
        ),
        # An OpenAI-compatible endpoint of its own, which often needs no key.
        (_router(), LLMRequest("openai/gpt-4o-mini", messages, api_base=openai_fake.base_url)),
        # OPENAI_API_BASE in the settings.
        (_router(openai_api_base=openai_fake.base_url), LLMRequest("openai/gpt-4o-mini", messages)),
        # A key in the settings.
        (
            _router(anthropic_api_key="sk-ant"),
            LLMRequest("anthropic/claude-haiku-4-5", messages, api_base=anthropic_fake.base_url),
        ),
    ]
    for router, request in cases:
        fake = openai_fake if request.model.startswith("openai/") else anthropic_fake
        fake.enqueue(Reply(text="ok"), Reply(text="fine"))
        try:
            events = [event async for event in router.stream(request)]
            assert events[0] == TextDelta("ok")
            assert await router.complete(request) == "fine"
        finally:
            await router.aclose()
    # A key in the environment.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-env")
    router = _router()
    anthropic_fake.enqueue(Reply(text="env"))
    request = LLMRequest("anthropic/claude-haiku-4-5", messages, api_base=anthropic_fake.base_url)
    try:
        assert await router.complete(request) == "env"
    finally:
        await router.aclose()
    assert anthropic_fake.request_headers[-1]["x-api-key"] == "sk-env"


async def test_providers_outside_the_catalogue_are_litellms_to_judge() -> None:
    router = _router()
    try:
        router.check_configured(LLMRequest("hosted_vllm/llama", []))
        router.check_configured(LLMRequest("ollama/llama3", []))
    finally:
        await router.aclose()
