"""The fast path and the LiteLLM path see the same fake provider answer and must yield the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from opencode_api.llm._errors import (
    AuthenticationError,
    ContextWindowExceededError,
    LLMError,
    ModelNotFoundError,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)
from opencode_api.llm._fast_client import FastLLMClient
from opencode_api.llm._litellm_client import LiteLLMClient
from opencode_api.llm._protocol import (
    LLMRequest,
    ReasoningDelta,
    StreamEvent,
    StreamFinish,
    TextDelta,
    ToolCallRequest,
)
from opencode_api.testing import (
    FakeAnthropicServer,
    FakeLLMServer,
    FakeProviderServer,
    Reply,
    ToolCall,
    Usage,
)
from opencode_api.usage import Usage as TokenUsage

MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}
PROTOCOLS = list(MODELS)

Client = FastLLMClient | LiteLLMClient


@dataclass
class Outcome:
    events: list[StreamEvent]
    error: LLMError | None


@pytest.fixture(params=PROTOCOLS)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeProviderServer]:
    server: FakeProviderServer = (
        FakeLLMServer() if request.param == "openai" else FakeAnthropicServer()
    )
    async with server:
        yield server


def _model(fake: FakeProviderServer) -> str:
    return MODELS["anthropic" if isinstance(fake, FakeAnthropicServer) else "openai"]


def _request(fake: FakeProviderServer, **extra: object) -> LLMRequest:
    return LLMRequest(
        model=_model(fake),
        messages=[{"role": "user", "content": "hi"}],
        api_base=fake.base_url,
        api_key="sk-test",
        **extra,  # type: ignore[arg-type]
    )


async def _run(client: Client, request: LLMRequest) -> Outcome:
    events: list[StreamEvent] = []
    stream = client.stream(request)
    try:
        async for event in stream:
            events.append(event)
    except LLMError as exc:
        return Outcome(events, exc)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return Outcome(events, None)


def merged(events: list[StreamEvent]) -> list[StreamEvent]:
    """Consecutive text (or reasoning) deltas as one: the fast path merges chunks read together."""
    out: list[StreamEvent] = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, TextDelta | ReasoningDelta) and type(last) is type(event):
            out[-1] = type(event)(last.text + event.text)  # type: ignore[union-attr]
        else:
            out.append(event)
    return out


async def _both(
    fake: FakeProviderServer, fast: FastLLMClient, lite: LiteLLMClient, reply: Reply
) -> tuple[Outcome, Outcome]:
    fake.enqueue(reply)
    via_litellm = await _run(lite, _request(fake))
    fake.enqueue(reply)
    via_fast = await _run(fast, _request(fake))
    return via_litellm, via_fast


TOOLS_REPLY = Reply(
    text="Let me look.",
    tool_calls=[
        ToolCall("websearch", {"query": "actor model", "limit": 5}, fragments=4),
        ToolCall("todoread", {}, fragments=1),
        ToolCall("webfetch", '{"url": "http://example.test/a?b=c"}', fragments=6),
    ],
)

SCENARIOS = {
    "text": (
        Reply(text="Hello there, world", usage=Usage(12, 3)),
        [
            TextDelta("Hello "),
            TextDelta("there, "),
            TextDelta("world"),
            StreamFinish("stop"),
            TokenUsage(input_tokens=12, output_tokens=3),
        ],
    ),
    "reasoning": (
        Reply(reasoning="think it over", text="Yes.", usage=Usage(20, 9, reasoning_tokens=3)),
        None,
    ),
    "one_tool_call": (
        Reply(tool_calls=[ToolCall("todoread", {"all": True}, id="call_1")], usage=Usage(5, 4)),
        [
            ToolCallRequest("call_1", "todoread", '{"all": true}'),
            StreamFinish("tool_calls"),
            TokenUsage(input_tokens=5, output_tokens=4),
        ],
    ),
    "parallel_tool_calls": (TOOLS_REPLY, None),
    "cached_usage": (
        Reply(text="ok", usage=Usage(1000, 7, cached_tokens=600)),
        [
            TextDelta("ok"),
            StreamFinish("stop"),
            TokenUsage(input_tokens=1000, output_tokens=7, cache_read_tokens=600),
        ],
    ),
    "length": (
        Reply(text="cut", finish_reason="length", usage=Usage(3, 1)),
        [TextDelta("cut"), StreamFinish("length"), TokenUsage(input_tokens=3, output_tokens=1)],
    ),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_same_events(
    scenario: str,
    fake: FakeProviderServer,
    fast_client: FastLLMClient,
    litellm_client: LiteLLMClient,
) -> None:
    reply, expected = SCENARIOS[scenario]
    via_litellm, via_fast = await _both(fake, fast_client, litellm_client, reply)
    assert via_litellm.error is None and via_fast.error is None
    assert merged(via_fast.events) == merged(via_litellm.events)
    if expected is not None:
        assert via_litellm.events == expected
        assert merged(via_fast.events) == merged(expected)
    kinds = [type(event) for event in via_fast.events]
    assert kinds[-2:] == [StreamFinish, TokenUsage]


async def test_parallel_tool_calls_assembled(
    fake: FakeProviderServer, fast_client: FastLLMClient
) -> None:
    fake.enqueue(TOOLS_REPLY)
    outcome = await _run(fast_client, _request(fake))
    calls = [event for event in outcome.events if isinstance(event, ToolCallRequest)]
    assert [(call.name, call.arguments) for call in calls] == [
        ("websearch", '{"query": "actor model", "limit": 5}'),
        ("todoread", "{}"),
        ("webfetch", '{"url": "http://example.test/a?b=c"}'),
    ]
    assert outcome.events[-2] == StreamFinish("tool_calls")


async def test_anthropic_cache_write_and_reasoning_estimate(
    anthropic_fake: FakeAnthropicServer, fast_client: FastLLMClient, litellm_client: LiteLLMClient
) -> None:
    reply = Reply(
        reasoning="weigh both options carefully",
        text="B.",
        usage=Usage(500, 40, cached_tokens=300, cache_write_tokens=100),
    )
    via_litellm, via_fast = await _both(anthropic_fake, fast_client, litellm_client, reply)
    assert merged(via_fast.events) == merged(via_litellm.events)
    usage = via_fast.events[-1]
    assert isinstance(usage, TokenUsage)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (
        500,
        300,
        100,
    )
    assert usage.reasoning_tokens > 0  # estimated from the thinking text, as LiteLLM does


ERRORS = {
    "429": (Reply.error(429, "Rate limit reached", retry_after=7), RateLimitError, 429, 7.0),
    "500": (Reply.error(500, "upstream exploded"), ProviderUnavailableError, 500, None),
    "503": (Reply.error(503, "overloaded"), ProviderUnavailableError, 503, None),
    "401": (Reply.error(401, "Incorrect API key"), AuthenticationError, 401, None),
    "404": (Reply.error(404, "model does not exist"), ModelNotFoundError, 404, None),
    "400": (Reply.error(400, "messages: bad role"), ProviderRequestError, 400, None),
    "context": (
        Reply.error(
            400,
            "This model's maximum context length is 8 tokens",
            error_type="context_length_exceeded",
        ),
        ContextWindowExceededError,
        400,
        None,
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
async def test_same_errors(
    case: str, fake: FakeProviderServer, fast_client: FastLLMClient, litellm_client: LiteLLMClient
) -> None:
    reply, kind, status, retry_after = ERRORS[case]
    via_litellm, via_fast = await _both(fake, fast_client, litellm_client, reply)
    for outcome in (via_litellm, via_fast):
        assert outcome.events == []
        assert type(outcome.error) is kind
        assert outcome.error.status == status
        assert outcome.error.retry_after == retry_after
        assert outcome.error.message == reply.error_message
    # max_retries=0: neither path retried underneath (one request each).
    assert len(fake.requests) == 2


async def test_rate_limit_then_success(
    fake: FakeProviderServer, fast_client: FastLLMClient, litellm_client: LiteLLMClient
) -> None:
    clients: tuple[Client, ...] = (litellm_client, fast_client)
    for client in clients:
        fake.enqueue(
            Reply.error(429, "slow down", retry_after=1), Reply(text="fine", usage=Usage(1, 1))
        )
        first = await _run(client, _request(fake))
        assert isinstance(first.error, RateLimitError) and first.error.retryable
        second = await _run(client, _request(fake))
        assert second.error is None
        assert second.events[0] == TextDelta("fine")
    assert len(fake.requests) == 4


async def test_mid_stream_drop(
    fake: FakeProviderServer, fast_client: FastLLMClient, litellm_client: LiteLLMClient
) -> None:
    # Frames before the first text delta: message_start and content_block_start, or the role chunk.
    first_text = 2 if isinstance(fake, FakeAnthropicServer) else 1
    reply = Reply(text="one two three four", drop_after=first_text + 2)
    via_litellm, via_fast = await _both(fake, fast_client, litellm_client, reply)
    assert via_litellm.events == [TextDelta("one "), TextDelta("two ")]
    assert merged(via_fast.events) == [TextDelta("one two ")]
    provider = "anthropic" if isinstance(fake, FakeAnthropicServer) else "openai"
    for outcome in (via_litellm, via_fast):
        assert type(outcome.error) is ProviderUnavailableError
        assert outcome.error.status is None
        assert outcome.error.message == f"{provider} connection was lost mid-stream"
    assert fake.drops == 2


async def test_error_event_mid_stream(
    fake: FakeProviderServer, fast_client: FastLLMClient, litellm_client: LiteLLMClient
) -> None:
    first_text = 2 if isinstance(fake, FakeAnthropicServer) else 1
    reply = Reply(
        text="one two three", error_event_after=first_text + 1, error_message="Overloaded"
    )
    via_litellm, via_fast = await _both(fake, fast_client, litellm_client, reply)
    assert merged(via_fast.events) == via_litellm.events == [TextDelta("one ")]
    for outcome in (via_litellm, via_fast):
        assert type(outcome.error) is ProviderUnavailableError
        assert outcome.error.message == "Overloaded"


@pytest.mark.parametrize("how", ["aclose", "cancel"])
async def test_abort_closes_upstream(
    how: str, fake: FakeProviderServer, fast_client: FastLLMClient, litellm_client: LiteLLMClient
) -> None:
    clients: tuple[Client, ...] = (litellm_client, fast_client)
    for number, client in enumerate(clients, start=1):
        fake.enqueue(Reply(text="never ending story", hang_after=5))
        first = asyncio.Event()
        stream = client.stream(_request(fake))

        async def consume(
            stream: AsyncIterator[StreamEvent] = stream, first: asyncio.Event = first
        ) -> None:
            async for _ in stream:
                first.set()

        task = asyncio.create_task(consume())
        await first.wait()
        if how == "cancel":
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            # The agent loop's shape: stop consuming, then aclose() in finally.
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await stream.aclose()  # type: ignore[attr-defined]
        async with asyncio.timeout(5):
            await fake.wait_for_disconnects(number)
    assert fake.disconnects == 2


async def test_break_then_aclose_closes_upstream(
    fake: FakeProviderServer, fast_client: FastLLMClient, litellm_client: LiteLLMClient
) -> None:
    clients: tuple[Client, ...] = (litellm_client, fast_client)
    for number, client in enumerate(clients, start=1):
        fake.enqueue(Reply(text="a b c d", hang_after=5))
        stream = client.stream(_request(fake))
        try:
            async for event in stream:
                assert isinstance(event, TextDelta | ReasoningDelta)
                break
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        async with asyncio.timeout(5):
            await fake.wait_for_disconnects(number)


async def test_timeout_before_first_token(
    fake: FakeProviderServer, fast_client: FastLLMClient, litellm_client: LiteLLMClient
) -> None:
    clients: tuple[Client, ...] = (litellm_client, fast_client)
    for client in clients:
        fake.enqueue(Reply(text="late", ttft=5.0))
        outcome = await _run(client, _request(fake, timeout=0.3))
        assert type(outcome.error) is ProviderTimeoutError, outcome.error
        assert outcome.error.retryable


async def test_connection_refused(
    fast_client: FastLLMClient, litellm_client: LiteLLMClient
) -> None:
    async with FakeLLMServer() as gone:
        base = gone.base_url
    clients: tuple[Client, ...] = (litellm_client, fast_client)
    for client in clients:
        request = LLMRequest(model="openai/gpt-4o-mini", messages=[], api_base=base, api_key="k")
        outcome = await _run(client, request)
        assert type(outcome.error) is ProviderUnavailableError


# -- non-streamed completions (titles, compaction) ------------------------------------------------

COMPLETIONS = {
    "text": Reply(text="A short title", usage=Usage(12, 3)),
    "reasoning": Reply(reasoning="think it over", text="Yes.", usage=Usage(20, 9)),
    "tool_call_only": Reply(tool_calls=[ToolCall("todoread", {})], usage=Usage(5, 4)),
    "empty": Reply(usage=Usage(5, 0)),
}


async def _complete(client: Client, request: LLMRequest) -> str | LLMError:
    try:
        return await client.complete(request)
    except LLMError as exc:
        return exc


@pytest.mark.parametrize("scenario", list(COMPLETIONS))
async def test_same_completion(
    scenario: str,
    fake: FakeProviderServer,
    fast_client: FastLLMClient,
    litellm_client: LiteLLMClient,
) -> None:
    reply = COMPLETIONS[scenario]
    fake.enqueue(reply, reply)
    via_litellm = await _complete(litellm_client, _request(fake, max_tokens=64))
    via_fast = await _complete(fast_client, _request(fake, max_tokens=64))
    assert via_fast == via_litellm == "".join(reply.text_chunks)
    for sent in fake.requests:
        assert not sent.get("stream")
    via_litellm_body, via_fast_body = fake.requests
    for key in ("model", "messages", "max_tokens"):
        assert via_fast_body[key] == via_litellm_body[key], key


async def test_anthropic_completion_default_max_tokens(
    anthropic_fake: FakeAnthropicServer, fast_client: FastLLMClient, litellm_client: LiteLLMClient
) -> None:
    clients: tuple[Client, ...] = (litellm_client, fast_client)
    for client in clients:
        anthropic_fake.enqueue(Reply(text="summary"))
        request = _request(anthropic_fake)
        request.messages = [{"role": "system", "content": "be brief"}, *request.messages]
        assert await client.complete(request) == "summary"
    via_litellm, via_fast = anthropic_fake.requests
    assert via_fast["max_tokens"] == via_litellm["max_tokens"] > 0
    assert via_litellm["system"] == [{"type": "text", "text": via_fast["system"]}]


@pytest.mark.parametrize("case", list(ERRORS))
async def test_same_completion_errors(
    case: str, fake: FakeProviderServer, fast_client: FastLLMClient, litellm_client: LiteLLMClient
) -> None:
    reply, kind, status, retry_after = ERRORS[case]
    fake.enqueue(reply, reply)
    outcomes = [
        await _complete(litellm_client, _request(fake)),
        await _complete(fast_client, _request(fake)),
    ]
    for outcome in outcomes:
        assert type(outcome) is kind
        assert isinstance(outcome, LLMError)
        assert outcome.status == status
        assert outcome.retry_after == retry_after
        assert outcome.message == reply.error_message
    assert len(fake.requests) == 2
