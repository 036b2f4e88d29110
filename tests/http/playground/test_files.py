"""The playground's files as the server serves them: the page at ``GET /``, its modules and the
vendored libraries, typed, cached and behind the server password."""

from __future__ import annotations

import re

from opencode_api.http._playground import FILES, PAGE_CSP, PLAYGROUND_DIR
from tests.http.conftest import (
    ClientFactory,
    basic,
)
from tests.http.playground.conftest import PASSWORD


def test_the_vendored_libraries_are_the_declared_releases() -> None:
    readme = (PLAYGROUND_DIR / "README.md").read_text(encoding="utf-8")
    marked = (PLAYGROUND_DIR / "marked-18.3.0.esm.js").read_text(encoding="utf-8")
    purify = (PLAYGROUND_DIR / "purify-3.5.0.es.mjs").read_text(encoding="utf-8")
    assert "marked v18.3.0" in marked
    assert "DOMPurify 3.5.0" in purify
    for name in ("marked-18.3.0.esm.js", "purify-3.5.0.es.mjs", "LICENSE.marked"):
        assert name in readme, name
    assert (PLAYGROUND_DIR / "LICENSE.dompurify").is_file()


async def test_the_page_and_its_files_are_served_typed_and_cached(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    page = await client.get("/")
    assert page.status == 200
    assert page.content_type == "text/html"
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    html = await page.text()
    # Every URL of the page is relative: it works behind a path prefix, and no CDN.
    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert all(not url.startswith(("/", "http")) and "//" not in url for url in urls), urls
    assert '<meta name="opencode-password" content="">' in html
    for name, (_, content_type) in FILES.items():
        response = await client.get(f"/playground/{name}")
        assert response.status == 200, name
        assert response.headers["Content-Type"] == content_type
        vendored = name.startswith(("marked-", "purify-"))
        cache = "max-age=31536000, immutable" if vendored else "no-cache"
        assert response.headers["Cache-Control"] == cache, name
    for missing in ("nope.js", "README.md", "..%2F_playground.py", "LICENSE.marked"):
        response = await client.get(f"/playground/{missing}")
        assert response.status == 404, missing
        assert (await response.json())["error"]["type"] == "not_found"


async def test_the_page_needs_the_server_password(make_client: ClientFactory) -> None:
    client = await make_client(opencode_server_password=PASSWORD)
    assert (await client.get("/")).status == 401
    assert (await client.get("/playground/app.js")).status == 401
    page = await client.get("/", headers=basic("opencode", PASSWORD))
    assert page.status == 200
    assert '<meta name="opencode-password" content="1">' in await page.text()
