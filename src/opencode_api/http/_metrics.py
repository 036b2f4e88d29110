"""Prometheus metrics of one app: its own registry, so two apps in a process never collide."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from opencode_api.actors import Runtime, TurnSummary

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics:
    """The server's metrics; session gauges are read from ``Runtime.stats()``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.runtime: Runtime | None = None
        r = self.registry
        self.live_sessions = Gauge(
            "opencode_live_sessions", "Session actors currently active", registry=r
        )
        self.busy_sessions = Gauge("opencode_busy_sessions", "Sessions running a turn", registry=r)
        self.mailbox_depth = Gauge(
            "opencode_mailbox_depth", "Messages waiting in all session mailboxes", registry=r
        )
        self.turns = Counter(
            "opencode_turns", "Turns finished, by stop reason", ["stop_reason"], registry=r
        )
        self.tokens = Counter("opencode_tokens", "Tokens used by turns", ["kind"], registry=r)
        self.cost = Counter("opencode_cost_usd", "Cost of turns in USD", registry=r)
        self.errors = Counter(
            "opencode_errors", "Error responses and turn errors, by type", ["type"], registry=r
        )
        self.sse_subscribers = Gauge(
            "opencode_sse_subscribers", "Open SSE streams, by route", ["route"], registry=r
        )
        self.request_latency = Histogram(
            "opencode_http_request_duration_seconds",
            "Time to the response headers (SSE) or the whole response, by route",
            ["method", "route", "status"],
            registry=r,
        )
        self.store_statements = Gauge(
            "opencode_store_statements",
            "SQL statements the store sent since it opened (round trips on PostgreSQL)",
            registry=r,
        )
        self.store_transactions = Gauge(
            "opencode_store_transactions",
            "Transactions (BEGIN ... COMMIT) the store ran since it opened",
            registry=r,
        )
        self.abort_latency = Histogram(
            "opencode_abort_seconds",
            "From an abort request to the end of the aborted turn's stream, in the server",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )

    def collect_runtime(self) -> None:
        if self.runtime is None:
            return
        stats = self.runtime.stats()
        self.live_sessions.set(stats.live)
        self.busy_sessions.set(stats.busy)
        self.mailbox_depth.set(stats.mailbox_depth_total)
        statements = self.runtime.store_statements()
        if statements is not None:
            self.store_statements.set(statements)
        transactions = self.runtime.store_transactions()
        if transactions is not None:
            self.store_transactions.set(transactions)

    def attach(self, runtime: Runtime) -> None:
        """Read the runtime's gauges at scrape time and count every turn it finishes."""
        self.runtime = runtime
        runtime.turn_listeners.append(self.record_turn)

    def record_turn(self, turn: TurnSummary) -> None:
        # Every turn counts, whether or not a client was still connected to its stream.
        self.turns.labels(stop_reason=turn.stop_reason).inc()
        usage = turn.usage
        for kind, value in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("reasoning", usage.reasoning_tokens),
        ):
            if value > 0:
                self.tokens.labels(kind=kind).inc(value)
        if turn.cost > 0:
            self.cost.inc(turn.cost)
        if turn.error_type is not None:
            self.errors.labels(type=turn.error_type).inc()
        if turn.abort_latency is not None:
            self.abort_latency.observe(turn.abort_latency)

    def render(self) -> bytes:
        self.collect_runtime()
        return generate_latest(self.registry)

    def response(self) -> web.Response:
        """The Prometheus text exposition, as ``GET /metrics`` answers it."""
        return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def middleware(self) -> Any:
        @web.middleware
        async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                route = request.match_info.route
                name = route.resource.canonical if route.resource is not None else "unmatched"
                self.request_latency.labels(request.method, name, str(status)).observe(
                    time.perf_counter() - started
                )

        return metrics_middleware
