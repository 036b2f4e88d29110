"""webfetch against local servers: conversion, size cap, timeout, redirects, SSRF refusals."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Sequence

import pytest
from aiohttp.test_utils import TestServer

from opencode_api.tools import ToolRegistry, WebFetchTool
from tests.tools.fakes import FakeContext
from tests.tools.servers import CountingTarget, pages_app

# The page server listens on 127.0.0.1 like everything in tests; it is reached through this
# allowlisted name, so 127.0.0.1 itself stays forbidden and redirects to it can be tested.
PAGES = "pages.test"


async def fake_dns(host: str, family: int) -> Sequence[str]:
    table = {
        PAGES: ["127.0.0.1"],
        "localhost": ["127.0.0.1", "::1"],
        "evil.example": ["127.0.0.1"],  # a public-looking name resolving to loopback
        "metadata.example": ["169.254.169.254"],
    }
    if host not in table:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return table[host]


@pytest.fixture
async def pages() -> AsyncIterator[TestServer]:
    server = TestServer(pages_app(), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def target() -> AsyncIterator[CountingTarget]:
    server = CountingTarget()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def registry() -> AsyncIterator[ToolRegistry]:
    tool = WebFetchTool(max_bytes=5 * 1024 * 1024, allow_hosts=[PAGES], lookup=fake_dns)
    registry = ToolRegistry([tool])
    yield registry
    await registry.aclose()


def page(server: TestServer, path: str) -> str:
    return f"http://{PAGES}:{server.port}{path}"


async def fetch(
    registry: ToolRegistry, ctx: FakeContext, url: str, **extra: object
) -> tuple[str, bool]:
    result = await registry.execute("c1", "webfetch", json.dumps({"url": url, **extra}), ctx)
    return result.text, result.is_error


async def test_html_as_markdown(
    registry: ToolRegistry, ctx: FakeContext, pages: TestServer
) -> None:
    text, is_error = await fetch(registry, ctx, page(pages, "/html"))
    assert not is_error
    assert "# Welcome" in text
    assert "Hello **world**" in text
    assert "[link](/docs)" in text
    assert "- first\n- second" in text
    for dropped in ("stealCookies", ".secret", "enable javascript"):
        assert dropped not in text


async def test_html_as_text(registry: ToolRegistry, ctx: FakeContext, pages: TestServer) -> None:
    text, is_error = await fetch(registry, ctx, page(pages, "/html"), format="text")
    assert not is_error
    assert text == "Doc\nWelcome\nHello world, this is a link.\nfirst\nsecond"


async def test_html_raw(registry: ToolRegistry, ctx: FakeContext, pages: TestServer) -> None:
    text, is_error = await fetch(registry, ctx, page(pages, "/html"), format="html")
    assert not is_error
    assert "<script>stealCookies()</script>" in text


@pytest.mark.parametrize("fmt", ["markdown", "text", "html"])
async def test_plain_text_is_returned_as_is(
    registry: ToolRegistry, ctx: FakeContext, pages: TestServer, fmt: str
) -> None:
    text, is_error = await fetch(registry, ctx, page(pages, "/text"), format=fmt)
    assert (text, is_error) == ("just plain text\n  with spacing", False)


async def test_declared_charset(
    registry: ToolRegistry, ctx: FakeContext, pages: TestServer
) -> None:
    assert await fetch(registry, ctx, page(pages, "/latin1")) == ("café", False)


async def test_too_large_by_content_length(
    registry: ToolRegistry, ctx: FakeContext, pages: TestServer
) -> None:
    text, is_error = await fetch(registry, ctx, page(pages, "/big"))
    assert is_error
    assert text == "response too large: 6291456 bytes (limit 5242880 bytes)"


async def test_too_large_while_streaming(
    registry: ToolRegistry, ctx: FakeContext, pages: TestServer
) -> None:
    text, is_error = await fetch(registry, ctx, page(pages, "/big-stream"))
    assert is_error
    assert text == "response too large: more than 5242880 bytes"


async def test_slow_page_times_out(
    registry: ToolRegistry, ctx: FakeContext, pages: TestServer
) -> None:
    text, is_error = await fetch(registry, ctx, page(pages, "/slow"), timeout=0.2)
    assert (text, is_error) == ("tool webfetch timed out after 0.2 s", True)


async def test_timeout_is_clamped_to_120_s() -> None:
    tool = WebFetchTool()
    assert tool.timeout_for(tool.params.model_validate({"url": "http://x", "timeout": 999})) == 120
    assert tool.timeout_for(tool.params.model_validate({"url": "http://x"})) == 30


async def test_redirect_chain(registry: ToolRegistry, ctx: FakeContext, pages: TestServer) -> None:
    result = await registry.execute(
        "c1", "webfetch", f'{{"url": "{page(pages, "/redirect/10")}"}}', ctx
    )
    assert (result.text, result.is_error) == ("just plain text\n  with spacing", False)
    assert result.metadata is not None
    assert result.metadata["url"] == page(pages, "/text")


async def test_too_many_redirects(
    registry: ToolRegistry, ctx: FakeContext, pages: TestServer
) -> None:
    assert await fetch(registry, ctx, page(pages, "/loop")) == (
        "too many redirects (more than 10)",
        True,
    )


async def test_http_error_status(
    registry: ToolRegistry, ctx: FakeContext, pages: TestServer
) -> None:
    text, is_error = await fetch(registry, ctx, page(pages, "/missing"))
    assert is_error and text.endswith("failed with status code: 404")


async def test_binary_content_is_refused(
    registry: ToolRegistry, ctx: FakeContext, pages: TestServer
) -> None:
    text, is_error = await fetch(registry, ctx, page(pages, "/image"))
    assert is_error and "binary content (image/png" in text


async def test_utf8_octet_stream_is_text(
    registry: ToolRegistry, ctx: FakeContext, pages: TestServer
) -> None:
    assert await fetch(registry, ctx, page(pages, "/octets")) == ("readable after all", False)


async def test_unresolvable_host(registry: ToolRegistry, ctx: FakeContext) -> None:
    text, is_error = await fetch(registry, ctx, "http://no-such-host.example/")
    assert is_error and "cannot resolve host no-such-host.example" in text


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),
        ("[::1]", "loopback"),
        ("[fc00::1]", "private"),
        ("[fd00:ec2::254]", "private"),
        ("[::ffff:127.0.0.1]", "loopback (embedded in ::ffff:7f00:1)"),
        ("2130706433", "loopback"),
        ("0x7f.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("evil.example", "loopback"),
        ("metadata.example", "link-local"),
    ],
)
async def test_ssrf_refused_without_contact(
    registry: ToolRegistry, ctx: FakeContext, target: CountingTarget, host: str, reason: str
) -> None:
    text, is_error = await fetch(registry, ctx, f"http://{host}:{target.port}/secret")
    assert is_error
    assert text.startswith("refusing to fetch ")
    assert f": {reason} address" in text
    assert target.connections == 0


async def test_localhost_with_system_dns_is_refused(
    ctx: FakeContext, target: CountingTarget
) -> None:
    registry = ToolRegistry([WebFetchTool()])  # the real getaddrinfo, for a name it answers locally
    try:
        text, is_error = await fetch(registry, ctx, f"http://localhost:{target.port}/")
    finally:
        await registry.aclose()
    assert is_error and "refusing to fetch localhost" in text
    assert target.connections == 0


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1:{port}/secret", "http://evil.example:{port}/", "http://2130706433:{port}/"],
    ids=["ip-literal", "name-resolving-to-loopback", "decimal-ip"],
)
async def test_redirect_into_a_private_address_is_refused(
    registry: ToolRegistry,
    ctx: FakeContext,
    pages: TestServer,
    target: CountingTarget,
    location: str,
) -> None:
    url = page(pages, "/to") + "?url=" + location.format(port=target.port)
    text, is_error = await fetch(registry, ctx, url)
    assert is_error and "refusing to fetch" in text and "loopback address" in text
    assert target.connections == 0


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.0/8", "loopback.test"])
async def test_allowlist_lets_one_through(
    ctx: FakeContext, target: CountingTarget, entry: str
) -> None:
    async def dns(host: str, family: int) -> Sequence[str]:
        return ["127.0.0.1"]

    registry = ToolRegistry([WebFetchTool(allow_hosts=[entry], lookup=dns)])
    host = "loopback.test" if entry == "loopback.test" else "127.0.0.1"
    try:
        result = await fetch(registry, ctx, f"http://{host}:{target.port}/")
    finally:
        await registry.aclose()
    assert result == ("internal-data!", False)
    assert target.connections == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http and https URLs can be fetched, not 'file'"),
        ("gopher://example.com/", "not 'gopher'"),
        ("example.com/page", "must start with http:// or https://"),
    ],
)
async def test_bad_urls(registry: ToolRegistry, ctx: FakeContext, url: str, message: str) -> None:
    text, is_error = await fetch(registry, ctx, url)
    assert is_error and message in text
