"""Provider and model catalogue routes, and the pending questions of the ``question`` tool."""

from __future__ import annotations

import asyncio

from aiohttp import web

from opencode_api.actors import NotFoundError
from opencode_api.http._auth import user_id_of
from opencode_api.http._keys import RUNTIME, SETTINGS
from opencode_api.http._openapi import RouteSpec, route
from opencode_api.http._schemas import QuestionListQuery, QuestionReplyRequest, SuccessResponse
from opencode_api.http._validation import path_id, read_body, read_query
from opencode_api.llm import (
    ModelInfo,
    ProviderDetail,
    ProviderInfo,
    get_provider,
    list_models,
    list_providers,
)
from opencode_api.store import Question


# The catalogue is built from LiteLLM's model map on first use: importing LiteLLM blocks for
# seconds, so that happens off the event loop.
@route(
    "GET",
    "/provider",
    name="list_providers",
    summary="LLM providers",
    tag="providers",
    response=list[ProviderInfo],
)
async def providers(request: web.Request) -> web.Response:
    found = await asyncio.to_thread(list_providers, request.app[SETTINGS])
    return web.json_response([p.model_dump(mode="json") for p in found])


@route(
    "GET",
    "/provider/{id}",
    name="get_provider",
    summary="One provider and its models",
    tag="providers",
    response=ProviderDetail,
    errors=(404,),
)
async def provider(request: web.Request) -> web.Response:
    provider_id = request.match_info["id"]
    found = await asyncio.to_thread(get_provider, provider_id, request.app[SETTINGS])
    if found is None:
        raise NotFoundError("provider", provider_id)
    return web.json_response(found.model_dump(mode="json"))


@route(
    "GET",
    "/provider/{id}/model",
    name="list_models",
    summary="A provider's models",
    tag="providers",
    response=list[ModelInfo],
    errors=(404,),
)
async def models(request: web.Request) -> web.Response:
    provider_id = request.match_info["id"]
    found = await asyncio.to_thread(get_provider, provider_id, request.app[SETTINGS])
    if found is None:
        raise NotFoundError("provider", provider_id)
    listed = await asyncio.to_thread(list_models, provider_id)
    return web.json_response([m.model_dump(mode="json") for m in listed])


@route(
    "GET",
    "/question",
    name="list_questions",
    summary="Pending questions of the question tool",
    tag="questions",
    query=QuestionListQuery,
    response=list[Question],
    errors=(422,),
)
async def questions(request: web.Request) -> web.Response:
    query = read_query(request, QuestionListQuery)
    found = await request.app[RUNTIME].list_questions(
        session_id=query.session_id, user_id=user_id_of(request)
    )
    return web.json_response([q.model_dump(mode="json") for q in found if q.status == "pending"])


@route(
    "POST",
    "/question/{id}/reply",
    name="reply_question",
    summary="Answer a pending question; the turn resumes",
    tag="questions",
    body=QuestionReplyRequest,
    body_required=True,
    response=SuccessResponse,
    errors=(400, 404, 413, 422),
)
async def reply(request: web.Request) -> web.Response:
    body = await read_body(request, QuestionReplyRequest, required=True)
    await request.app[RUNTIME].reply_question(
        path_id(request, "question"), body.answers, user_id=user_id_of(request)
    )
    return web.json_response({"success": True})


@route(
    "POST",
    "/question/{id}/reject",
    name="reject_question",
    summary="Reject a pending question; the tool returns a rejection to the model",
    tag="questions",
    response=SuccessResponse,
    errors=(404,),
)
async def reject(request: web.Request) -> web.Response:
    await request.app[RUNTIME].reject_question(
        path_id(request, "question"), user_id=user_id_of(request)
    )
    return web.json_response({"success": True})


ROUTES: list[RouteSpec] = [providers, provider, models, questions, reply, reject]
