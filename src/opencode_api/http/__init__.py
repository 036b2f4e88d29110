"""The aiohttp front end: every route of API.md, SSE streams, auth, quota errors, OpenAPI, docs."""

from opencode_api.http._app import REQUEST_ID, create_app
from opencode_api.http._auth import USER_ID, Authenticator, JWKSCache
from opencode_api.http._errors import BadRequestError, HTTPError, UnauthorizedError
from opencode_api.http._keys import AUTHENTICATOR, METRICS, RUNTIME, SETTINGS, STREAMS
from opencode_api.http._listen import (
    BatchAcceptSite,
    ListenError,
    SiteFactory,
    bind_sockets,
    serve_app,
)
from opencode_api.http._metrics import Metrics
from opencode_api.http._openapi import build_openapi

__all__ = [
    "AUTHENTICATOR",
    "METRICS",
    "REQUEST_ID",
    "RUNTIME",
    "SETTINGS",
    "STREAMS",
    "USER_ID",
    "Authenticator",
    "BadRequestError",
    "BatchAcceptSite",
    "HTTPError",
    "JWKSCache",
    "ListenError",
    "Metrics",
    "SiteFactory",
    "UnauthorizedError",
    "bind_sockets",
    "build_openapi",
    "create_app",
    "serve_app",
]
