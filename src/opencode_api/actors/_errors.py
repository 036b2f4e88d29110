"""Errors of the session layer (under ``OpenCodeError``); http/ maps each to a status once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opencode_api.runtime import OpenCodeError


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
