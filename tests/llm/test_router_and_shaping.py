"""Route choice, non-streamed completions, settings endpoints, and OpenAI->Anthropic shaping."""

from __future__ import annotations

from typing import Any

import pytest

from opencode_api.llm._fast_anthropic import convert_messages, convert_tools, messages_url
from opencode_api.llm._fast_client import FastLLMClient
from opencode_api.llm._litellm_client import LiteLLMClient
from opencode_api.llm._protocol import LLMRequest, StreamFinish, TextDelta
from opencode_api.llm._router import RoutingLLMClient, provider_of
from opencode_api.settings import Settings
from opencode_api.testing import FakeAnthropicServer, FakeLLMServer, Reply


@pytest.mark.parametrize(
    ("model", "fast"),
    [
        ("openai/gpt-4o-mini", True),
        ("gpt-4o-mini", True),
        ("anthropic/claude-haiku-4-5", True),
        ("gemini/gemini-2.5-flash", False),
        ("hosted_vllm/llama", False),
    ],
)
def test_supports(model: str, fast: bool) -> None:
    auto = RoutingLLMClient(Settings(_env_file=None))  # type: ignore[call-arg]
    off = RoutingLLMClient(Settings(_env_file=None, llm_fast_path="off"))  # type: ignore[call-arg]
    assert auto.supports(model) is fast
    assert off.supports(model) is False


def test_provider_of() -> None:
    assert provider_of("openai/gpt-4o") == ("openai", "gpt-4o")
    assert provider_of("claude-haiku-4-5") == ("anthropic", "claude-haiku-4-5")
    assert provider_of("hosted_vllm/llama") == ("hosted_vllm", "llama")
    assert provider_of("gemini-2.5-flash") == ("vertex_ai", "gemini-2.5-flash")  # as LiteLLM
    assert provider_of("no-such-model") == ("", "no-such-model")


@pytest.mark.parametrize("fast_path", ["auto", "off"])
async def test_router_streams_through_the_chosen_client(
    fast_path: str, openai_fake: FakeLLMServer
) -> None:
    settings = Settings(_env_file=None, llm_fast_path=fast_path)  # type: ignore[call-arg]
    router = RoutingLLMClient(settings)
    openai_fake.enqueue(Reply(text="hi"))
    request = LLMRequest(
        model="openai/gpt-4o-mini", messages=[], api_base=openai_fake.base_url, api_key="k"
    )
    try:
        stream = router.stream(request)
        events = [event async for event in stream]
    finally:
        await router.aclose()
    assert events[:2] == [TextDelta("hi"), StreamFinish("stop")]
    agent = openai_fake.request_headers[0]["User-Agent"]
    # The fast path sends aiohttp's User-Agent; LiteLLM's openai/ route the OpenAI SDK's.
    assert agent.startswith("Python/") is (fast_path == "auto")


@pytest.mark.parametrize("fast_path", ["auto", "off"])
async def test_complete_routes_like_stream(
    fast_path: str, openai_fake: FakeLLMServer, anthropic_fake: FakeAnthropicServer
) -> None:
    settings = Settings(_env_file=None, llm_fast_path=fast_path)  # type: ignore[call-arg]
    client = RoutingLLMClient(settings)
    openai_fake.enqueue(Reply(text="Short title"))
    anthropic_fake.enqueue(Reply(text="A summary."))
    messages = [{"role": "user", "content": "summarize"}]
    try:
        title = await client.complete(
            LLMRequest("openai/gpt-4o-mini", messages, api_base=openai_fake.base_url, api_key="k")
        )
        summary = await client.complete(
            LLMRequest(
                "anthropic/claude-haiku-4-5",
                messages,
                api_base=anthropic_fake.base_url,
                api_key="k",
            )
        )
    finally:
        await client.aclose()
    assert (title, summary) == ("Short title", "A summary.")
    assert openai_fake.requests[0].get("stream") in (None, False)
    assert anthropic_fake.requests[0].get("stream") in (None, False)
    # One request each, on the fast path's aiohttp session (aiohttp's User-Agent) when auto.
    for fake in (openai_fake, anthropic_fake):
        assert len(fake.requests) == 1
        agent = fake.request_headers[0].get("User-Agent", "")
        assert agent.startswith("Python/") is (fast_path == "auto"), agent


@pytest.mark.parametrize("kind", [FastLLMClient, LiteLLMClient])
async def test_settings_endpoint_and_key(
    kind: type[FastLLMClient] | type[LiteLLMClient], openai_fake: FakeLLMServer
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, openai_api_base=openai_fake.base_url, openai_api_key="sk-from-settings"
    )
    client = kind(settings)
    openai_fake.enqueue(Reply(text="ok"))
    request = LLMRequest(
        "openai/gpt-4o-mini",
        [{"role": "user", "content": "x"}],
        tools=[{"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}}],
        temperature=0.2,
        max_tokens=33,
    )
    try:
        events = [event async for event in client.stream(request)]
    finally:
        await client.aclose()
    assert events[0] == TextDelta("ok")
    sent = openai_fake.requests[0]
    assert openai_fake.request_headers[0]["Authorization"] == "Bearer sk-from-settings"
    assert sent["model"] == "gpt-4o-mini" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 33
    assert sent["tools"][0]["function"]["name"] == "t"


async def test_anthropic_request_body(anthropic_fake: FakeAnthropicServer) -> None:
    client = FastLLMClient(Settings(_env_file=None, anthropic_api_key="sk-ant"))  # type: ignore[call-arg]
    anthropic_fake.enqueue(Reply(text="ok"))
    request = LLMRequest(
        "anthropic/claude-haiku-4-5",
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}],
        api_base=anthropic_fake.base_url,
    )
    try:
        [event async for event in client.stream(request)]
    finally:
        await client.aclose()
    sent = anthropic_fake.requests[0]
    headers = anthropic_fake.request_headers[0]
    assert headers["x-api-key"] == "sk-ant" and headers["anthropic-version"] == "2023-06-01"
    assert sent["system"] == "be brief" and sent["stream"] is True
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "x"}]}]
    assert sent["max_tokens"] > 0


def test_convert_messages_with_tools() -> None:
    system, messages = convert_messages(
        [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "find it"},
            {
                "role": "assistant",
                "content": "looking",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "s", "arguments": '{"q": 1}'},
                    },
                    {"id": "c2", "type": "function", "function": {"name": "t", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "r1"},
            {"role": "tool", "tool_call_id": "c2", "content": "r2"},
            {"role": "user", "content": "thanks"},
        ]
    )
    assert system == "sys"
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "looking"},
        {"type": "tool_use", "id": "c1", "name": "s", "input": {"q": 1}},
        {"type": "tool_use", "id": "c2", "name": "t", "input": {}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "r1"},
        {"type": "tool_result", "tool_use_id": "c2", "content": "r2"},
        {"type": "text", "text": "thanks"},
    ]


def test_convert_tools_and_url() -> None:
    tools = convert_tools(
        [
            {
                "type": "function",
                "function": {"name": "s", "description": "d", "parameters": {"type": "object"}},
            }
        ]
    )
    assert tools == [{"name": "s", "input_schema": {"type": "object"}, "description": "d"}]
    assert messages_url("http://h:1") == "http://h:1/v1/messages"
    assert messages_url("http://h:1/v1/") == "http://h:1/v1/messages"
    assert messages_url("http://h:1/v1/messages") == "http://h:1/v1/messages"


async def test_complete_maps_errors(openai_fake: FakeLLMServer, settings: Settings) -> None:
    from opencode_api.llm._errors import AuthenticationError

    client = RoutingLLMClient(settings)
    openai_fake.enqueue(Reply.error(401, "Incorrect API key provided"))
    request = LLMRequest("openai/gpt-4o-mini", [], api_base=openai_fake.base_url, api_key="bad")
    try:
        with pytest.raises(AuthenticationError) as caught:
            await client.complete(request)
    finally:
        await client.aclose()
    assert caught.value.message == "Incorrect API key provided"
    assert caught.value.status == 401


async def test_anthropic_shaping_matches_litellm(
    anthropic_fake: FakeAnthropicServer, settings: Settings
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "find it"},
        {
            "role": "assistant",
            "content": "looking",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "s", "arguments": '{"q": 1}'},
                },
                {"id": "c2", "type": "function", "function": {"name": "t", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "r1"},
        {"role": "tool", "tool_call_id": "c2", "content": "r2"},
        {"role": "user", "content": "thanks"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "more"}]},
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "s",
                "description": "search",
                "parameters": {"type": "object", "properties": {"q": {"type": "integer"}}},
            },
        }
    ]
    for client in (LiteLLMClient(settings), FastLLMClient(settings)):
        request = LLMRequest(
            "anthropic/claude-haiku-4-5",
            messages,
            tools=tools,
            temperature=0.3,
            api_base=anthropic_fake.base_url,
            api_key="k",
        )
        try:
            [event async for event in client.stream(request)]
        finally:
            await client.aclose()
    via_litellm, via_fast = anthropic_fake.requests
    for key in ("model", "messages", "max_tokens", "temperature", "stream"):
        assert via_fast[key] == via_litellm[key], key
    assert [
        {k: t[k] for k in ("name", "description", "input_schema")} for t in via_litellm["tools"]
    ] == via_fast["tools"]
    assert via_litellm["system"] == [{"type": "text", "text": via_fast["system"]}]


async def test_warm_up_only_when_the_default_model_needs_litellm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opencode_api.llm import _litellm_client, _router

    monkeypatch.setattr(_litellm_client, "_warm", False)  # as in a fresh process
    calls: list[str] = []
    monkeypatch.setattr(_router, "warm_up", lambda: calls.append("warm"))
    fast = RoutingLLMClient(Settings(_env_file=None))  # type: ignore[call-arg]
    fast.start_warm_up()
    assert fast._warm_up is None
    await fast.aclose()
    for values in ({"llm_fast_path": "off"}, {"default_model": "gemini/gemini-2.5-flash"}):
        router = RoutingLLMClient(Settings(_env_file=None, **values))  # type: ignore[arg-type]
        router.start_warm_up()
        assert router._warm_up is not None
        await router._warm_up
        await router.aclose()
    assert calls == ["warm", "warm"]
