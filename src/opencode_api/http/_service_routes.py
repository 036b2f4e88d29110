"""Service routes: health, Prometheus metrics, the OpenAPI document, Swagger UI and ReDoc.

The documentation assets come from installed packages (``swagger-ui-bundle``, and ReDoc's
standalone bundle from ``drf-spectacular-sidecar``), never from a CDN.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from aiohttp import web

from opencode_api._version import __version__
from opencode_api.http._metrics import metrics_handler
from opencode_api.http._openapi import RouteSpec, route
from opencode_api.http._schemas import HealthResponse

OPENAPI = web.AppKey("openapi", dict[str, Any])

_SWAGGER_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>opencode-api: Swagger UI</title>
  <link rel="stylesheet" href="docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/static/swagger-ui-bundle.js"></script>
  <script src="docs/static/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "BaseLayout"
    });
  </script>
</body>
</html>
"""

_REDOC_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>opencode-api: ReDoc</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <redoc spec-url="openapi.json"></redoc>
  <script src="redoc/redoc.standalone.js"></script>
</body>
</html>
"""

_REDOC_MISSING_HTML = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>opencode-api: ReDoc unavailable</title></head>
<body>
  <h1>ReDoc assets are not installed</h1>
  <p>Install <code>drf-spectacular-sidecar</code> (it ships <code>redoc.standalone.js</code>)
  to serve ReDoc here. The API description is at <a href="openapi.json">/openapi.json</a> and
  Swagger UI at <a href="docs">/docs</a>.</p>
</body>
</html>
"""


def swagger_ui_dir() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    path = Path(swagger_ui_bundle.swagger_ui_path)
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def redoc_bundle() -> Path | None:
    """ReDoc's standalone bundle from drf-spectacular-sidecar, located without importing it.

    The package's ``__init__`` imports Django; ``find_spec`` of a top-level package only locates
    it, so Django need not be installed.
    """
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        bundle = (
            Path(location) / "static" / "drf_spectacular_sidecar" / "redoc" / "bundles"
            / "redoc.standalone.js"
        )
        if bundle.is_file():
            return bundle
    return None


@route(
    "GET", "/health", name="health", summary="Liveness check (no auth)", tag="service",
    response=HealthResponse,
)
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


@route(
    "GET", "/openapi.json", name="openapi", summary="This OpenAPI 3.1 document", tag="service",
)
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


@route(
    "GET", "/docs", name="swagger_ui", summary="Swagger UI", tag="service", text="text/html",
)
async def docs(request: web.Request) -> web.Response:
    if swagger_ui_dir() is None:
        raise web.HTTPNotFound(reason="Swagger UI assets are not installed")
    return web.Response(text=_SWAGGER_HTML, content_type="text/html")


@route("GET", "/redoc", name="redoc", summary="ReDoc", tag="service", text="text/html")
async def redoc(request: web.Request) -> web.Response:
    html = _REDOC_HTML if redoc_bundle() is not None else _REDOC_MISSING_HTML
    return web.Response(text=html, content_type="text/html")


async def redoc_js(request: web.Request) -> web.StreamResponse:
    bundle = redoc_bundle()
    if bundle is None:
        raise web.HTTPNotFound(reason="ReDoc assets are not installed")
    return web.FileResponse(bundle, headers={"Content-Type": "application/javascript"})


metrics = route(
    "GET", "/metrics", name="metrics", summary="Prometheus metrics", tag="service",
    text="text/plain",
)(metrics_handler)


def add_static(app: web.Application) -> None:
    """Asset routes (not part of the API description)."""
    directory = swagger_ui_dir()
    if directory is not None:
        app.router.add_static("/docs/static", directory, name="swagger_ui_static")
    app.router.add_get("/redoc/redoc.standalone.js", redoc_js, name="redoc_js")


ROUTES: list[RouteSpec] = [health, openapi, docs, redoc, metrics]
