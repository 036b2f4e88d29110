"""The application factory: routes, middlewares, and the runtime's life inside the app's."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import web

from opencode_api.actors import Runtime, open_runtime
from opencode_api.http import (
    _branch_routes,
    _catalogue_routes,
    _file_routes,
    _mcp_routes,
    _message_routes,
    _playground,
    _service_routes,
    _session_routes,
    _stream_routes,
    _webhook_routes,
)
from opencode_api.http._auth import Authenticator, auth_middleware
from opencode_api.http._cors import cors_middleware
from opencode_api.http._cors import on_prepare as cors_on_prepare
from opencode_api.http._errors import error_middleware
from opencode_api.http._keys import AUTHENTICATOR, METRICS, RUNTIME, SETTINGS, STREAMS
from opencode_api.http._metrics import Metrics
from opencode_api.http._openapi import RouteSpec, add_routes, build_openapi
from opencode_api.http._sse import StreamRegistry
from opencode_api.http._validation import input_body_limit
from opencode_api.http._workers import install
from opencode_api.llm import list_providers
from opencode_api.settings import Settings

log = structlog.get_logger("opencode_api.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID = web.RequestKey("request_id", str)
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def all_routes() -> list[RouteSpec]:
    return [
        *_session_routes.ROUTES,
        *_stream_routes.ROUTES,
        *_message_routes.ROUTES,
        *_file_routes.ROUTES,
        *_branch_routes.ROUTES,
        *_catalogue_routes.ROUTES,
        *_mcp_routes.ROUTES,
        *_webhook_routes.ROUTES,
        *_service_routes.ROUTES,
        *_playground.ROUTES,
    ]


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id (the client's ``X-Request-ID`` when sane) to every log line."""
    given = request.headers.get("X-Request-ID", "")
    request_id = given if _REQUEST_ID_OK.match(given) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    # Requests of one keep-alive connection share a task, hence a context: start clean.
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return await handler(request)


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers.setdefault("X-Request-ID", request_id)
    await cors_on_prepare(request, response)


def create_app(
    settings: Settings | None = None, *, runtime: Runtime | None = None
) -> web.Application:
    """The aiohttp application of the API.

    With ``runtime`` the app uses it and leaves closing it to the caller; otherwise the app opens
    ``open_runtime(settings)`` on start-up and closes it on shutdown, after letting running turns
    finish within ``SHUTDOWN_GRACE`` (the rest are aborted and their streams end with ``done``).
    """
    settings = settings if settings is not None else (runtime.settings if runtime else Settings())
    metrics = Metrics()
    authenticator = Authenticator(settings)
    streams = StreamRegistry()
    app = web.Application(
        # App-wide in aiohttp: the largest route's cap; read_body holds each route to its own.
        client_max_size=max(settings.client_max_size, input_body_limit(settings)),
        middlewares=[
            request_context_middleware,
            metrics.middleware(),
            error_middleware,
            cors_middleware(settings.cors_origins),
            auth_middleware(authenticator),
        ],
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[AUTHENTICATOR] = authenticator
    app[STREAMS] = streams
    routes = all_routes()
    add_routes(app, routes)
    _service_routes.add_static(app)
    app[_service_routes.OPENAPI] = build_openapi(routes)
    app.on_response_prepare.append(_on_prepare)

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        # Loading the model map and building the catalogue blocks for ~0.1 s (LiteLLM is not
        # imported): do it in a thread now rather than on the event loop inside the first turn.
        await asyncio.to_thread(list_providers, settings)
        if runtime is not None:
            app[RUNTIME] = runtime
            metrics.attach(runtime)
            yield
            return
        async with open_runtime(settings) as opened:
            app[RUNTIME] = opened
            metrics.attach(opened)
            log.info("runtime started", database=_redact(settings.resolved_database_url()))
            yield

    async def authenticator_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        await authenticator.aclose()

    async def on_shutdown(app: web.Application) -> None:
        # Before aiohttp waits for the handlers: drain the runtime so turn streams end with
        # their done event, then end the open-ended streams (re-attach, bus) with a final frame.
        if runtime is None and RUNTIME in app:
            await app[RUNTIME].close(settings.shutdown_grace)
        streams.closing.set()

    if settings.workers > 1:
        install(app)  # sessions may live in another worker: requests about them go there

    app.cleanup_ctx.append(authenticator_ctx)
    app.cleanup_ctx.append(runtime_ctx)
    app.on_shutdown.append(on_shutdown)
    return app


def _redact(url: str) -> str:
    """A database URL without its password, for logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
