"""Fixtures for the LLM layer: the fake providers and both clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from opencode_api.llm._fast_client import FastLLMClient
from opencode_api.llm._litellm_client import LiteLLMClient
from opencode_api.settings import Settings
from opencode_api.testing import FakeAnthropicServer, FakeLLMServer


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, llm_timeout=10.0)  # type: ignore[call-arg]


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[FakeAnthropicServer]:
    async with FakeAnthropicServer() as fake:
        yield fake


@pytest.fixture
async def fast_client(settings: Settings) -> AsyncIterator[FastLLMClient]:
    client = FastLLMClient(settings)
    yield client
    await client.aclose()


@pytest.fixture
def litellm_client(settings: Settings) -> LiteLLMClient:
    return LiteLLMClient(settings)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest re-applies filterwarnings=error per test, over the filter LiteLLM's import installs.
    mark = pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning")
    for item in items:
        if "tests/llm/" in str(item.path).replace("\\", "/"):
            item.add_marker(mark)
