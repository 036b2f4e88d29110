"""A user message's file, by the id its ``file`` part names (``metadata.file_id``):
``GET /session/{id}/file/{file_id}`` (API.md "Richer input and output"). Listing messages never
carries the bytes; this route serves them, with their type."""

from __future__ import annotations

import base64

from aiohttp import web

from opencode_api.http._auth import user_id_of
from opencode_api.http._keys import RUNTIME
from opencode_api.http._openapi import RouteSpec, route
from opencode_api.http._validation import path_id


@route(
    "GET",
    "/session/{id}/file/{file_id}",
    name="get_file",
    summary="The bytes of a file a user message carries (its part's metadata.file_id), "
    "with its type",
    tag="messages",
    text="application/octet-stream",  # the file's own type: image/png, application/pdf...
    errors=(404,),
)
async def get_file(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    stored = await runtime.get_file(
        path_id(request), path_id(request, "file", key="file_id"), user_id=user_id_of(request)
    )
    return web.Response(
        body=base64.b64decode(stored.data),
        content_type=stored.mime,
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


ROUTES: list[RouteSpec] = [get_file]
