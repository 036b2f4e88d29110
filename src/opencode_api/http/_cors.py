"""CORS for the origins in ``CORS_ORIGINS`` (``*`` allows any): preflights and response headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
_EXPOSE = "Content-Type, Last-Event-ID, Retry-After, WWW-Authenticate, X-Request-ID"


def cors_middleware(origins: Sequence[str]) -> Any:
    allowed = frozenset(origins)
    any_origin = "*" in allowed

    def allow(origin: str | None) -> str | None:
        if origin is None:
            return None
        if any_origin or origin in allowed:
            return origin
        return None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = allow(request.headers.get("Origin"))
        if (
            request.method == "OPTIONS"
            and origin is not None
            and "Access-Control-Request-Method" in request.headers
        ):
            headers = {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": _ALLOW_METHODS,
                "Access-Control-Allow-Headers": request.headers.get(
                    "Access-Control-Request-Headers", "Authorization, Content-Type"
                ),
                "Access-Control-Allow-Credentials": "true",
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            }
            return web.Response(status=204, headers=headers)
        if origin is not None:
            # on_prepare adds the headers: SSE responses send theirs from inside the handler.
            request[_CORS_ORIGIN] = origin
        return await handler(request)

    return middleware


_CORS_ORIGIN = web.RequestKey("cors_origin", str)


def _decorate(response: web.StreamResponse, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Access-Control-Expose-Headers"] = _EXPOSE
    response.headers.add("Vary", "Origin")


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Add CORS headers to streamed responses too (they are prepared inside the handler)."""
    origin = request.get(_CORS_ORIGIN)
    if origin is not None and "Access-Control-Allow-Origin" not in response.headers:
        _decorate(response, origin)
