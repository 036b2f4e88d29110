"""Service routes: health, Prometheus metrics, the OpenAPI document, Swagger UI and ReDoc.

Swagger UI and ReDoc are vendored release files in ``static/`` (versions and how to update them:
``static/README.md``), served by the app itself: the pages need no CDN and no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from opencode_api._version import __version__
from opencode_api.http._keys import METRICS
from opencode_api.http._openapi import Handler, RouteSpec, route
from opencode_api.http._schemas import HealthResponse

OPENAPI = web.AppKey("openapi", dict[str, Any])

# The vendored releases; asset URLs carry the version, so a cached copy is never stale.
SWAGGER_UI_VERSION = "5.35.0"
REDOC_VERSION = "2.5.4"
STATIC_DIR = Path(__file__).with_name("static")

_JS = "text/javascript; charset=utf-8"
_CSS = "text/css; charset=utf-8"
# (URL path, file in static/, content type); the URLs predate the vendoring.
_ASSETS = (
    ("/docs/static/swagger-ui-bundle.js", "swagger-ui-bundle.js", _JS),
    ("/docs/static/swagger-ui.css", "swagger-ui.css", _CSS),
    ("/redoc/redoc.standalone.js", "redoc.standalone.js", _JS),
)
# Versioned URLs: a year, and no revalidation. Not "public": behind the server password, shared
# caches keep out of it.
_ASSET_CACHE = "max-age=31536000, immutable"
# ReDoc's sidebar footer shows a logo from cdn.redoc.ly; refusing remote images keeps the pages
# off the network (ReDoc drops the image when it fails to load).
_PAGE_CSP = "img-src 'self' data:"

# Asset URLs are relative to the page (/docs, /redoc), so they work behind a path prefix.
_SWAGGER_HTML = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>opencode-api: Swagger UI</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="docs/static/swagger-ui.css?v={SWAGGER_UI_VERSION}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/static/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      validatorUrl: null
    }});
  </script>
</body>
</html>
"""

_REDOC_HTML = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>opencode-api: ReDoc</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" href="data:,">
  <style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
  <redoc spec-url="openapi.json"></redoc>
  <script src="redoc/redoc.standalone.js?v={REDOC_VERSION}"></script>
</body>
</html>
"""


@route(
    "GET",
    "/health",
    name="health",
    summary="Liveness check (no auth)",
    tag="service",
    response=HealthResponse,
)
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


@route(
    "GET",
    "/openapi.json",
    name="openapi",
    summary="This OpenAPI 3.1 document",
    tag="service",
)
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


@route(
    "GET",
    "/docs",
    name="swagger_ui",
    summary="Swagger UI",
    tag="service",
    text="text/html",
)
async def docs(request: web.Request) -> web.Response:
    return _page(_SWAGGER_HTML)


@route("GET", "/redoc", name="redoc", summary="ReDoc", tag="service", text="text/html")
async def redoc(request: web.Request) -> web.Response:
    return _page(_REDOC_HTML)


@route(
    "GET",
    "/metrics",
    name="metrics",
    summary="Prometheus metrics",
    tag="service",
    text="text/plain",
)
async def metrics(request: web.Request) -> web.Response:
    return request.app[METRICS].response()


def _page(html: str) -> web.Response:
    return web.Response(
        text=html, content_type="text/html", headers={"Content-Security-Policy": _PAGE_CSP}
    )


def _asset(filename: str, content_type: str) -> Handler:
    path = STATIC_DIR / filename

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            path, headers={"Content-Type": content_type, "Cache-Control": _ASSET_CACHE}
        )

    return handler


def _to_page(page: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        # From /docs/ the page's relative asset URLs would resolve under /docs/docs/. Relative
        # Location: ../docs is /docs again, behind any path prefix.
        raise web.HTTPMovedPermanently(f"../{page}")

    return handler


def add_static(app: web.Application) -> None:
    """Asset routes and the trailing-slash redirects (not part of the API description)."""
    for url, filename, content_type in _ASSETS:
        app.router.add_get(url, _asset(filename, content_type))
    app.router.add_get("/docs/", _to_page("docs"))
    app.router.add_get("/redoc/", _to_page("redoc"))


ROUTES: list[RouteSpec] = [health, openapi, docs, redoc, metrics]
