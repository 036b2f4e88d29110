"""One message (get, delete) and how a (background) turn went: ``/session/{id}/message/{mid}``
and ``GET /session/{id}/message/{mid}/reply?wait=S`` (API.md, "Beyond the replaced service")."""

from __future__ import annotations

from aiohttp import web

from opencode_api.http._auth import user_id_of
from opencode_api.http._keys import RUNTIME
from opencode_api.http._openapi import RouteSpec, route
from opencode_api.http._schemas import (
    MessageOut,
    ReplyQuery,
    SuccessResponse,
    TurnReplyOut,
    message_json,
)
from opencode_api.http._validation import path_id, read_query


def _message_id(request: web.Request) -> str:
    return path_id(request, "message", key="mid")


@route(
    "GET",
    "/session/{id}/message/{mid}",
    name="get_message",
    summary="Get one message of a session",
    tag="messages",
    response=MessageOut,
    errors=(404,),
)
async def get_message(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    message = await runtime.get_message(
        path_id(request), _message_id(request), user_id=user_id_of(request)
    )
    return web.json_response(message_json(message))


@route(
    "DELETE",
    "/session/{id}/message/{mid}",
    name="delete_message",
    summary="Delete one message (409 busy while a turn of the session runs or waits)",
    tag="messages",
    response=SuccessResponse,
    errors=(404, 409),
)
async def delete_message(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    await runtime.delete_message(
        path_id(request), _message_id(request), user_id=user_id_of(request)
    )
    return web.json_response({"success": True})


@route(
    "GET",
    "/session/{id}/message/{mid}/reply",
    name="get_reply",
    summary="How the turn of a user message went; waits up to `wait` seconds for it to end",
    tag="messages",
    query=ReplyQuery,
    response=TurnReplyOut,
    errors=(404, 422),
)
async def get_reply(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    query = read_query(request, ReplyQuery)
    reply = await runtime.reply(
        path_id(request), _message_id(request), user_id=user_id_of(request), wait=query.wait
    )
    message = reply.message
    return web.json_response(
        {"status": reply.status, "message": message_json(message) if message else None}
    )


ROUTES: list[RouteSpec] = [get_message, delete_message, get_reply]
