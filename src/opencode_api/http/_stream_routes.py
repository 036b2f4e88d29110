"""The SSE routes: a turn's stream, re-attaching to a session's stream, and the global event bus.

A turn belongs to its session, not to the connection: when a client leaves, only its subscription
closes, at once. With ``handler_cancellation=True`` that shows up as CancelledError (re-raised after
the subscription is closed); with False as ``ClientGone`` from the pump, which hears the close from
the transport, or from a failed write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from opencode_api.actors import BusEvent, Runtime, TurnRequest, TurnStream
from opencode_api.http._auth import user_id_of
from opencode_api.http._errors import BadRequestError
from opencode_api.http._keys import METRICS, RUNTIME, SETTINGS, STREAMS
from opencode_api.http._openapi import RouteSpec, route
from opencode_api.http._schemas import (
    BackgroundTurn,
    EventQuery,
    MessageRequest,
    RegenerateRequest,
    SendQuery,
    StreamQuery,
)
from opencode_api.http._sse import DONE_FRAME, ClientGone, SSEWriter, json_frame
from opencode_api.http._validation import path_id, read_body, read_query
from opencode_api.http._workers import has_peers, is_internal, merge, remote_bus_frames
from opencode_api.runtime import OutboxItem, SubscriberLagged

log = structlog.get_logger("opencode_api.http.sse")


# API.md promises a heartbeat at least every 30 s, whatever SSE_HEARTBEAT says.
MAX_HEARTBEAT = 30.0


def _writer(request: web.Request) -> SSEWriter:
    settings = request.app[SETTINGS]
    heartbeat = min(settings.sse_heartbeat, MAX_HEARTBEAT)
    return SSEWriter(request, heartbeat=heartbeat, write_timeout=settings.sse_write_timeout)


class _TurnFrames:
    """Renders turn events as SSE frames and remembers what the client has been sent."""

    def __init__(self, request: web.Request, session_id: str) -> None:
        self.metrics = request.app[METRICS]
        self.session_id = session_id
        self.message_id: str | None = None
        self.terminal = False

    def render(self, item: OutboxItem[Any]) -> bytes:
        event = item.event
        data: dict[str, Any] = event.to_dict() if hasattr(event, "to_dict") else dict(event)
        event_type = str(data.get("type", "message"))
        self.message_id = data.get("message_id", self.message_id)
        self.terminal = bool(getattr(event, "terminal", False))
        return json_frame(data, event=event_type, event_id=item.seq)

    def render_batch(self, items: list[OutboxItem[Any]]) -> bytes:
        """Events that arrived together, as one write."""
        if len(items) == 1:
            return self.render(items[0])
        return b"".join([self.render(item) for item in items])

    def error_frame(self, error_type: str, message: str) -> bytes:
        data = {
            "type": "error",
            "session_id": self.session_id,
            "message_id": self.message_id,
            "error": {"type": error_type, "message": message},
        }
        return json_frame(data, event="error")


@route(
    "POST",
    "/session/{id}/message",
    name="send_message",
    summary="Send a message; the turn's events stream back as SSE",
    tag="messages",
    query=SendQuery,
    body=MessageRequest,
    body_required=True,
    sse=True,
    errors=(400, 404, 409, 413, 422, 429, 503),
    headers=("Prefer",),
    accepted=BackgroundTurn,
)
async def send_message(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    session_id = path_id(request)
    query = read_query(request, SendQuery)
    body = await read_body(request, MessageRequest, required=True, files=True)
    options = body.send_options(user_id_of(request), query.busy)
    turn = TurnRequest(session_id, body.content or "", **options)
    if not query.stream or "respond-async" in request.headers.get("Prefer", ""):
        user_message_id, status = await runtime.send_background(turn)
        answer = {"session_id": session_id, "user_message_id": user_message_id, "status": status}
        return web.json_response(answer, status=202)
    return await _stream_turn(request, session_id, runtime.send_request(turn))


@route(
    "POST",
    "/session/{id}/message/{mid}/regenerate",
    name="regenerate_message",
    summary="Run a user message's turn again (edited when content is given): it and all after it "
    "are replaced; the turn's events stream back as SSE",
    tag="messages",
    body=RegenerateRequest,
    sse=True,
    errors=(400, 404, 409, 413, 422, 429, 503),
)
async def regenerate_message(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    session_id = path_id(request)
    body = await read_body(request, RegenerateRequest, files=True)
    stream = await runtime.regenerate(
        session_id,
        path_id(request, "message", key="mid"),
        body.content,
        **body.send_options(user_id_of(request)),
    )
    return await _stream_turn(request, session_id, stream)


async def _stream_turn(
    request: web.Request, session_id: str, stream: TurnStream
) -> web.StreamResponse:
    """A turn's events as this response's SSE stream (the turn goes on if the client leaves)."""
    try:
        # Request errors (not found, busy, quota, full mailbox) become JSON before any SSE byte.
        await stream.start()
        frames = _TurnFrames(request, session_id)
        writer = _writer(request)
        await writer.prepare()
        async with _SubscriberGauge(request, "send_message"):
            try:
                failure = await writer.pump(stream.batches(), frames.render_batch)
                if not frames.terminal:
                    if failure is not None:
                        log.error("turn stream failed", session_id=session_id, exc_info=failure)
                        await writer.send(frames.error_frame("internal_error", "stream failed"))
                    else:
                        await writer.send(
                            frames.error_frame("stream_closed", "the session's stream closed")
                        )
                await writer.send(DONE_FRAME)
            except ClientGone as exc:
                log.debug("client left the turn stream", session_id=session_id, reason=str(exc))
    finally:
        await stream.aclose()
    return writer.response


_MAX_EVENT_ID = 2**63 - 1


def _after(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is not None and raw.strip():
        try:
            value = int(raw.strip())
        except ValueError:
            message = "Last-Event-ID must be an integer"
            raise BadRequestError(message, field="Last-Event-ID") from None
        if not 0 <= value <= _MAX_EVENT_ID:
            message = f"Last-Event-ID must be between 0 and {_MAX_EVENT_ID}"
            raise BadRequestError(message, field="Last-Event-ID")
        return value
    return read_query(request, StreamQuery).after


async def _session_items(
    runtime: Runtime, session_id: str, user_id: str | None, after: int | None
) -> AsyncIterator[OutboxItem[Any]]:
    last = after
    while True:
        sent = False
        async with runtime.subscribe(session_id, user_id=user_id, after=last) as subscription:
            try:
                async for item in subscription:
                    last = item.seq
                    sent = True
                    yield item
                return
            except SubscriberLagged:
                # Fell behind: resume from the last event sent. Cut off before sending any, the
                # events after ``last`` are not kept (asking again would be cut off again, at
                # once, forever): from now on; the stored messages hold what was missed.
                if not sent:
                    last = None


@route(
    "GET",
    "/session/{id}/stream",
    name="session_stream",
    summary="Re-attach to a session's event stream (replay after Last-Event-ID, then live)",
    tag="messages",
    query=StreamQuery,
    sse=True,
    errors=(400, 404, 422),
    headers=("Last-Event-ID",),
)
async def session_stream(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    session_id = path_id(request)
    user_id = user_id_of(request)
    after = _after(request)
    await runtime.get_session(session_id, user_id=user_id)
    frames = _TurnFrames(request, session_id)
    writer = _writer(request)
    await writer.prepare()
    async with _SubscriberGauge(request, "session_stream"):
        try:
            await writer.pump(
                _session_items(runtime, session_id, user_id, after),
                frames.render,
                stop=request.app[STREAMS].closing,
            )
            await writer.send(DONE_FRAME)
        except ClientGone as exc:
            log.debug("client left the session stream", session_id=session_id, reason=str(exc))
    return writer.response


async def _bus_items(
    runtime: Runtime, user_id: str | None, session_id: str | None
) -> AsyncIterator[BusEvent]:
    while True:
        subscription = runtime.subscribe_bus()
        try:
            async for item in subscription:
                event = item.event
                if user_id is not None and event.user_id != user_id:
                    continue
                if session_id is not None and event.session_id != session_id:
                    continue
                yield event
            return
        except SubscriberLagged:
            # Bus events are notifications (the state is in the store): carry on from now.
            continue
        finally:
            subscription.close()


def _bus_frame(event: BusEvent) -> bytes:
    return json_frame(event.to_dict())


def _bus_or_raw_frame(item: BusEvent | bytes) -> bytes:
    # Frames from other workers arrive rendered already.
    return item if isinstance(item, bytes) else _bus_frame(item)


@route(
    "GET",
    "/event",
    name="events",
    summary="The global event bus as SSE (filter with session_id)",
    tag="events",
    query=EventQuery,
    sse=True,
    errors=(404, 422),
)
async def events(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    user_id = user_id_of(request)
    query = read_query(request, EventQuery)
    if query.session_id is not None:
        await runtime.get_session(query.session_id, user_id=user_id)
    writer = _writer(request)
    await writer.prepare()
    async with _SubscriberGauge(request, "events"):
        try:
            await writer.send(json_frame({"type": "server.connected", "properties": {}}))
            source: AsyncIterator[Any] = _bus_items(runtime, user_id, query.session_id)
            if not is_internal(request) and has_peers(request):
                # Sessions in other processes too: their buses (they apply the same filters).
                source = merge(source, remote_bus_frames(request))
            await writer.pump(source, _bus_or_raw_frame, stop=request.app[STREAMS].closing)
            await writer.send(json_frame({"type": "server.shutdown", "properties": {}}))
        except ClientGone as exc:
            log.debug("client left the event stream", reason=str(exc))
    return writer.response


class _SubscriberGauge:
    """Counts an open SSE stream in the metrics for as long as it is open."""

    def __init__(self, request: web.Request, route_name: str) -> None:
        self._gauge = request.app[METRICS].sse_subscribers.labels(route=route_name)

    async def __aenter__(self) -> None:
        self._gauge.inc()

    async def __aexit__(self, *exc_info: object) -> None:
        self._gauge.dec()


ROUTES: list[RouteSpec] = [send_message, regenerate_message, session_stream, events]
