"""What every session actor of one runtime shares, and what a finished turn reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from opencode_api.actors._budget import BudgetPolicy
from opencode_api.actors._deferred import DeferredWrites
from opencode_api.actors._events import BusEvent
from opencode_api.actors._quota import QuotaPolicy
from opencode_api.llm import LLMClient
from opencode_api.runtime import Outbox
from opencode_api.settings import Settings
from opencode_api.store import Store, Usage
from opencode_api.tools import ToolRegistry

log = structlog.get_logger("opencode_api.session")


@dataclass(frozen=True, slots=True)
class TurnSummary:
    """What a finished turn did, for metrics listeners."""

    session_id: str
    model: str
    stop_reason: str
    usage: Usage
    cost: float
    error_type: str | None
    duration: float
    # Aborted turns: seconds from the abort request to the end of the turn's stream.
    abort_latency: float | None = None


@dataclass(slots=True)
class SessionDeps:
    """What every session actor of one runtime shares."""

    settings: Settings
    store: Store
    llm: LLMClient
    tools: ToolRegistry
    bus: Outbox[BusEvent]
    quota: QuotaPolicy
    budgets: BudgetPolicy
    # The ends of turns the store refused, retried until it is back.
    writes: DeferredWrites = field(default_factory=DeferredWrites)
    turn_listeners: list[Callable[[TurnSummary], None]] = field(default_factory=list)
    # Automatic titles in flight, process-wide (``TITLE_CONCURRENCY``); set in __post_init__.
    title_slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.title_slots = asyncio.Semaphore(self.settings.title_concurrency)

    def publish_bus(
        self,
        event_type: str,
        session_id: str,
        user_id: str | None,
        properties: dict[str, Any] | Callable[[], dict[str, Any]],
    ) -> None:
        """Publish on the global bus; ``properties`` may be a callable, built only if listened."""
        bus = self.bus
        if not bus.subscriber_count:
            return  # nobody listens: skip building (and dumping) the payload
        data = properties() if callable(properties) else properties
        data.setdefault("session_id", session_id)
        bus.publish(BusEvent(event_type, data, session_id=session_id, user_id=user_id))

    def turn_ended(self, summary: TurnSummary) -> None:
        """Tell every listener; one that raises is logged and the others still hear."""
        for listener in self.turn_listeners:
            try:
                listener(summary)
            except Exception:
                log.exception("turn listener failed")
