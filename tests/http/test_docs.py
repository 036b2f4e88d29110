"""The documentation pages: vendored assets served locally, and /docs and /redoc rendered in
headless Chromium (Debian's ``chromium``, driven by Playwright) from the OpenAPI 3.1 document.

Without chromium the browser tests skip, except under ``CI``, where they fail. They leave
screenshots of both pages in the temporary directory (``docs.png``, ``redoc.png``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from opencode_api.http import create_app
from opencode_api.http._service_routes import REDOC_VERSION, STATIC_DIR, SWAGGER_UI_VERSION
from opencode_api.settings import Settings
from tests.http.conftest import JWT_SECRET, ClientFactory, basic, close_runtime, open_runtime

try:
    from playwright.async_api import Browser, Page, async_playwright
except ImportError:  # the dev extra installs it; the browser tests say so when it is missing
    async_playwright = None  # type: ignore[assignment]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ASSETS = [
    ("/docs/static/swagger-ui-bundle.js", "text/javascript"),
    ("/docs/static/swagger-ui.css", "text/css"),
    ("/redoc/redoc.standalone.js", "text/javascript"),
]
# Operations the rendered pages must show: (path, summary).
OPERATIONS = [
    ("/session/{id}/message", "Send a message; the turn's events stream back as SSE"),
    ("/provider/{id}/model", "A provider's models"),
    ("/health", "Liveness check (no auth)"),
]
PASSWORD = "s3cret"

ServerFactory = Callable[..., Awaitable[str]]


def test_vendored_files_are_the_declared_releases() -> None:
    swagger = (STATIC_DIR / "swagger-ui-bundle.js").read_text(encoding="utf-8")
    assert f'PACKAGE_VERSION:"{SWAGGER_UI_VERSION}"' in swagger
    notice = (STATIC_DIR / "redoc.standalone.js.LICENSE.txt").read_text(encoding="utf-8")
    assert f'Version: "{REDOC_VERSION}"' in notice
    assert f'"{REDOC_VERSION}"' in (STATIC_DIR / "redoc.standalone.js").read_text(encoding="utf-8")
    for name in ("LICENSE.swagger-ui", "NOTICE.swagger-ui", "LICENSE.redoc", "README.md"):
        assert (STATIC_DIR / name).is_file(), name


@pytest.mark.parametrize("prefix", ["", "/api"], ids=["at-root", "behind-a-path-prefix"])
async def test_pages_reach_their_assets_by_relative_urls(
    aiohttp_client: Any, make_settings: Callable[..., Settings], prefix: str
) -> None:
    runtime = await open_runtime(settings := make_settings())
    try:
        app = create_app(settings, runtime=runtime)
        if prefix:
            # What a reverse proxy serving the API under /api looks like to the browser.
            parent = web.Application()
            parent.add_subapp(prefix, app)
            app = parent
        client = await aiohttp_client(app)
        for page, version in (("docs", SWAGGER_UI_VERSION), ("redoc", REDOC_VERSION)):
            page_url = f"{prefix}/{page}"
            response = await client.get(page_url)
            assert response.status == 200
            assert response.headers["Content-Security-Policy"] == "img-src 'self' data:"
            html = await response.text()
            assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', html))
            urls = re.findall(r'(?:src|href)="([^":]+)"', html)
            assert urls and all(url.endswith(f"?v={version}") for url in urls)
            for url in urls:
                asset = await client.get(urljoin(page_url, url))
                assert asset.status == 200, url
            redirect = await client.get(f"{page_url}/", allow_redirects=False)
            assert redirect.status == 301
            assert urljoin(f"{page_url}/", redirect.headers["Location"]) == page_url
    finally:
        await close_runtime(runtime)


@pytest.mark.parametrize(("path", "content_type"), ASSETS, ids=[path for path, _ in ASSETS])
async def test_assets_are_typed_and_cached_for_a_year(
    make_client: ClientFactory, path: str, content_type: str
) -> None:
    client = await make_client()
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == content_type
    assert response.headers["Cache-Control"] == "max-age=31536000, immutable"
    etag = response.headers["ETag"]
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status == 304


async def test_assets_need_the_server_password_and_nothing_else(
    make_client: ClientFactory,
) -> None:
    with_password = await make_client(opencode_server_password=PASSWORD)
    token_required = await make_client(supabase_jwt_secret=JWT_SECRET, auth_required=True)
    for path, _ in ASSETS:
        assert (await with_password.get(path)).status == 401
        assert (await with_password.get(path, headers=basic("opencode", PASSWORD))).status == 200
        assert (await token_required.get(path)).status == 200, path


def chromium() -> str:
    """Debian's chromium; skips when it (or Playwright) is missing, fails instead under CI."""
    path = shutil.which("chromium")
    if path is None:
        missing = "chromium is not installed (apt-get install chromium)"
    elif async_playwright is None:
        missing = "playwright is not installed (pip install -e '.[dev]')"
    else:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{missing}: CI must render the documentation pages")
    pytest.skip(missing)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def serve(make_settings: Callable[..., Settings]) -> AsyncIterator[ServerFactory]:
    """Starts the app on a real port (a browser needs one); returns its base URL."""
    started: list[tuple[Any, TestServer]] = []

    async def start(**overrides: Any) -> str:
        settings = make_settings(**overrides)
        runtime = await open_runtime(settings)
        server = TestServer(create_app(settings, runtime=runtime), host="127.0.0.1")
        started.append((runtime, server))
        await server.start_server()
        return str(server.make_url("")).rstrip("/")

    yield start
    for runtime, server in reversed(started):
        await server.close()
        await close_runtime(runtime)


async def render(page: Page, url: str, ready: str, failed: str) -> None:
    """Load ``url`` and wait until ``ready`` (a selector) or the UI's ``failed`` text shows."""
    await page.goto(url)
    outcome = page.locator(ready).or_(page.get_by_text(failed))
    await outcome.first.wait_for(state="attached")
    assert await page.get_by_text(failed).count() == 0, f"{url}: {failed}"


@pytest.mark.parametrize("password", [None, PASSWORD], ids=["open", "server-password"])
async def test_swagger_ui_and_redoc_render_the_api(
    browser: Browser, serve: ServerFactory, password: str | None
) -> None:
    base = await serve(opencode_server_password=password)
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900},
        http_credentials={"username": "opencode", "password": password} if password else None,
    )
    # Every response the pages received came from the server (ReDoc's search worker is a blob
    # of the page's own origin): no CDN, no fonts, no logo.
    elsewhere: list[str] = []
    ours = (f"{base}/", f"blob:{base}/")
    context.on(
        "response",
        lambda response: None if response.url.startswith(ours) else elsewhere.append(response.url),
    )
    page = await context.new_page()
    shots = Path(tempfile.gettempdir())

    # Swagger UI 4 showed "Unable to render this definition" for an OpenAPI 3.1 document.
    await render(page, f"{base}/docs", ".opblock", "Unable to render this definition")
    for path, summary in OPERATIONS:
        block = page.locator(f'.opblock-summary-path[data-path="{path}"]')
        await block.first.wait_for()
        assert await page.get_by_text(summary, exact=True).count() > 0, summary
    await page.screenshot(path=shots / "docs.png")

    await render(page, f"{base}/redoc", "h2", "Something went wrong")
    for path, summary in OPERATIONS:
        await page.locator("h2", has_text=summary).first.wait_for()
        assert await page.get_by_text(path, exact=True).count() > 0, path
    await page.screenshot(path=shots / "redoc.png")

    await context.close()
    assert elsewhere == []
