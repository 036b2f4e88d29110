"""Failures below HTTP and stalled streams, the same for both clients: the error's type, whether it
is retried, and a message that names no host, port or exception."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from opencode_api.llm._errors import (
    LLMError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    ProviderUnreachableError,
)
from opencode_api.llm._fast_client import FastLLMClient
from opencode_api.llm._litellm_client import LiteLLMClient
from opencode_api.llm._protocol import LLMRequest, StreamEvent, TextDelta
from opencode_api.llm._stream_watchdog import StreamWatchdog
from opencode_api.settings import Settings
from opencode_api.testing import FakeAnthropicServer, FakeLLMServer, FakeProviderServer, Reply

MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}
# RFC 2606: a name under .invalid never resolves.
UNRESOLVABLE = "http://api.no-such-host.invalid"

Client = FastLLMClient | LiteLLMClient


def _clients(settings: Settings) -> list[Client]:
    return [LiteLLMClient(settings), FastLLMClient(settings)]


async def _outcome(
    client: Client, request: LLMRequest, *, stream: bool
) -> tuple[list[StreamEvent], LLMError | None]:
    events: list[StreamEvent] = []
    try:
        if not stream:
            await client.complete(request)
            return events, None
        iterator = client.stream(request)
        try:
            async for event in iterator:
                events.append(event)
        finally:
            await iterator.aclose()  # type: ignore[attr-defined]
    except LLMError as exc:
        return events, exc
    finally:
        await client.aclose()
    return events, None


def _assert_clean(error: LLMError) -> None:
    """No exception text, host, address or port in what a client would see."""
    text = str(error.to_dict())
    for leak in ("invalid", "127.0.0.1", "localhost", "Cannot connect", "Errno", "ssl", "0x"):
        assert leak not in text, text


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "complete"])
@pytest.mark.parametrize("provider", list(MODELS))
async def test_host_that_does_not_resolve(provider: str, stream: bool, settings: Settings) -> None:
    messages = [{"role": "user", "content": "hi"}]
    request = LLMRequest(MODELS[provider], messages, api_base=UNRESOLVABLE, api_key="k")
    for client in _clients(settings):
        _, error = await _outcome(client, request, stream=stream)
        assert type(error) is ProviderUnreachableError, (type(client).__name__, error)
        assert not error.retryable and error.type == "unavailable"
        assert error.to_dict()["code"] == "provider_unreachable"
        assert error.message == f"{provider} is unreachable: its host name does not resolve"
        _assert_clean(error)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "complete"])
@pytest.mark.parametrize("provider", list(MODELS))
async def test_connection_refused(provider: str, stream: bool, settings: Settings) -> None:
    async with FakeLLMServer() as gone:
        base = gone.base_url
    messages = [{"role": "user", "content": "hi"}]
    request = LLMRequest(MODELS[provider], messages, api_base=base, api_key="k")
    for client in _clients(settings):
        _, error = await _outcome(client, request, stream=stream)
        assert type(error) is ProviderUnavailableError, (type(client).__name__, error)
        assert error.retryable and error.status is None
        assert error.message == f"{provider} connection failed"
        _assert_clean(error)


@pytest.fixture(params=list(MODELS))
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeProviderServer]:
    server: FakeProviderServer = (
        FakeLLMServer() if request.param == "openai" else FakeAnthropicServer()
    )
    async with server:
        yield server


def _request(fake: FakeProviderServer, **extra: object) -> LLMRequest:
    model = MODELS["anthropic" if isinstance(fake, FakeAnthropicServer) else "openai"]
    return LLMRequest(
        model,
        [{"role": "user", "content": "hi"}],
        api_base=fake.base_url,
        api_key="k",
        **extra,  # type: ignore[arg-type]
    )


def _idle_settings(idle: float) -> Settings:
    return Settings(_env_file=None, llm_timeout=60.0, llm_stream_idle_timeout=idle)  # type: ignore[call-arg]


async def test_stream_idle_mid_way(fake: FakeProviderServer) -> None:
    """The provider stops sending after the first words: the stream ends with a timeout, retried,
    and the provider sees the connection go away."""
    first_text = 2 if isinstance(fake, FakeAnthropicServer) else 1
    provider = "anthropic" if isinstance(fake, FakeAnthropicServer) else "openai"
    for number, client in enumerate(_clients(_idle_settings(0.3)), start=1):
        fake.enqueue(Reply(text="one two three four", hang_after=first_text + 2))
        events, error = await _outcome(client, _request(fake), stream=True)
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "one two "
        assert type(error) is ProviderTimeoutError, (type(client).__name__, error)
        assert error.retryable and error.to_dict()["code"] == "timeout"
        assert error.message == f"{provider} sent nothing for 0.3 s"
        async with asyncio.timeout(10):
            await fake.wait_for_disconnects(number)


async def test_stream_idle_before_the_first_chunk(fake: FakeProviderServer) -> None:
    for client in _clients(_idle_settings(0.3)):
        fake.enqueue(Reply(text="late", ttft=30.0))
        events, error = await _outcome(client, _request(fake), stream=True)
        assert events == []
        assert type(error) is ProviderTimeoutError, (type(client).__name__, error)


async def test_a_slow_but_steady_stream_is_not_idle(fake: FakeProviderServer) -> None:
    """Idle is per wait, not per stream: words every 50 ms for longer than the idle limit."""
    words = [f"w{i} " for i in range(16)]
    for client in _clients(_idle_settings(0.5)):
        fake.enqueue(Reply(text=words, token_delay=0.05))
        events, error = await _outcome(client, _request(fake), stream=True)
        assert error is None
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "".join(words)


async def test_total_timeout_with_a_steady_stream(fake: FakeProviderServer) -> None:
    """The request's timeout bounds the whole call, however steadily the provider streams."""
    words = [f"w{i} " for i in range(200)]
    settings = _idle_settings(5.0)
    for client in _clients(settings):
        fake.enqueue(Reply(text=words, token_delay=0.02))
        events, error = await _outcome(client, _request(fake, timeout=0.5), stream=True)
        assert type(error) is ProviderTimeoutError, (type(client).__name__, error)
        assert 0 < len(events) < len(words)


async def test_watchdog_counts_only_waits() -> None:
    """A consumer busy longer than the idle limit between reads is not a stalled provider."""
    loop = asyncio.get_running_loop()
    with StreamWatchdog("openai", idle=0.05, total=None) as watchdog:
        busy = asyncio.Event()
        loop.call_later(0.3, busy.set)
        await busy.wait()  # not waiting on the provider: no timeout
        watchdog.wait()
        stalled = loop.create_future()
        try:
            await stalled  # the provider never answers
        except asyncio.CancelledError:
            assert watchdog.expired()
            error = watchdog.error()
        else:  # pragma: no cover
            raise AssertionError("the watchdog did not fire")
    assert isinstance(error, ProviderTimeoutError)
    assert error.message == "openai sent nothing for 0.05 s"


async def test_watchdog_leaves_other_cancellations_alone() -> None:
    with StreamWatchdog("openai", idle=30, total=None) as watchdog:
        watchdog.wait()
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().call_soon(task.cancel)
        with pytest.raises(asyncio.CancelledError):
            try:
                await asyncio.get_running_loop().create_future()
            except asyncio.CancelledError:
                assert not watchdog.expired()
                raise
        task.uncancel()
