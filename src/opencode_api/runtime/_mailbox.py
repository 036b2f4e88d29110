"""The mailbox of one activation: the ordinary lane (bounded FIFO, one message at a time), the
control lane (seen at once), and the on-demand tasks that drain them.

No task exists while an actor is idle: a lane's task is started by the first message into an empty
lane and ends when the lane is empty again, so an idle actor costs a few small objects, not a task.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from typing import Any

import structlog

from opencode_api.runtime._actor import Actor
from opencode_api.runtime._envelope import Envelope
from opencode_api.runtime._errors import ActorDeadError, MailboxFull, SupervisorClosed
from opencode_api.runtime._host import MailboxHost, Receiver
from opencode_api.runtime._outbox import Outbox
from opencode_api.runtime._ref import ActorRef

_log = structlog.get_logger("opencode_api.runtime")

CONTROL_CAPACITY = 1024


class State(enum.Enum):
    ALIVE = "alive"
    STOPPING = "stopping"
    DEAD = "dead"


class Mailbox:
    """Both lanes of one activation, its current actor instance and its outbox."""

    # Slots: one per live actor, and idle actors must stay small (target <= 8 KB each).
    __slots__ = (
        "actor_id",
        "control",
        "control_task",
        "drain_task",
        "handling",
        "instance",
        "instance_ready",
        "last_active",
        "outbox",
        "queue",
        "ref",
        "restarts",
        "state",
        "supervisor",
    )

    def __init__(
        self, supervisor: MailboxHost, actor_id: str, instance: Receiver, outbox: Outbox[object]
    ) -> None:
        self.supervisor = supervisor
        self.actor_id = actor_id
        self.instance: Receiver | None = instance
        self.outbox = outbox
        self.queue: deque[Envelope] = deque()
        # Created on first use: control messages are rare and idle actors must stay small.
        self.control: deque[Envelope] | None = None
        self.drain_task: asyncio.Task[None] | None = None
        self.control_task: asyncio.Task[None] | None = None
        self.handling = False
        self.state = State.ALIVE
        self.last_active = supervisor.monotonic()
        self.restarts: deque[float] | None = None
        # Set while the instance is being rebuilt after a crash; control messages wait on it.
        self.instance_ready: asyncio.Event | None = None
        self.ref = ActorRef(self)

    @property
    def is_alive(self) -> bool:
        return self.state is State.ALIVE

    @property
    def depth(self) -> int:
        """Ordinary messages waiting (the one being handled not counted)."""
        return len(self.queue)

    @property
    def is_busy(self) -> bool:
        return self.handling or bool(self.queue)

    def is_idle(self) -> bool:
        """No work in either lane, nobody subscribed, and the actor agrees to be passivated."""
        if (
            self.state is not State.ALIVE
            or self.handling
            or self.queue
            or self.drain_task is not None
            or self.control_task is not None
            or self.control
            or self.outbox.subscriber_count
        ):
            return False
        instance = self.instance
        if instance is None:
            return False
        try:
            return instance.can_passivate()
        except Exception:
            _log.exception("can_passivate raised", actor_id=self.actor_id)
            return False

    def bind(self, instance: Actor) -> None:
        """Give an actor instance its id, outbox and ref (before its ``on_start``)."""
        instance.actor_id = self.actor_id
        instance.outbox = self.outbox
        instance.ref = self.ref

    def running_tasks(self, current: asyncio.Task[Any] | None) -> list[asyncio.Task[None]]:
        """The lane tasks still running, ``current`` left out."""
        return [
            task
            for task in (self.drain_task, self.control_task)
            if task is not None and task is not current and not task.done()
        ]

    def put(self, envelope: Envelope, *, first: bool = False) -> None:
        if self.state is not State.ALIVE:
            raise self._refusal()
        if self.supervisor.closing:
            raise SupervisorClosed("the supervisor is shutting down")
        if len(self.queue) >= self.supervisor.mailbox_size:
            raise MailboxFull(
                f"mailbox of actor {self.actor_id!r} is full "
                f"({self.supervisor.mailbox_size} messages waiting)"
            )
        if first:
            self.queue.appendleft(envelope)
        else:
            self.queue.append(envelope)
        if self.drain_task is None:
            self.drain_task = self.supervisor.spawn(self._drain(), self.actor_id)

    def put_control(self, envelope: Envelope) -> None:
        # Accepted while stopping too: during a shutdown grace period an abort must still arrive.
        if self.state is State.DEAD:
            raise self._refusal()
        control = self.control
        if control is None:
            control = self.control = deque()
        if len(control) >= CONTROL_CAPACITY:
            raise MailboxFull(f"control lane of actor {self.actor_id!r} is full")
        control.append(envelope)
        if self.control_task is None:
            self.control_task = self.supervisor.spawn(self._drain_control(), self.actor_id)

    def fail_control(self, error_message: str) -> None:
        control = self.control
        while control:
            control.popleft().fail(ActorDeadError(error_message))

    def _refusal(self) -> Exception:
        if self.supervisor.closing:
            return SupervisorClosed("the supervisor is shutting down")
        return ActorDeadError(f"actor {self.actor_id!r} is stopped")

    async def _drain(self) -> None:
        supervisor = self.supervisor
        queue = self.queue
        envelope: Envelope | None = None
        try:
            while queue and self.state is State.ALIVE:
                instance = self.instance
                if instance is None:
                    break
                envelope = queue.popleft()
                self.handling = True
                try:
                    result = await instance.receive(envelope.message)
                except asyncio.CancelledError as exc:
                    if _being_cancelled():
                        raise
                    # A CancelledError that nobody asked for escaped the handler: a crash, and
                    # the asker must not mistake it for its own cancellation.
                    self.handling = False
                    crash: Exception = ActorDeadError(
                        f"handler of actor {self.actor_id!r} raised CancelledError"
                    )
                    crash.__cause__ = exc
                    envelope.fail(crash)
                    envelope = None
                    await supervisor.restart(self, crash)
                    continue
                except Exception as exc:
                    self.handling = False
                    answered = envelope.fail(exc)
                    envelope = None
                    if isinstance(exc, instance.answer_errors):
                        if not answered:
                            _log.warning("message failed", actor_id=self.actor_id, error=repr(exc))
                        continue
                    await supervisor.restart(self, exc)
                    continue
                self.handling = False
                envelope.answer(result)
                envelope = None
        except asyncio.CancelledError:
            if envelope is not None:
                envelope.fail(ActorDeadError(f"actor {self.actor_id!r} stopped while handling"))
            raise
        finally:
            self.handling = False
            self.drain_task = None
            supervisor.went_idle(self)

    async def _drain_control(self) -> None:
        control = self.control
        envelope: Envelope | None = None
        try:
            while control:
                envelope = control.popleft()
                instance = self.instance
                if instance is None and self.instance_ready is not None:
                    await self.instance_ready.wait()
                    instance = self.instance
                if instance is None:
                    envelope.fail(ActorDeadError(f"actor {self.actor_id!r} is stopped"))
                    envelope = None
                    continue
                try:
                    result = await instance.receive_control(envelope.message)
                except asyncio.CancelledError:
                    if _being_cancelled():
                        raise
                    envelope.fail(ActorDeadError("control handler raised CancelledError"))
                except Exception as exc:
                    _log.warning("control handler raised", actor_id=self.actor_id, exc_info=exc)
                    envelope.fail(exc)
                else:
                    envelope.answer(result)
                envelope = None
        except asyncio.CancelledError:
            if envelope is not None:
                envelope.fail(ActorDeadError(f"actor {self.actor_id!r} stopped while handling"))
            raise
        finally:
            self.control_task = None
            self.supervisor.went_idle(self)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
