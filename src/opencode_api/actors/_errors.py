"""Errors of the session layer (under ``OpenCodeError``); http/ maps each to a status once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from opencode_api.errors import OpenCodeError
from opencode_api.llm import LLMError
from opencode_api.store import StoreError, StoreValueError

log = structlog.get_logger("opencode_api.session")


class SessionError(OpenCodeError):
    """A request about a session cannot be served."""


class NotFoundError(SessionError):
    """No such session (or question) for this user."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} not found: {ident}")
        self.kind = kind
        self.ident = ident


class SessionBusyError(SessionError):
    """A turn is running and the caller asked ``busy=reject``."""


class InvalidRequestError(SessionError):
    """A request field is invalid (``field`` names it)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class QuotaExceededError(SessionError):
    """The user's daily token or request quota is used up."""

    def __init__(
        self, message: str, *, usage: dict[str, Any], limits: dict[str, Any], resets_at: datetime
    ) -> None:
        super().__init__(message)
        self.usage = usage
        self.limits = limits
        self.resets_at = resets_at

    def __reduce__(self) -> Any:
        # Pickled across processes (a Ray shard's refusal reaches its front end).
        return (_quota_exceeded, (str(self), self.usage, self.limits, self.resets_at))


def _quota_exceeded(
    message: str, usage: dict[str, Any], limits: dict[str, Any], resets_at: datetime
) -> QuotaExceededError:
    return QuotaExceededError(message, usage=usage, limits=limits, resets_at=resets_at)


class BudgetExceededError(SessionError):
    """The session's ``max_cost`` or the user's ``DAILY_COST_LIMIT`` is spent (USD)."""

    def __init__(self, message: str, *, spent: float, limit: float) -> None:
        super().__init__(message)
        self.spent = spent
        self.limit = limit

    def __reduce__(self) -> Any:
        # Pickled across processes (a Ray shard's refusal reaches its front end).
        return (_budget_exceeded, (str(self), self.spent, self.limit))


def _budget_exceeded(message: str, spent: float, limit: float) -> BudgetExceededError:
    return BudgetExceededError(message, spent=spent, limit=limit)


class InvalidOutputError(SessionError):
    """The final answer did not match the turn's ``response_format``, corrected once."""


def client_error(exc: BaseException) -> dict[str, Any]:
    """What a client is told about a failure of a turn, a title or a compaction (API.md's
    failure table): a type and a message, never an exception's text, an address or a trace.
    The log keeps the details."""
    if isinstance(exc, LLMError):
        return exc.to_dict()
    if isinstance(exc, StoreValueError):
        return {"type": "invalid_request", "message": "a value of the request cannot be stored"}
    if isinstance(exc, StoreError):
        return {"type": "unavailable", "message": StoreError.public_message}
    if isinstance(exc, InvalidOutputError):
        return {"type": "invalid_output", "message": str(exc)}
    if isinstance(exc, InvalidRequestError):
        data: dict[str, Any] = {"type": "invalid_request", "message": str(exc)}
        if exc.field is not None:
            data["field"] = exc.field
        return data
    return {"type": "internal_error", "message": "the turn failed because of an internal error"}


def log_failure(exc: BaseException) -> None:
    """Log why a turn failed: expected failures (a provider, the store) are warnings with their
    details (which clients never see); anything else is a bug, logged with its traceback."""
    if isinstance(exc, LLMError):
        log.warning(
            "turn failed: provider error",
            error_type=exc.type,
            code=exc.code,
            provider=exc.provider,
            status=exc.status,
            detail=exc.message,
        )
    elif isinstance(exc, StoreError):
        log.warning("turn failed: store unavailable", detail=str(exc))
    else:
        log.error("turn crashed", exc_info=exc)
