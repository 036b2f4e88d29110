"""Branching: ``POST /session/{id}/fork``, ``/revert`` and ``/unrevert`` (API.md, "Branching and
editing"). Revert and unrevert go through the session's mailbox (409 ``busy`` while a turn runs
or waits); a fork copies what is stored and never waits. Regenerate streams a turn, so it lives
with the other turn streams (``_stream_routes``)."""

from __future__ import annotations

from aiohttp import web

from opencode_api.http._auth import user_id_of
from opencode_api.http._keys import RUNTIME
from opencode_api.http._openapi import RouteSpec, route
from opencode_api.http._schemas import ForkRequest, RevertRequest
from opencode_api.http._session_routes import session_json
from opencode_api.http._validation import path_id, read_body
from opencode_api.store import Session


@route(
    "POST",
    "/session/{id}/fork",
    name="fork_session",
    summary="Fork a session: a new session holding copies of its messages up to message_id",
    tag="sessions",
    body=ForkRequest,
    response=Session,
    status=201,
    errors=(400, 404, 413, 422),
)
async def fork_session(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    body = await read_body(request, ForkRequest)
    fork = await runtime.fork(
        path_id(request), user_id=user_id_of(request), message_id=body.message_id, title=body.title
    )
    return web.json_response(session_json(runtime, fork), status=201)


@route(
    "POST",
    "/session/{id}/revert",
    name="revert_session",
    summary="Hide a message and all after it (the next turn deletes them; unrevert shows them)",
    tag="sessions",
    body=RevertRequest,
    body_required=True,
    response=Session,
    errors=(400, 404, 409, 413, 422),
)
async def revert_session(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    body = await read_body(request, RevertRequest, required=True)
    session = await runtime.revert(path_id(request), body.message_id, user_id=user_id_of(request))
    return web.json_response(session_json(runtime, session))


@route(
    "POST",
    "/session/{id}/unrevert",
    name="unrevert_session",
    summary="Show the messages a revert hid",
    tag="sessions",
    response=Session,
    errors=(404, 409),
)
async def unrevert_session(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    session = await runtime.unrevert(path_id(request), user_id=user_id_of(request))
    return web.json_response(session_json(runtime, session))


ROUTES: list[RouteSpec] = [fork_session, revert_session, unrevert_session]
