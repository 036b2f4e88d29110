"""Request bodies and query strings parsed into the pydantic models of ``_schemas``."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from opencode_api.http._errors import BadRequestError

M = TypeVar("M", bound=BaseModel)


async def read_body(request: web.Request, model: type[M], *, required: bool = False) -> M:
    """The JSON body as ``model``; an absent or empty body is ``{}`` unless ``required``.

    Unparsable JSON is a 400 (``BadRequestError``); a field that fails validation raises
    pydantic's ``ValidationError`` (422, naming the field). Oversize bodies raise aiohttp's 413.
    """
    raw = await request.read() if request.body_exists else b""
    data: Any
    if not raw.strip():
        if required:
            raise BadRequestError("a JSON request body is required", field="body")
        data = {}
    else:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequestError(f"body is not valid JSON: {exc}", field="body") from None
        if data is None and not required:
            data = {}
    if not isinstance(data, dict):
        raise BadRequestError("body must be a JSON object", field="body")
    return model.model_validate(data)


def read_query(request: web.Request, model: type[M]) -> M:
    return model.model_validate(dict(request.query))
