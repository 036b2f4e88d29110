"""Which sessions have turns in flight: the live ``busy``/``idle`` status of a session."""

from __future__ import annotations

from typing import Literal

from opencode_api.runtime import SupervisorHooks


class PendingTurns:
    """Turns sent and not yet ended, per session. A count drops in the same step as its turn's
    terminal event is published, so a client that saw ``done`` never sees the session busy."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def status(self, session_id: str) -> Literal["idle", "busy"]:
        return "busy" if self._counts.get(session_id, 0) > 0 else "idle"

    def add(self, session_id: str) -> None:
        self._counts[session_id] = self._counts.get(session_id, 0) + 1

    def done(self, session_id: str) -> None:
        count = self._counts.get(session_id, 0) - 1
        if count > 0:
            self._counts[session_id] = count
        else:
            self._counts.pop(session_id, None)

    def clear(self, session_id: str) -> None:
        """The session's actor stopped: no turn of it is left to run."""
        self._counts.pop(session_id, None)


class ClearOnStop:
    """Supervisor hooks: a session whose actor stopped (crash loop, deletion, shutdown) has no
    turn left to run, so it is not busy any more; the other hooks go to ``inner``."""

    def __init__(self, pending: PendingTurns, inner: SupervisorHooks | None) -> None:
        self._pending = pending
        self._inner = inner

    def on_activate(self, actor_id: str) -> None:
        if self._inner is not None and hasattr(self._inner, "on_activate"):
            self._inner.on_activate(actor_id)

    def on_passivate(self, actor_id: str) -> None:
        if self._inner is not None and hasattr(self._inner, "on_passivate"):
            self._inner.on_passivate(actor_id)

    def on_restart(self, actor_id: str) -> None:
        if self._inner is not None and hasattr(self._inner, "on_restart"):
            self._inner.on_restart(actor_id)

    def on_stop(self, actor_id: str) -> None:
        self._pending.clear(actor_id)
        if self._inner is not None and hasattr(self._inner, "on_stop"):
            self._inner.on_stop(actor_id)
