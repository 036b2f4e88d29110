"""Every failure as API.md's JSON error body, mapped to its status once, in one middleware.

OpenCodeError
└── HTTPError                 http/: a request the front end itself refuses
    ├── BadRequestError       400 invalid_request (unparsable body or query)
    └── UnauthorizedError     401 unauthorized (with WWW-Authenticate)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

from opencode_api.actors import (
    BudgetExceededError,
    FileInputError,
    InputTooLargeError,
    InvalidRequestError,
    LLMError,
    NotFoundError,
    QuotaExceededError,
    SessionBusyError,
    UnsupportedInputError,
)
from opencode_api.runtime import (
    ActivationError,
    ActorDeadError,
    ActorLimitReached,
    AskTimeout,
    MailboxFull,
    OpenCodeError,
    SupervisorClosed,
)
from opencode_api.store import StoreConflict, StoreError, StoreValueError

log = structlog.get_logger("opencode_api.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HTTPError(OpenCodeError):
    """A request the HTTP front end refuses before it reaches the runtime."""

    status = 400
    type = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BadRequestError(HTTPError):
    """The body or a query parameter cannot be parsed."""


class PayloadTooLargeError(HTTPError):
    """A body over its route's cap (API.md: ``CLIENT_MAX_SIZE``, or ``MAX_INPUT_BYTES`` as base64
    plus that on the routes that take files)."""

    status = 413
    type = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than this route accepts ({limit} bytes)")
        self.limit = limit


class UnauthorizedError(HTTPError):
    """Missing or invalid credentials; ``challenge`` goes into ``WWW-Authenticate``."""

    status = 401
    type = "unauthorized"

    def __init__(self, message: str, *, challenge: str) -> None:
        super().__init__(message)
        self.challenge = challenge


# aiohttp's own refusals (unknown route, wrong method, oversize body) by status.
_STATUS_TYPES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    431: "headers_too_large",
    503: "unavailable",
}


def error_body(error_type: str, message: str, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"type": error_type, "message": message}
    error.update({key: value for key, value in extra.items() if value is not None})
    return {"error": error}


def error_response(
    status: int,
    error_type: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    top: dict[str, Any] | None = None,
    **extra: Any,
) -> web.Response:
    body = error_body(error_type, message, **extra)
    if top:
        body.update(top)
    return web.json_response(body, status=status, headers=headers)


def _validation_response(exc: ValidationError, status: int) -> web.Response:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    field = ".".join(str(part) for part in first["loc"]) or None
    message = f"{field}: {first['msg']}" if field else str(first["msg"])
    details = [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "code": e["type"]}
        for e in errors
    ]
    return error_response(status, "invalid_request", message, field=field, errors=details)


def response_for(exc: BaseException) -> web.Response | None:
    """The JSON error response for a known failure, or None for an unexpected one."""
    match exc:
        case UnauthorizedError():
            return error_response(
                exc.status, exc.type, str(exc), headers={"WWW-Authenticate": exc.challenge}
            )
        case HTTPError():
            return error_response(exc.status, exc.type, str(exc), field=exc.field)
        case ValidationError():
            return _validation_response(exc, 422)
        case NotFoundError():
            return error_response(404, "not_found", str(exc), resource=exc.kind)
        case SessionBusyError():
            return error_response(409, "busy", str(exc))
        case FileInputError():
            return error_response(400, "invalid_request", str(exc), field=exc.field)
        case UnsupportedInputError():
            return error_response(
                400, "unsupported_input", str(exc), model=exc.model, field=exc.field
            )
        case InputTooLargeError():
            return error_response(413, "payload_too_large", str(exc), limit=exc.limit)
        case InvalidRequestError():
            return error_response(422, "invalid_request", str(exc), field=exc.field)
        case QuotaExceededError():
            resets_at = exc.resets_at.isoformat().replace("+00:00", "Z")
            return error_response(
                429,
                "quota_exceeded",
                str(exc),
                headers={"Retry-After": str(_seconds_until(exc.resets_at))},
                top={"usage": exc.usage, "limits": exc.limits, "resets_at": resets_at},
                resets_at=resets_at,
            )
        case BudgetExceededError():
            return error_response(
                429, "budget_exceeded", str(exc), top={"spent": exc.spent, "limit": exc.limit}
            )
        case MailboxFull():
            return error_response(
                429,
                "mailbox_full",
                str(exc) or "session mailbox is full",
                headers={"Retry-After": "1"},
            )
        case ActorLimitReached():
            return error_response(
                503,
                "overloaded",
                str(exc) or "too many live sessions",
                headers={"Retry-After": "1"},
            )
        case SupervisorClosed():
            return _unavailable("the server is shutting down", retry_after=1)
        case AskTimeout():
            return error_response(504, "timeout", "the session did not answer in time")
        case LLMError():
            return _provider_response(exc)
        case StoreValueError():
            return error_response(400, "invalid_request", "a value of the request cannot be stored")
        case StoreConflict():
            return error_response(409, "conflict", "the request conflicts with stored data")
        case StoreError():
            return _unavailable(StoreError.public_message, retry_after=5)
        case ActivationError() if isinstance(exc.__cause__, StoreError):
            return _unavailable(StoreError.public_message, retry_after=5)
        case ActorDeadError() | ActivationError():
            return _unavailable("the session is unavailable right now; try again", retry_after=1)
    return None


def _provider_response(exc: LLMError) -> web.Response:
    """API.md's failure table: 400 not configured or unknown model, 502 refused, 503 down."""
    data: dict[str, Any] = exc.to_dict()
    error_type = str(data.pop("type"))
    message = str(data.pop("message"))
    headers = None
    if exc.http_status == 503:
        retry_after = exc.retry_after if exc.retry_after is not None else 5.0
        headers = {"Retry-After": str(max(1, round(retry_after)))}
    elif error_type == "invalid_request":
        data["field"] = "model_id"
    return error_response(exc.http_status, error_type, message, headers=headers, **data)


def _unavailable(message: str, *, retry_after: int) -> web.Response:
    return error_response(
        503, "unavailable", message, headers={"Retry-After": str(retry_after)}, **_request_id()
    )


def _request_id() -> dict[str, Any]:
    """The request's id, so a client reporting a failure names the log lines that explain it."""
    return {"request_id": structlog.contextvars.get_contextvars().get("request_id")}


def _seconds_until(moment: datetime) -> int:
    return max(0, int((moment - datetime.now(UTC)).total_seconds()))


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into ``{"error": {"type", "message", ...}}`` JSON; never HTML."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status = exc.status
        error_type = _STATUS_TYPES.get(status, "internal_error" if status >= 500 else "error")
        headers = {
            key: value
            for key, value in exc.headers.items()
            if key.lower() in {"allow", "www-authenticate", "retry-after"}
        }
        reason = exc.reason or HTTPStatus(status).phrase
        return error_response(status, error_type, reason, headers=headers or None)
    except asyncio.CancelledError:
        raise
    except ConnectionResetError:
        # The client went away; there is nobody to answer.
        raise
    except Exception as exc:
        response = response_for(exc)
        if response is not None:
            if response.status >= 500:
                # The client got a short message; the details stay here, under its request id.
                log.warning(
                    "request failed", path=request.path, status=response.status, error=repr(exc)
                )
            return response
        log.exception("unhandled error", path=request.path, method=request.method)
        return error_response(500, "internal_error", "internal server error", **_request_id())
