"""``ActorRef``: the handle through which callers message one activation of an actor."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from opencode_api.runtime._envelope import Envelope
from opencode_api.runtime._errors import AskTimeout

if TYPE_CHECKING:
    from opencode_api.runtime._host import Lanes
    from opencode_api.runtime._outbox import Outbox, Subscription


class ActorRef:
    """Messages one activation. After it stops (stop, passivation, crash loop) every send raises
    ``ActorDeadError``; resolve the id again with ``Supervisor.get_or_activate`` for a new one."""

    __slots__ = ("_mailbox", "actor_id")

    def __init__(self, mailbox: Lanes) -> None:
        self._mailbox = mailbox
        self.actor_id = mailbox.actor_id

    def __repr__(self) -> str:
        return f"<ActorRef {self.actor_id!r} alive={self.is_alive}>"

    def tell(self, message: Any, *, first: bool = False) -> None:
        """Queue an ordinary message (``first``: ahead of those waiting); raises ``MailboxFull``
        at once when full, ``ActorDeadError`` when the actor stopped, ``SupervisorClosed`` during
        shutdown."""
        self._mailbox.put(Envelope(message, None), first=first)

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:
        """Queue an ordinary message and wait for ``receive``'s answer (or its exception).

        ``AskTimeout`` after ``timeout`` seconds (the message is still handled);
        ``ActorDeadError`` if the actor stops or crash-loops before answering.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._mailbox.put(Envelope(message, future))
        return await _answer(future, timeout, self.actor_id)

    def tell_control(self, message: Any) -> None:
        """Queue a control message, delivered at once even while ``receive`` runs."""
        self._mailbox.put_control(Envelope(message, None))

    async def ask_control(self, message: Any, *, timeout: float | None = None) -> Any:
        """Send a control message and wait for ``receive_control``'s answer (or its exception)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._mailbox.put_control(Envelope(message, future))
        return await _answer(future, timeout, self.actor_id)

    def subscribe(self, after: int | None = None, *, max_pending: int = 256) -> Subscription[Any]:
        """Subscribe to the actor's outbox (see ``Outbox.subscribe``)."""
        return self._mailbox.outbox.subscribe(after, max_pending=max_pending)

    @property
    def outbox(self) -> Outbox[Any]:
        return self._mailbox.outbox

    @property
    def mailbox_depth(self) -> int:
        """Ordinary messages waiting, not counting the one being handled."""
        return self._mailbox.depth

    @property
    def is_busy(self) -> bool:
        """Handling an ordinary message or having one waiting."""
        return self._mailbox.is_busy

    @property
    def is_alive(self) -> bool:
        return self._mailbox.is_alive


async def _answer(future: asyncio.Future[Any], timeout: float | None, actor_id: str) -> Any:
    if timeout is None:
        return await future
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await future
    except TimeoutError:
        # The handler itself may have raised TimeoutError: only our own deadline is AskTimeout.
        if deadline.expired():
            raise AskTimeout(f"no answer from actor {actor_id!r} within {timeout} s") from None
        raise
