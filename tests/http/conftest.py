"""Fixtures of the HTTP tests: a real SQLite runtime, the fake LLM server, an aiohttp client."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from opencode_api.actors import Runtime
from opencode_api.http import create_app
from opencode_api.settings import Settings
from opencode_api.store._factory import open_store
from opencode_api.testing import FakeLLMServer

JWT_SECRET = "test-secret-" + "k" * 60

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


# LiteLLM makes pydantic warn "Items ... are using the `ReadOnly` qualifier" on first use of some
# of its modules; pyproject ignores only the singular "... is using ...", so a title or a turn that
# happens to be that first use fails under filterwarnings=error. Remove once pyproject matches both.
READONLY_WARNING = "ignore:.*using the .ReadOnly. qualifier:UserWarning"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/http/" in item.nodeid:
            item.add_marker(pytest.mark.filterwarnings(READONLY_WARNING))


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(tokens=5) as server:
        yield server


@pytest.fixture
def make_settings(tmp_path: Path, fake: FakeLLMServer) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / 'opencode.db'}",
            "openai_api_base": fake.base_url,
            "openai_api_key": "sk-test",
            "default_model": "openai/gpt-4o-mini",
            "sse_heartbeat": 5.0,
            "sse_write_timeout": 2.0,
            "shutdown_grace": 2.0,
            "llm_max_retries": 0,
            "session_idle_ttl": 600.0,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return build


async def open_runtime(settings: Settings) -> Runtime:
    store = open_store(settings.resolved_database_url())
    await store.open()
    runtime = Runtime(settings, store)
    await runtime.start()
    return runtime


async def close_runtime(runtime: Runtime) -> None:
    try:
        await runtime.close(0.5)
    finally:
        await runtime.store.close()


@pytest.fixture
async def make_client(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> AsyncIterator[ClientFactory]:
    runtimes: list[Runtime] = []

    async def build(**overrides: Any) -> TestClient[web.Request, web.Application]:
        settings = make_settings(**overrides)
        runtime = await open_runtime(settings)
        runtimes.append(runtime)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(
            create_app(settings, runtime=runtime)
        )
        return client

    yield build
    for runtime in runtimes:
        await close_runtime(runtime)


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[web.Request, web.Application]:
    return await make_client()


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def hs256_token(sub: str = "user-a", **claims: Any) -> str:
    payload: dict[str, Any] = {"sub": sub, "aud": "authenticated", "exp": int(time.time()) + 600}
    payload.update(claims)
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def parse_sse(text: str) -> list[dict[str, str]]:
    """SSE frames as dicts of their fields (``id``, ``event``, ``data``); comments dropped."""
    frames: list[dict[str, str]] = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = fields[name] + "\n" + value if name in fields else value
        if fields:
            frames.append(fields)
    return frames


async def read_frame(response: Any) -> dict[str, str]:
    """The next SSE frame of a streaming response, skipping comments (``: ping``)."""
    buffer = ""
    while True:
        line = (await response.content.readline()).decode()
        if not line:
            raise EOFError("stream ended")
        buffer += line
        if buffer.endswith("\n\n"):
            frames = parse_sse(buffer)
            if frames:
                return frames[0]
            buffer = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_listening(process: asyncio.subprocess.Process, count: int = 1) -> None:
    """Until ``count`` server processes logged that they listen (read from the child's stderr,
    which must be a pipe; a process that exits first fails the wait)."""
    assert process.stderr is not None
    seen = 0
    while seen < count:
        line = await asyncio.wait_for(process.stderr.readline(), 60)
        if not line:
            raise RuntimeError("the server exited before it listened")
        if b"server listening" in line:
            seen += 1
