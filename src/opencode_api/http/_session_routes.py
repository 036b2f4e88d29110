"""Session routes: CRUD, messages, abort, title, cost, compaction and todos (JSON, not SSE)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from opencode_api.actors import CompactionStatus, Runtime
from opencode_api.http._auth import user_id_of
from opencode_api.http._keys import RUNTIME
from opencode_api.http._openapi import RouteSpec, route
from opencode_api.http._schemas import (
    AbortResponse,
    CompactRequest,
    CreateSessionRequest,
    GenerateTitleRequest,
    MessageListQuery,
    MessagePageOut,
    SessionListQuery,
    SuccessResponse,
    TitleResponse,
    UpdateSessionRequest,
    message_json,
)
from opencode_api.http._validation import path_id, read_body, read_query
from opencode_api.store import Session, SessionCost, Todo


def session_json(runtime: Runtime, session: Session) -> dict[str, Any]:
    """A session with its live status (the stored one may lag a running turn)."""
    data: dict[str, Any] = session.model_dump(mode="json")
    data["status"] = runtime.status(session.id)
    return data


def _session_id(request: web.Request) -> str:
    return path_id(request)


@route(
    "GET",
    "/session",
    name="list_sessions",
    summary="List sessions, newest first",
    tag="sessions",
    query=SessionListQuery,
    response=list[Session],
    errors=(422,),
)
async def list_sessions(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    query = read_query(request, SessionListQuery)
    sessions = await runtime.list_sessions(
        user_id=user_id_of(request), limit=query.limit, offset=query.offset
    )
    return web.json_response([session_json(runtime, s) for s in sessions])


@route(
    "POST",
    "/session",
    name="create_session",
    summary="Create a session",
    tag="sessions",
    body=CreateSessionRequest,
    response=Session,
    errors=(400, 413, 422),
)
async def create_session(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    body = await read_body(request, CreateSessionRequest)
    session = await runtime.create_session(
        title=body.title,
        provider_id=body.provider_id,
        model_id=body.model_id,
        system=body.system,
        user_id=user_id_of(request),
        max_cost=body.max_cost,
        webhook_url=body.webhook_url,
    )
    return web.json_response(session_json(runtime, session))


@route(
    "GET",
    "/session/{id}",
    name="get_session",
    summary="Get a session",
    tag="sessions",
    response=Session,
    errors=(404,),
)
async def get_session(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    session = await runtime.get_session(_session_id(request), user_id=user_id_of(request))
    return web.json_response(session_json(runtime, session))


@route(
    "PATCH",
    "/session/{id}",
    name="update_session",
    summary="Rename a session, set or clear its budget and webhook",
    tag="sessions",
    body=UpdateSessionRequest,
    response=Session,
    errors=(400, 404, 413, 422),
)
async def update_session(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    body = await read_body(request, UpdateSessionRequest)
    given = body.model_fields_set
    session = await runtime.update_session(
        _session_id(request),
        user_id=user_id_of(request),
        title=body.title,
        max_cost=body.max_cost,
        webhook_url=body.webhook_url,
        clear=[f for f in ("max_cost", "webhook_url") if f in given and getattr(body, f) is None],
    )
    return web.json_response(session_json(runtime, session))


@route(
    "DELETE",
    "/session/{id}",
    name="delete_session",
    summary="Delete a session and its messages (a running turn is aborted first)",
    tag="sessions",
    response=SuccessResponse,
    errors=(404,),
)
async def delete_session(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    await runtime.delete_session(_session_id(request), user_id=user_id_of(request))
    return web.json_response({"success": True})


@route(
    "GET",
    "/session/{id}/message",
    name="list_messages",
    summary="List messages (paginated)",
    tag="messages",
    query=MessageListQuery,
    response=MessagePageOut,
    errors=(404, 422),
)
async def list_messages(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    query = read_query(request, MessageListQuery)
    page = await runtime.list_messages(
        _session_id(request),
        user_id=user_id_of(request),
        limit=query.limit,
        offset=query.offset,
        order=query.order,
    )
    return web.json_response(
        {
            "messages": [message_json(m) for m in page.messages],
            "total_count": page.total_count,
            "limit": page.limit,
            "offset": page.offset,
        }
    )


@route(
    "POST",
    "/session/{id}/abort",
    name="abort_session",
    summary="Abort the running turn and the queued ones",
    tag="messages",
    response=AbortResponse,
    errors=(404,),
)
async def abort_session(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    cancelled = await runtime.abort(_session_id(request), user_id=user_id_of(request))
    return web.json_response({"cancelled": cancelled})


@route(
    "POST",
    "/session/{id}/generate-title",
    name="generate_title",
    summary="Generate (and store) a title from the first message",
    tag="sessions",
    body=GenerateTitleRequest,
    response=TitleResponse,
    errors=(400, 404, 413, 422, 429, 503),
)
async def generate_title(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    body = await read_body(request, GenerateTitleRequest)
    title = await runtime.generate_title(
        _session_id(request),
        user_id=user_id_of(request),
        message=body.message,
        model_id=body.model_id,
    )
    return web.json_response({"title": title})


@route(
    "GET",
    "/session/{id}/cost",
    name="session_cost",
    summary="Cost and tokens of a session",
    tag="sessions",
    response=SessionCost,
    errors=(404,),
)
async def session_cost(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    cost = await runtime.session_cost(_session_id(request), user_id=user_id_of(request))
    return web.json_response(cost.model_dump(mode="json"))


@route(
    "POST",
    "/session/{id}/compact",
    name="compact_session",
    summary="Compact the conversation now (runs after a running turn)",
    tag="sessions",
    body=CompactRequest,
    response=CompactionStatus,
    errors=(400, 404, 413, 422, 429, 503),
)
async def compact_session(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    body = await read_body(request, CompactRequest)
    status = await runtime.compact(
        _session_id(request), user_id=user_id_of(request), model_id=body.model_id
    )
    return web.json_response(status.model_dump(mode="json"))


@route(
    "GET",
    "/session/{id}/compaction-status",
    name="compaction_status",
    summary="Compaction status of a session",
    tag="sessions",
    response=CompactionStatus,
    errors=(404,),
)
async def compaction_status(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    status = await runtime.compaction_status(_session_id(request), user_id=user_id_of(request))
    return web.json_response(status.model_dump(mode="json"))


@route(
    "GET",
    "/session/{id}/todo",
    name="list_todos",
    summary="The session's todo list",
    tag="sessions",
    response=list[Todo],
    errors=(404,),
)
async def list_todos(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    todos = await runtime.todos(_session_id(request), user_id=user_id_of(request))
    return web.json_response([t.model_dump(mode="json") for t in todos])


ROUTES: list[RouteSpec] = [
    list_sessions,
    create_session,
    get_session,
    update_session,
    delete_session,
    list_messages,
    abort_session,
    generate_title,
    session_cost,
    compact_session,
    compaction_status,
    list_todos,
]
