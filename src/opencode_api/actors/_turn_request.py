"""``TurnRequest``: one user message and its turn's options, as a caller sends it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

from opencode_api.actors._errors import InvalidRequestError
from opencode_api.inputs import InputPart, ResponseFormat
from opencode_api.store import Part

# interrupt: abort the running turn and run this one next, ahead of the queued ones.
BusyPolicy = Literal["queue", "reject", "interrupt"]


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """What http/ (or an embedding application) asks of ``Runtime.send_request``. ``model`` is
    a full model string (``openai/gpt-4o-mini``); ``model_id`` may be one too, or a bare name with
    ``provider_id``; unset, the session's model or ``DEFAULT_MODEL`` applies."""

    session_id: str
    content: str
    user_id: str | None = None
    model: str | None = None
    provider_id: str | None = None
    model_id: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    tools_enabled: bool = True
    max_steps: int | None = None
    busy: BusyPolicy = "queue"
    # Text and files after ``content`` (API.md "Richer input and output").
    parts: tuple[InputPart, ...] = ()
    # The final answer's required format; ``output`` on ``done`` holds it parsed.
    response_format: ResponseFormat | None = None
    # The tools this turn may use (None: every enabled tool).
    tools: tuple[str, ...] | None = None
    # A regenerate: the user message this one replaces (it and all after it are deleted first).
    replaces: str | None = None
    # Stored ``file`` parts carried over (a regenerate keeps its message's files).
    files: tuple[Part, ...] = ()

    def check(self) -> None:
        """Refuse what no turn can run (the HTTP schema refuses it earlier; embedders too)."""
        if not self.parts and not self.files and (not self.content or not self.content.strip()):
            raise InvalidRequestError("content must be a non-empty string", field="content")
        if self.max_steps is not None and self.max_steps < 1:
            raise InvalidRequestError("max_steps must be >= 1", field="max_steps")


class SendOptions(TypedDict, total=False):
    """``TurnRequest``'s optional fields, as ``Runtime.send`` takes them by keyword."""

    user_id: str | None
    model: str | None
    provider_id: str | None
    model_id: str | None
    system: str | None
    temperature: float | None
    max_tokens: int | None
    tools_enabled: bool
    max_steps: int | None
    busy: BusyPolicy
    parts: tuple[InputPart, ...]
    response_format: ResponseFormat | None
    tools: tuple[str, ...] | None
