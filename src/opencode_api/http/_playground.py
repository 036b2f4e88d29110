"""The web playground: a chat page at ``GET /`` and its files at ``GET /playground/{file}``.

Plain HTML, CSS and JavaScript modules from ``playground/`` in the package (no build step, no
CDN); the markdown and sanitizer libraries are vendored there (versions and update steps:
``playground/README.md``). The page calls the API with relative URLs, so it works behind a path
prefix too.
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from aiohttp import web

from opencode_api._version import __version__
from opencode_api.http._keys import SETTINGS
from opencode_api.http._openapi import RouteSpec, route

PLAYGROUND_DIR = Path(__file__).with_name("playground")

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# Only these files are served: a fixed list read once, so no request path reaches the disk.
FILES: dict[str, tuple[Path, str]] = {
    path.name: (path, _TYPES[path.suffix])
    for path in sorted(PLAYGROUND_DIR.iterdir())
    if path.suffix in _TYPES
}
# Vendored libraries carry their version in the file name: cached for a year. The page's own
# modules import each other by plain names, so they are revalidated (ETag) on every load instead:
# an upgraded server never runs a stale mix.
_VERSIONED_CACHE = "max-age=31536000, immutable"
_OWN_CACHE = "no-cache"
# Model output is untrusted: even if something slipped past the sanitizer, no inline script runs,
# and no remote image can carry data away (markdown images from other hosts do not load). blob:
# images are the page's own: a message's files, fetched with the page's credentials.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


_VENDORED = re.compile(r"-\d+\.\d+\.\d+\.")
# Read once: the page is small and never changes while the server runs.
_INDEX_HTML = (PLAYGROUND_DIR / "index.html").read_text(encoding="utf-8")


@route(
    "GET",
    "/",
    name="playground",
    summary="The web playground (a chat page for this server)",
    tag="service",
    text="text/html",
)
async def playground(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    # What the page needs to know to authenticate; nothing secret (the page is already behind the
    # server password when there is one).
    jwt = settings.supabase_jwt_secret is not None or bool(settings.supabase_url)
    auth = {
        "password": "1" if settings.opencode_server_password is not None else "",
        "jwt": ("required" if settings.auth_required else "optional") if jwt else "",
        "version": __version__,
    }
    meta = "\n".join(
        f'  <meta name="opencode-{key}" content="{escape(value)}">' for key, value in auth.items()
    )
    html = _INDEX_HTML.replace("  <!-- server settings -->", meta, 1)
    return web.Response(
        text=html,
        content_type="text/html",
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


@route(
    "GET",
    "/playground/{file}",
    name="playground_file",
    summary="A file of the web playground (JavaScript module or stylesheet)",
    tag="service",
    text="text/*",
    errors=(404,),
)
async def playground_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["file"]
    found = FILES.get(name)
    if found is None:
        raise web.HTTPNotFound(text="no such playground file")
    path, content_type = found
    cache = _VERSIONED_CACHE if _VENDORED.search(name) else _OWN_CACHE
    return web.FileResponse(path, headers={"Content-Type": content_type, "Cache-Control": cache})


ROUTES: list[RouteSpec] = [playground, playground_file]
