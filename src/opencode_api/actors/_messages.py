"""Messages a SessionActor receives: ordinary (mailbox, in order) and control (seen at once).

Frozen, slotted and plain-valued so they can cross the placement seam.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from opencode_api.actors._budget import TurnBudget
from opencode_api.inputs import ResponseFormat
from opencode_api.store import Part, Reservation

# Tickets order turns against aborts: an abort cancels every turn holding a smaller ticket.
_tickets = itertools.count(1)


def next_ticket() -> int:
    return next(_tickets)


@dataclass(frozen=True, slots=True)
class TurnOptions:
    """The per-turn knobs of a MessageRequest, with the model already resolved."""

    model: str  # LiteLLM model string, e.g. "openai/gpt-4o-mini"
    provider_id: str
    model_id: str
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    tools_enabled: bool = True
    max_steps: int = 50
    # What the turn may spend (API.md "Budgets"); None: no limit applies.
    budget: TurnBudget | None = None
    # The final answer's required format (API.md "Richer input and output").
    response_format: ResponseFormat | None = None
    # The tools this turn may use; None: every enabled tool.
    tools: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class RunTurn:
    user_message_id: str
    content: str
    options: TurnOptions
    ticket: int
    reservation: Reservation | None = None
    # When the user message was stored; its reply is listed right after it (see SessionActor).
    sent_at: datetime | None = None
    # A regenerate: delete this user message and all after it before the turn runs.
    replaces: str | None = None
    # The user message's ``file`` parts (their bytes are read from the store by file id).
    parts: tuple[Part, ...] = ()


@dataclass(frozen=True, slots=True)
class Compact:
    model: str | None = None
    auto: bool = False


@dataclass(frozen=True, slots=True)
class GenerateTitle:
    message: str | None = None
    model: str | None = None


# -- control lane --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Abort:
    """Abort the running turn and every queued one (``running_only``: the running one only);
    answered with whether anything was cancelled."""

    ticket: int
    # time.monotonic() when the abort was asked for: the turn's metrics time its stream's end.
    requested_at: float | None = None
    running_only: bool = False


@dataclass(frozen=True, slots=True)
class AnswerQuestion:
    """A reply (``answers``) or a rejection for a question the running turn waits on."""

    question_id: str
    answers: list[list[str]] | None = None
    rejected: bool = False


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    """Delete one message of the session (history edits are serialized with turns)."""

    message_id: str


@dataclass(frozen=True, slots=True)
class Revert:
    """Hide ``message_id`` and what follows it (None: show them again), through the mailbox."""

    message_id: str | None
