"""The ``Actor`` base class: subclass it, keep state on the instance, handle messages in hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opencode_api.runtime._outbox import Outbox
    from opencode_api.runtime._ref import ActorRef


class Actor:
    """Base class of every actor. The supervisor builds one through its factory and sets
    ``actor_id``, ``outbox`` and ``ref`` before ``on_start``.

    Ordinary messages reach ``receive`` one at a time in FIFO order; control messages reach
    ``receive_control`` at once, concurrently with a running ``receive`` (but in order among
    themselves). A crash of ``receive`` (any exception but cancellation, and not one of
    ``answer_errors``) answers the ask with that exception and replaces the instance with a fresh
    one from the factory (one_for_one restart); the outbox and the queued messages survive the
    restart.
    """

    actor_id: str
    outbox: Outbox[Any]
    ref: ActorRef
    # Exceptions ``receive`` may raise as an answer (a refused request, an outage of something the
    # actor depends on): they go to the asker and are not crashes, so they neither restart the
    # actor nor count toward the restart intensity. Everything else is a bug: one_for_one restart.
    answer_errors: tuple[type[Exception], ...] = ()

    async def on_start(self) -> None:
        """Called once before the first message. Raising here fails the activation: callers of
        ``get_or_activate`` get ``ActivationError`` (and ``on_stop`` is not called)."""

    async def on_stop(self) -> None:
        """Called once when the instance is discarded: stop, passivation, shutdown or after a
        crash. Exceptions are logged, not raised; cancellation is re-raised."""

    async def receive(self, message: Any) -> Any:
        """Handle one ordinary message; the return value answers ``ask``."""
        raise NotImplementedError(f"{type(self).__name__} does not handle {type(message).__name__}")

    async def receive_control(self, message: Any) -> Any:
        """Handle one control message (abort, stop, answers); runs while ``receive`` may be
        running. The return value answers ``ask_control``; an exception is returned to the asker
        and logged, and is not a crash."""
        raise NotImplementedError(
            f"{type(self).__name__} does not handle control message {type(message).__name__}"
        )

    def can_passivate(self) -> bool:
        """Whether idle passivation may stop this actor now (default: yes)."""
        return True
