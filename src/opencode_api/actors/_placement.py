"""``Placement``: where a session's actor lives, and how a command or an event stream reaches it.

The ``Runtime`` is the only caller: http/ and embedding code never learn how sessions are placed.
``LocalPlacement`` keeps every session of this process in one ``Supervisor``; ``WorkerPlacement``
(``serve --workers N``) gives each worker process its share and names the peer hosting the rest,
so http/ can pass a request there as bytes. A Ray placement slots in here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple, Protocol

from opencode_api.runtime import Actor, ActorRef, Supervisor, SupervisorHooks, SupervisorStats
from opencode_api.settings import Settings


class Peer(NamedTuple):
    """Another process hosting sessions: a name for operators and where to reach it."""

    name: str
    address: str  # a Unix socket path


class Placement(Protocol):
    """The seam between the Runtime and wherever sessions' actors run."""

    def home(self, session_id: str) -> Peer | None:
        """The peer hosting ``session_id``, or None when this process hosts it."""

    def peers(self) -> list[Peer]:
        """Every other process hosting sessions (their buses belong to ``GET /event`` too)."""

    async def start(self) -> None: ...

    async def close(self, grace: float) -> None:
        """Stop taking commands; running turns get ``grace`` seconds, then are aborted."""

    def live(self, session_id: str) -> ActorRef | None:
        """The session's live actor, or None (never activates)."""

    def holds(self, session_id: str) -> int | None:
        """None when an actor of the session is live, starting or stopping here; else the
        count of activations here so far (of any session: a read of the session between two
        equal counts saw no actor of it)."""

    async def reach(self, session_id: str) -> ActorRef:
        """The session's actor, activated first when it is not live."""

    async def stop(self, session_id: str, grace: float) -> None: ...

    def stats(self) -> SupervisorStats: ...


def _outbox_start_seq(_actor_id: str) -> int:
    # Sequence numbers stay increasing across activations of one session (SSE Last-Event-ID):
    # each activation starts at the wall clock in microseconds.
    return time.time_ns() // 1000


class LocalPlacement:
    """Every session of this process in one supervisor (one event loop, one core)."""

    def __init__(
        self,
        settings: Settings,
        activate: Callable[[str], Awaitable[Actor]],
        hooks: SupervisorHooks | None = None,
    ) -> None:
        self.supervisor = Supervisor(
            activate,
            mailbox_size=settings.mailbox_size,
            outbox_size=settings.outbox_size,
            outbox_start_seq=_outbox_start_seq,
            max_actors=settings.max_live_sessions,
            idle_ttl=settings.session_idle_ttl,
            hooks=hooks,
            reap_interval=min(60.0, settings.session_idle_ttl / 2),
        )

    def home(self, session_id: str) -> Peer | None:
        return None

    def peers(self) -> list[Peer]:
        return []

    async def start(self) -> None:
        await self.supervisor.start()

    async def close(self, grace: float) -> None:
        await self.supervisor.shutdown(grace)

    def live(self, session_id: str) -> ActorRef | None:
        return self.supervisor.get(session_id)

    def holds(self, session_id: str) -> int | None:
        supervisor = self.supervisor
        return None if supervisor.holds(session_id) else supervisor.activations

    async def reach(self, session_id: str) -> ActorRef:
        return await self.supervisor.get_or_activate(session_id)

    async def stop(self, session_id: str, grace: float) -> None:
        await self.supervisor.stop(session_id, grace=grace)

    def stats(self) -> SupervisorStats:
        return self.supervisor.stats()
