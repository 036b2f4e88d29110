"""websearch: Exa's API through a local stand-in, the ddgs backend with a fake search function."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from opencode_api.settings import Settings
from opencode_api.tools import (
    DdgsBackend,
    ExaBackend,
    ToolRegistry,
    WebSearchTool,
    default_registry,
)
from tests.tools.fakes import FakeContext

EXA_RESULTS = {
    "requestId": "req_1",
    "resolvedSearchType": "neural",
    "results": [
        {
            "id": "https://docs.python.org/3/library/asyncio.html",
            "title": "asyncio — Asynchronous I/O",
            "url": "https://docs.python.org/3/library/asyncio.html",
            "publishedDate": "2024-10-07T00:00:00.000Z",
            "author": None,
            "text": "asyncio is a library to write concurrent code\nusing the async/await syntax.",
        },
        {
            "id": "https://example.com/b",
            "title": "Second result",
            "url": "https://example.com/b",
            "highlights": ["first highlight", "second highlight"],
        },
    ],
}


class ExaStandIn:
    """Speaks Exa's ``POST /search``; records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200

    async def search(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((dict(request.headers), body))
        if self.status != 200:
            return web.json_response({"error": "Invalid API key"}, status=self.status)
        return web.json_response(EXA_RESULTS)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/search", self.search)
        return app


@pytest.fixture
async def exa() -> AsyncIterator[tuple[ExaStandIn, str]]:
    stand_in = ExaStandIn()
    server = TestServer(stand_in.app(), host="127.0.0.1")
    await server.start_server()
    yield stand_in, f"http://127.0.0.1:{server.port}"
    await server.close()


async def run_search(tool: WebSearchTool, ctx: FakeContext, arguments: dict[str, Any]) -> Any:
    registry = ToolRegistry([tool])
    try:
        return await registry.execute("c1", "websearch", json.dumps(arguments), ctx)
    finally:
        await registry.aclose()


async def test_exa_request_and_formatting(exa: tuple[ExaStandIn, str], ctx: FakeContext) -> None:
    stand_in, base = exa
    settings = Settings(exa_api_key=SecretStr("k-123"), exa_api_base=base)
    tool = WebSearchTool.from_settings(settings)
    assert isinstance(tool.backend, ExaBackend)
    result = await run_search(tool, ctx, {"query": "python asyncio", "num_results": 2})
    assert not result.is_error
    [(headers, body)] = stand_in.requests
    assert headers["x-api-key"] == "k-123"
    assert headers["Content-Type"].startswith("application/json")
    assert body == {
        "query": "python asyncio",
        "numResults": 2,
        "type": "auto",
        "contents": {"text": {"maxCharacters": 1500}},
    }
    assert result.text == (
        'Search results for "python asyncio":\n\n'
        "1. asyncio — Asynchronous I/O\n"
        "   URL: https://docs.python.org/3/library/asyncio.html\n"
        "   Published: 2024-10-07T00:00:00.000Z\n"
        "   asyncio is a library to write concurrent code using the async/await syntax.\n\n"
        "2. Second result\n"
        "   URL: https://example.com/b\n"
        "   first highlight … second highlight"
    )
    assert result.metadata["backend"] == "exa"


async def test_original_camel_case_parameter_is_accepted(
    exa: tuple[ExaStandIn, str], ctx: FakeContext
) -> None:
    stand_in, base = exa
    tool = WebSearchTool(ExaBackend("k", api_base=base))
    result = await run_search(tool, ctx, {"query": "q", "numResults": 3})
    assert not result.is_error
    assert stand_in.requests[0][1]["numResults"] == 3


@pytest.mark.parametrize("num_results", [0, 21])
async def test_num_results_bounds(ctx: FakeContext, num_results: int) -> None:
    tool = WebSearchTool(DdgsBackend(lambda q, n: []))
    result = await run_search(tool, ctx, {"query": "q", "num_results": num_results})
    assert result.is_error and "num_results" in result.text


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "Exa rejected the API key (HTTP 401); check EXA_API_KEY"),
        (429, "Exa search is rate limited (HTTP 429)"),
        (500, 'Exa search failed with HTTP 500: {"error": "Invalid API key"}'),
    ],
)
async def test_exa_http_errors(
    exa: tuple[ExaStandIn, str], ctx: FakeContext, status: int, message: str
) -> None:
    stand_in, base = exa
    stand_in.status = status
    result = await run_search(WebSearchTool(ExaBackend("k", api_base=base)), ctx, {"query": "q"})
    assert result.is_error and message in result.text


async def test_exa_unreachable(ctx: FakeContext) -> None:
    # A port nobody listens on: bind, note it, close.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = ExaBackend("k", api_base=f"http://127.0.0.1:{port}")
    result = await run_search(WebSearchTool(backend), ctx, {"query": "q"})
    assert result.is_error
    assert f"Exa search backend unreachable at http://127.0.0.1:{port}/search" in result.text


async def test_exa_without_key(ctx: FakeContext) -> None:
    settings = Settings(websearch_backend="exa", exa_api_key=None)
    result = await run_search(WebSearchTool.from_settings(settings), ctx, {"query": "q"})
    assert result.is_error
    assert "EXA_API_KEY is not set" in result.text


def test_auto_without_key_is_ddgs() -> None:
    settings = Settings(websearch_backend="auto", exa_api_key=None)
    assert isinstance(WebSearchTool.from_settings(settings).backend, DdgsBackend)
    assert isinstance(
        WebSearchTool.from_settings(Settings(websearch_backend="ddgs")).backend, DdgsBackend
    )


async def test_ddgs_results(ctx: FakeContext) -> None:
    calls: list[tuple[str, int]] = []

    def search(query: str, max_results: int) -> list[dict[str, Any]]:
        calls.append((query, max_results))
        return [
            {"title": "One", "href": "https://one.example/", "body": "first  body"},
            {"title": "Two", "href": "https://two.example/", "body": ""},
        ]

    result = await run_search(WebSearchTool(DdgsBackend(search)), ctx, {"query": "hello"})
    assert calls == [("hello", 8)]
    assert result.text == (
        'Search results for "hello":\n\n'
        "1. One\n   URL: https://one.example/\n   first body\n\n"
        "2. Two\n   URL: https://two.example/"
    )


async def test_ddgs_failure_is_a_tool_error(ctx: FakeContext) -> None:
    def search(query: str, max_results: int) -> list[dict[str, Any]]:
        raise ConnectionError("network unreachable")

    result = await run_search(WebSearchTool(DdgsBackend(search)), ctx, {"query": "q"})
    assert result.is_error
    assert result.text == ("DuckDuckGo search (ddgs) failed: ConnectionError: network unreachable")


async def test_ddgs_no_results(ctx: FakeContext) -> None:
    def search(query: str, max_results: int) -> list[dict[str, Any]]:
        raise RuntimeError("No results found.")

    result = await run_search(WebSearchTool(DdgsBackend(search)), ctx, {"query": "zzz"})
    assert not result.is_error
    assert result.text.startswith('No results found for "zzz"')


async def test_default_registry_uses_exa_when_keyed(
    exa: tuple[ExaStandIn, str], ctx: FakeContext
) -> None:
    stand_in, base = exa
    registry = default_registry(Settings(exa_api_key=SecretStr("abc"), exa_api_base=base))
    try:
        result = await registry.execute("c1", "websearch", '{"query": "x"}', ctx)
    finally:
        await registry.aclose()
    assert not result.is_error
    assert stand_in.requests[0][0]["x-api-key"] == "abc"
