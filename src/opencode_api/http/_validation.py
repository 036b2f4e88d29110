"""Request bodies and query strings parsed into the pydantic models of ``_schemas``."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from opencode_api.http._errors import BadRequestError

M = TypeVar("M", bound=BaseModel)

# A ``\uD800``-``\uDFFF`` escape: JSON allows it, but a lone one is not text (UTF-8 cannot encode
# it, so the store or the LLM client would fail on it far from here).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


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
        if _SURROGATE_ESCAPE.search(raw):
            _refuse_lone_surrogates(data)
        if data is None and not required:
            data = {}
    if not isinstance(data, dict):
        raise BadRequestError("body must be a JSON object", field="body")
    return model.model_validate(data)


def _refuse_lone_surrogates(data: Any) -> None:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        message = "body contains a lone UTF-16 surrogate escape (not valid Unicode text)"
        raise BadRequestError(message, field="body") from None


def read_query(request: web.Request, model: type[M]) -> M:
    return model.model_validate(dict(request.query))
