"""Request bodies and query strings parsed into the pydantic models of ``_schemas``.

What no store or model can take is refused here, before any of it reaches the runtime, the same way
on every store (a 400 ``invalid_request`` naming the field, unless said otherwise):

- A body that cannot be read (a gzip or deflate ``Content-Encoding`` that is not), or that is not
  UTF-8 (JSON between systems must be, RFC 8259 section 8.1). Decoding strictly also refuses the
  UTF-8-like encodings of surrogates that a lenient decoder lets through.
- Nesting deeper than ``MAX_DEPTH`` (field ``body``). No request model nests more than a few
  levels; without a bound a 10,000-deep array exhausts the parser's recursion (a RecursionError,
  caught too, since a deep stack can hit it below ``MAX_DEPTH``).
- A NUL character (``\\u0000``): PostgreSQL text cannot hold one, SQLite can; refusing it everywhere
  keeps the stores alike. In query strings as well (``session_id`` reaches the store), as a 422
  like any other query parameter that fails validation. A path id holding one names nothing that
  can exist: ``path_id`` answers 404 without asking the store.
- A lone UTF-16 surrogate escape (``\\ud800``): valid JSON, but not text (UTF-8 cannot encode it,
  so the store or the LLM client would fail on it far from here).
- A number of more digits than Python converts to an integer (``sys.get_int_max_str_digits()``).

Ordinary bodies pay two byte counts and one search of the raw bytes: the parsed data is walked (to
measure its depth and find the field) only when the raw body holds more than ``MAX_DEPTH`` brackets
or a suspect escape.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from opencode_api.actors import NotFoundError
from opencode_api.http._errors import BadRequestError, PayloadTooLargeError
from opencode_api.http._keys import SETTINGS
from opencode_api.settings import Settings

M = TypeVar("M", bound=BaseModel)

MAX_DEPTH = 64

# ``\u0000`` or a ``\uD800``-``\uDFFF`` escape (surrogate pairs match too; the walk tells them
# apart, as they parse into one character).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_SURROGATE = re.compile("[\ud800-\udfff]")


def input_body_limit(settings: Settings) -> int:
    """The cap of a body that may carry files (a message, a regenerate): ``MAX_INPUT_BYTES`` as
    base64 (4 characters per 3 bytes) plus ``CLIENT_MAX_SIZE`` for the rest of the JSON."""
    return -(-settings.max_input_bytes // 3) * 4 + settings.client_max_size


async def read_body(
    request: web.Request, model: type[M], *, required: bool = False, files: bool = False
) -> M:
    """The JSON body as ``model``; an absent or empty body is ``{}`` unless ``required``.

    Unparsable, too deeply nested or unstorable JSON is a 400 (``BadRequestError``); a field that
    fails validation raises pydantic's ``ValidationError`` (422, naming the field). A body over
    ``CLIENT_MAX_SIZE`` is a 413, or over ``input_body_limit`` for a route that takes ``files``
    (aiohttp's ``client_max_size`` is app-wide, so the app's is the larger and each route caps
    its own here, before reading when the length is announced).
    """
    settings = request.app[SETTINGS]
    cap = input_body_limit(settings) if files else settings.client_max_size
    if request.content_length is not None and request.content_length > cap:
        raise PayloadTooLargeError(cap)
    try:
        raw = await request.read() if request.body_exists else b""
    except web.RequestPayloadError:
        # aiohttp's parser could not undo the Content-Encoding (gzip or deflate that is not) or
        # the chunked framing: the client's fault, not ours.
        message = "the body cannot be read (a broken Content-Encoding or chunked framing)"
        raise BadRequestError(message, field="body") from None
    if len(raw) > cap:  # chunked: no length announced
        raise PayloadTooLargeError(cap)
    data: Any
    if not raw:  # whitespace alone is not JSON: a 400 like any unparsable body
        if required:
            raise BadRequestError("a JSON request body is required", field="body")
        data = {}
    else:
        data = _parse(raw)
        deep = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
        suspect = _SUSPECT_ESCAPE.search(raw) is not None
        if deep or suspect:
            _inspect(data, depth=deep, text=suspect)
        if data is None and not required:
            data = {}
    if not isinstance(data, dict):
        raise BadRequestError("body must be a JSON object", field="body")
    return model.model_validate(data)


def read_query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model``. A NUL character in a name or value fails validation like
    any bad parameter (422, naming it)."""
    query = request.query
    for name, value in query.items():
        if "\x00" in name or "\x00" in value:
            field = name if "\x00" not in name else "query"
            error = PydanticCustomError("nul_character", "must not contain a NUL character")
            raise ValidationError.from_exception_data(
                model.__name__, [{"type": error, "loc": (field,), "input": value}]
            )
    return model.model_validate(dict(query))


def path_id(request: web.Request, kind: str = "session", *, key: str = "id") -> str:
    """The route's ``{id}`` (or ``{key}``); one with a NUL character is not found (no stored id
    holds one, and PostgreSQL would fail on it as if it were down)."""
    ident = request.match_info[key]
    if "\x00" in ident:
        raise NotFoundError(kind, ident.replace("\x00", "\\u0000"))
    return ident


def _parse(raw: bytes) -> Any:
    try:
        # Strict UTF-8, where json.loads(bytes) would also take UTF-16/32 and decode surrogates.
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        message = f"body is not valid UTF-8 (byte {exc.start})"
        raise BadRequestError(message, field="body") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"body is not valid JSON: {exc}", field="body") from None
    except ValueError:
        # An integer of more digits than Python converts (sys.get_int_max_str_digits()).
        message = "body holds a number too long to read"
        raise BadRequestError(message, field="body") from None
    except RecursionError:
        raise _too_deep() from None


def _too_deep() -> BadRequestError:
    return BadRequestError(f"body is nested deeper than {MAX_DEPTH} levels", field="body")


def _inspect(data: Any, *, depth: bool, text: bool) -> None:
    """Walk the parsed body (without recursion: it may be deep): refuse nesting past
    ``MAX_DEPTH`` (when ``depth``) and strings a store cannot hold (when ``text``)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict | list):
            if depth and len(path) >= MAX_DEPTH:
                raise _too_deep()
            if isinstance(value, dict):
                for key, item in value.items():
                    if text:
                        # A key is named by where it is: its own text is what is wrong.
                        _check_text(key, path)
                    stack.append((item, (*path, key)))
            else:
                stack.extend((item, (*path, index)) for index, item in enumerate(value))
        elif text and isinstance(value, str):
            _check_text(value, path)


def _check_text(value: str, path: tuple[str | int, ...]) -> None:
    if "\x00" in value:
        field = _field(path)
        message = f"{field} contains a NUL character (\\u0000), which cannot be stored"
        raise BadRequestError(message, field=field)
    if _SURROGATE.search(value) is not None:
        field = _field(path)
        message = f"{field} contains a lone UTF-16 surrogate escape (not valid Unicode text)"
        raise BadRequestError(message, field=field)


def _field(path: tuple[str | int, ...]) -> str:
    # Dotted, as validation errors name fields (``answers.0.1``).
    return ".".join(str(part) for part in path) or "body"
