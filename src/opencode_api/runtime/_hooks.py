"""Supervisor metrics: a snapshot (``SupervisorStats``) and event hooks (``SupervisorHooks``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SupervisorStats:
    """A snapshot of a supervisor; counters are totals since it was created.

    ``mailbox_depths`` lists the deepest non-empty mailboxes only (at most 20), by actor id.
    """

    live: int
    busy: int
    activations: int
    restarts: int
    passivations: int
    stopped: int
    mailbox_depth_total: int
    mailbox_depths: dict[str, int] = field(default_factory=dict)


class SupervisorHooks(Protocol):
    """Optional callbacks for metrics; subclass and override what you need (defaults do nothing).

    They run synchronously on the event loop: keep them cheap. Exceptions are logged and ignored.
    """

    def on_activate(self, actor_id: str) -> None:
        return None

    def on_passivate(self, actor_id: str) -> None:
        return None

    def on_restart(self, actor_id: str) -> None:
        return None

    def on_stop(self, actor_id: str) -> None:
        return None


class NoHooks(SupervisorHooks):
    """The default: no metrics."""
