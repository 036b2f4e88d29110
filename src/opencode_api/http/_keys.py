"""Typed keys of the application's state (``web.AppKey``)."""

from __future__ import annotations

from aiohttp import web

from opencode_api.actors import Runtime
from opencode_api.http._auth import Authenticator
from opencode_api.http._metrics import Metrics
from opencode_api.http._sse import StreamRegistry
from opencode_api.settings import Settings

RUNTIME = web.AppKey("runtime", Runtime)
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
STREAMS = web.AppKey("streams", StreamRegistry)
