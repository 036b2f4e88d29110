"""The small protocols through which a mailbox, its actor, its ref and its supervisor meet.

They break what would otherwise be a circle of imports (a mailbox needs its host and its actor, a
supervisor builds mailboxes, a ref wraps a mailbox): each module depends on these shapes, never on
another's class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

import structlog

from opencode_api.runtime._envelope import Envelope
from opencode_api.runtime._outbox import Outbox


class Receiver(Protocol):
    """What a mailbox needs of the actor instance it delivers to (``Actor`` is one)."""

    answer_errors: tuple[type[Exception], ...]

    async def receive(self, message: Any) -> Any: ...

    async def receive_control(self, message: Any) -> Any: ...

    def can_passivate(self) -> bool: ...

    async def on_stop(self) -> None: ...


class Lanes(Protocol):
    """What an ``ActorRef`` needs of the mailbox it sends to."""

    actor_id: str
    outbox: Outbox[Any]

    @property
    def depth(self) -> int: ...

    @property
    def is_alive(self) -> bool: ...

    @property
    def is_busy(self) -> bool: ...

    def put(self, envelope: Envelope, *, first: bool = False) -> None: ...

    def put_control(self, envelope: Envelope) -> None: ...


class MailboxHost(Protocol):
    """What a mailbox needs of the supervisor that owns it: limits, a clock, a task owner, and
    the crash and idle callbacks. ``mailbox`` is the calling mailbox (typed loosely: the host
    knows its own mailbox class)."""

    @property
    def closing(self) -> bool: ...

    @property
    def mailbox_size(self) -> int: ...

    def monotonic(self) -> float: ...

    def spawn(self, coroutine: Coroutine[Any, Any, None], actor_id: str) -> asyncio.Task[None]: ...

    async def restart(self, mailbox: Any, error: Exception) -> None: ...

    def went_idle(self, mailbox: Any) -> None: ...


async def stop_quietly(actor_id: str, receiver: Receiver) -> None:
    """Run ``receiver.on_stop()``; an exception from it is logged, never raised."""
    try:
        await receiver.on_stop()
    except asyncio.CancelledError:
        raise
    except Exception:
        structlog.get_logger("opencode_api.runtime").exception("on_stop raised", actor_id=actor_id)
