"""The playground's test harness: a real server on a port, headless Chromium (Debian's
``chromium``, through Playwright), a page object, the scripted answers the tests use.

Without chromium the browser tests skip, except under ``CI``, where they fail. They save
screenshots of the main views into ``$PLAYGROUND_SCREENSHOTS`` when it is set (the README's come
from ``PLAYGROUND_SCREENSHOTS=docs/screenshots``), else into the test's temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from opencode_api.http import create_app
from opencode_api.settings import Settings
from tests.http.conftest import (
    close_runtime,
    open_runtime,
)
from tests.http.test_docs import CHROMIUM_ARGS, chromium

try:
    from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect
except ImportError:  # the dev extra installs it; chromium() says so when it is missing
    async_playwright = None  # type: ignore[assignment]


PASSWORD = "s3cret"
DESKTOP: ViewportSize = {"width": 1280, "height": 820}
PHONE: ViewportSize = {"width": 390, "height": 844}
QUESTIONS = {
    "questions": [
        {
            "question": "Which color should the button be?",
            "header": "Color",
            "options": [
                {"label": "Red", "description": "warm and loud"},
                {"label": "Blue", "description": "calm"},
            ],
        }
    ]
}
TODOS = {
    "todos": [
        {"id": "1", "content": "Read the API contract", "status": "completed", "priority": "high"},
        {"id": "2", "content": "Sketch the page", "status": "in_progress", "priority": "medium"},
        {"id": "3", "content": "Test it in a browser", "status": "pending", "priority": "low"},
    ]
}
ANSWER = (
    "Here is a **plan**:\n\n1. Parse the stream\n2. Render it\n\n```python\nprint('hello')\n```\n"
)
HOSTILE = (
    'Hi <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> '
    '<a href="javascript:window.__pwned=3">click me</a> '
    '<svg onload="window.__pwned=4"></svg> <iframe srcdoc="<script>parent.__pwned=5</script>">'
    "</iframe> **still markdown**"
)

ServerFactory = Callable[..., Awaitable[str]]


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
def apps() -> dict[str, web.Application]:
    """The apps ``serve`` started, by base URL."""
    return {}


@pytest.fixture
async def serve(
    make_settings: Callable[..., Settings], apps: dict[str, web.Application]
) -> AsyncIterator[ServerFactory]:
    """Starts the app on a real port (a browser needs one); returns its base URL."""
    started: list[tuple[Any, TestServer]] = []

    async def start(**overrides: Any) -> str:
        settings = make_settings(**overrides)
        runtime = await open_runtime(settings)
        app = create_app(settings, runtime=runtime)
        server = TestServer(app, host="127.0.0.1")
        started.append((runtime, server))
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        apps[base] = app
        return base

    yield start
    for runtime, server in reversed(started):
        await server.close()
        await close_runtime(runtime)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    wanted = os.environ.get("PLAYGROUND_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Playground:
    """One browser page on the playground, failing the test on any script error it logs."""

    def __init__(self, page: Page, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )

    async def open(self) -> None:
        await self.page.goto(f"{self.base}/")
        await expect(self.page.locator("#connection")).to_have_text("live")

    async def new_session(self) -> None:
        await self.page.get_by_role("button", name="+ New session").click()
        await expect(self.page.locator("#title-input")).to_be_enabled()

    async def send(self, text: str) -> None:
        box = self.page.get_by_label("Message", exact=True)
        await box.fill(text)
        await box.press("Enter")

    def assistant(self, index: int = -1) -> Any:
        messages = self.page.locator("article.msg.assistant")
        return messages.last if index == -1 else messages.nth(index)

    async def idle(self) -> None:
        await expect(self.page.locator("#session-status")).to_be_hidden()

    def check(self, *expected: str) -> None:
        """No script error, save the ``expected`` ones (substrings of the console's messages)."""
        errors = [error for error in self.errors if not any(text in error for text in expected)]
        assert errors == [], "\n".join(errors)


async def playground(
    browser: Browser, base: str, viewport: ViewportSize = DESKTOP, **context: Any
) -> Playground:
    opened = await browser.new_context(
        viewport=viewport,
        reduced_motion="reduce",
        **context,
    )
    return Playground(await opened.new_page(), base)
