"""Session actor fixtures: a Runtime on a real SQLite file, a scripted provider over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from opencode_api.actors import Runtime
from opencode_api.settings import Settings
from opencode_api.testing import FakeLLMServer


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(tokens=5) as server:
        yield server


def make_settings(tmp_path: Path, fake: FakeLLMServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'opencode.db'}",
        "openai_api_base": fake.base_url,
        "openai_api_key": "sk-test",
        "default_model": "openai/gpt-4o-mini",
        "llm_fast_path": "off",
        "auto_title": False,
        "llm_retry_base_delay": 0.001,
        "llm_retry_max_delay": 0.01,
        "shutdown_grace": 2.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path, fake: FakeLLMServer) -> Settings:
    return make_settings(tmp_path, fake)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with Runtime.open(settings) as rt:
        yield rt
