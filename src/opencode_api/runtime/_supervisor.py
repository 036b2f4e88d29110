"""The supervisor: activates actors on first use (one activation per id), restarts crashed ones
(one_for_one, intensity limit), passivates idle ones, caps live actors, drains on shutdown.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from opencode_api.runtime._actor import Actor
from opencode_api.runtime._clock import Clock, SystemClock
from opencode_api.runtime._errors import (
    ActivationError,
    ActorDeadError,
    ActorLimitReached,
    SupervisorClosed,
)
from opencode_api.runtime._hooks import SupervisorHooks, SupervisorStats
from opencode_api.runtime._host import stop_quietly
from opencode_api.runtime._ledger import Ledger, RestartIntensity
from opencode_api.runtime._mailbox import Mailbox, State
from opencode_api.runtime._outbox import Outbox
from opencode_api.runtime._ref import ActorRef
from opencode_api.runtime._task_host import TaskHost

_log = structlog.get_logger("opencode_api.runtime")


class _Activation:
    """An activation in progress; racing callers wait on it instead of starting their own."""

    __slots__ = ("done", "error", "ref")

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.ref: ActorRef | None = None
        self.error: Exception | None = None


class Supervisor:
    """Owns every actor of one kind: their activations, their tasks and their lifecycles.

    ``factory(actor_id)`` builds an actor (it may load state from storage). Every task of the
    runtime (actor lane tasks and the idle reaper) is a child of one ``asyncio.TaskGroup`` that the
    supervisor holds from ``start()`` to ``shutdown()``; an idle actor has no task at all.

    An ``ActorRef`` belongs to one activation: after a stop, a passivation or a crash loop it
    raises ``ActorDeadError``, so callers keep ids and resolve them with ``get_or_activate``
    (a dictionary lookup when the actor is live), which reactivates a passivated actor.
    """

    def __init__(
        self,
        factory: Callable[[str], Awaitable[Actor]],
        *,
        mailbox_size: int = 100,
        outbox_size: int = 1024,
        outbox_start_seq: Callable[[str], int] | None = None,
        max_actors: int | None = None,
        idle_ttl: float | None = None,
        max_restarts: int = 3,
        restart_window: float = 5.0,
        clock: Clock | None = None,
        hooks: SupervisorHooks | None = None,
        reap_interval: float | None = None,
    ) -> None:
        if mailbox_size < 1:
            raise ValueError(f"mailbox_size must be at least 1, not {mailbox_size}")
        if max_actors is not None and max_actors < 1:
            raise ValueError(f"max_actors must be at least 1, not {max_actors}")
        self._factory = factory
        self._max_queue = mailbox_size
        self._outbox_size = outbox_size
        self._outbox_start_seq = outbox_start_seq
        self._max_actors = max_actors
        self._idle_ttl = idle_ttl
        self._intensity = RestartIntensity(max_restarts, restart_window)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._ledger = Ledger(hooks)
        self._reap_interval = reap_interval
        # Live actors in least-recently-used order (front = idle for the longest).
        self._cells: OrderedDict[str, Mailbox] = OrderedDict()
        self._activating: dict[str, _Activation] = {}
        self._stopping: dict[str, asyncio.Event] = {}
        self._is_closing = False
        self._tasks = TaskHost()
        self._shutdown_done: asyncio.Event | None = None

    # -- the host of its mailboxes (MailboxHost) ------------------------------------------------

    @property
    def closing(self) -> bool:
        """Shutting down: new messages are refused."""
        return self._is_closing

    @property
    def mailbox_size(self) -> int:
        return self._max_queue

    def monotonic(self) -> float:
        return self._clock.monotonic()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the task group that owns every runtime task (and the idle reaper, if any)."""
        if self._is_closing:
            raise SupervisorClosed("the supervisor is shut down; cannot start() it again")
        reaper = self._reap_forever if self._idle_ttl is not None else None
        await self._tasks.start(reaper, name="opencode_api.supervisor")

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def shutdown(self, grace: float = 10.0) -> None:
        """Refuse new work (``SupervisorClosed``), let running handlers finish within ``grace``
        seconds, cancel the rest, run every actor's ``on_stop`` and close every outbox. Queued
        ordinary asks get ``ActorDeadError``. Afterwards no task of the runtime is running."""
        if self._shutdown_done is not None:
            await self._shutdown_done.wait()
            return
        done = self._shutdown_done = asyncio.Event()
        self._is_closing = True
        try:
            await self._stop_mailboxes(list(self._cells.values()), grace, passivate=False)
            # Passivations that were already under way finish on their own.
            for event in list(self._stopping.values()):
                await event.wait()
            await self._tasks.close()
        finally:
            done.set()

    def spawn(self, coroutine: Coroutine[Any, Any, None], actor_id: str) -> asyncio.Task[None]:
        """Start an actor's lane task as a child of the supervisor's task group."""
        return self._tasks.spawn(coroutine, f"actor:{actor_id}")

    # -- activation ---------------------------------------------------------------------------

    def get(self, actor_id: str) -> ActorRef | None:
        """The live activation's ref, or None; never activates."""
        mailbox = self._cells.get(actor_id)
        return mailbox.ref if mailbox is not None else None

    def holds(self, actor_id: str) -> bool:
        """An activation of ``actor_id`` is live, starting or stopping."""
        return actor_id in self._cells or actor_id in self._activating or actor_id in self._stopping

    @property
    def activations(self) -> int:
        """Activations completed since creation (any actor)."""
        return self._ledger.activations

    async def get_or_activate(self, actor_id: str) -> ActorRef:
        """The ref of the live activation of ``actor_id``, activating it through the factory
        first if needed. Racing callers share one activation.

        Raises ``ActivationError`` (the factory or ``on_start`` raised; the cause is chained),
        ``ActorLimitReached`` (cap reached, nothing idle to passivate), ``SupervisorClosed``.
        """
        mailbox = self._cells.get(actor_id)
        if mailbox is not None:
            # Resolving an id counts as use: the caller is about to send, so the idle clock
            # restarts and the actor moves to the back of the eviction order.
            mailbox.last_active = self._clock.monotonic()
            self._cells.move_to_end(actor_id)
            return mailbox.ref
        if not self._tasks.running and not self._is_closing:
            await self.start()
        while True:
            if self._is_closing:
                raise SupervisorClosed("the supervisor is shutting down")
            mailbox = self._cells.get(actor_id)
            if mailbox is not None:
                self._cells.move_to_end(actor_id)
                return mailbox.ref
            activation = self._activating.get(actor_id)
            if activation is not None:
                await activation.done.wait()
                if activation.ref is not None and activation.ref.is_alive:
                    return activation.ref
                error = activation.error
                if error is not None:
                    # A fresh exception per waiter: one instance raised in many tasks would
                    # collect all their tracebacks.
                    raise type(error)(*error.args) from error.__cause__
                continue  # the activating caller was cancelled, or the actor already stopped
            stopping = self._stopping.get(actor_id)
            if stopping is not None:
                await stopping.wait()
                continue
            return await self._activate(actor_id)

    async def _activate(self, actor_id: str) -> ActorRef:
        activation = self._activating[actor_id] = _Activation()
        try:
            if self._max_actors is not None:
                await self._make_room(self._max_actors)
            try:
                instance = await self._factory(actor_id)
                start_seq = self._outbox_start_seq(actor_id) if self._outbox_start_seq else 0
                outbox: Outbox[Any] = Outbox(self._outbox_size, start_seq=start_seq)
                mailbox = Mailbox(self, actor_id, instance, outbox)
                mailbox.bind(instance)
                await instance.on_start()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise ActivationError(f"activating actor {actor_id!r} failed: {exc!r}") from exc
            if self._is_closing:
                await stop_quietly(actor_id, instance)
                outbox.close()
                raise SupervisorClosed("the supervisor is shutting down")
            self._cells[actor_id] = mailbox
            self._ledger.activated(actor_id)
            activation.ref = mailbox.ref
            return mailbox.ref
        except Exception as exc:
            activation.error = exc
            raise
        finally:
            del self._activating[actor_id]
            activation.done.set()

    async def _make_room(self, max_actors: int) -> None:
        # Activations in progress (this one included) count against the cap.
        while len(self._cells) + len(self._activating) > max_actors:
            victim = next((mailbox for mailbox in self._cells.values() if mailbox.is_idle()), None)
            if victim is None:
                raise ActorLimitReached(
                    f"{len(self._cells)} actors are live (cap {max_actors}) and none is idle"
                )
            await self._stop_mailboxes([victim], 0.0, passivate=True)

    # -- crashes ------------------------------------------------------------------------------

    async def restart(self, mailbox: Mailbox, error: Exception) -> None:
        """Replace a crashed instance (runs in the actor's own lane task), or stop the actor
        when it crashed more than ``max_restarts`` times within ``restart_window`` seconds."""
        actor_id = mailbox.actor_id
        _log.warning("actor crashed", actor_id=actor_id, exc_info=error)
        old, mailbox.instance = mailbox.instance, None
        ready = mailbox.instance_ready = asyncio.Event()
        try:
            if old is not None:
                await stop_quietly(actor_id, old)
            cause: Exception = error
            while mailbox.state is State.ALIVE:
                if not self._intensity.admit(mailbox, self._clock.monotonic()):
                    _log.error(
                        "actor crash loop, stopping it",
                        actor_id=actor_id,
                        restarts=self._intensity.max_restarts,
                        window=self._intensity.window,
                    )
                    await self._kill(mailbox, cause)
                    return
                self._ledger.restarted(actor_id)
                try:
                    instance = await self._factory(actor_id)
                    mailbox.bind(instance)
                    await instance.on_start()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    _log.warning("actor restart failed", actor_id=actor_id, exc_info=exc)
                    cause = exc
                    continue
                mailbox.instance = instance
                return
        finally:
            mailbox.instance_ready = None
            ready.set()

    async def _kill(self, mailbox: Mailbox, cause: Exception) -> None:
        if mailbox.state is not State.ALIVE:
            return  # someone else is stopping it and will finish the job
        reason = f"actor {mailbox.actor_id!r} crashed too often and was stopped"
        self._begin_stop(mailbox, reason, cause)
        control = mailbox.control_task
        if control is not None and control is not asyncio.current_task():
            control.cancel()
            await asyncio.wait({control})
        await self._finish_stop(mailbox, passivated=False)

    # -- stopping -----------------------------------------------------------------------------

    async def stop(self, actor_id: str, *, grace: float = 0.0) -> bool:
        """Stop one actor: queued asks get ``ActorDeadError``, the running handler gets up to
        ``grace`` seconds and is then cancelled, ``on_stop`` runs, the outbox is closed.
        False when no activation of ``actor_id`` was live."""
        mailbox = self._cells.get(actor_id)
        if mailbox is None:
            stopping = self._stopping.get(actor_id)
            if stopping is not None:
                await stopping.wait()
            return False
        await self._stop_mailboxes([mailbox], grace, passivate=False)
        return True

    async def passivate_idle(self) -> int:
        """Passivate every actor idle (see ``Actor.can_passivate``; no work, no subscribers) for
        longer than ``idle_ttl``; returns how many. The next ``get_or_activate`` reactivates."""
        ttl = self._idle_ttl
        if ttl is None or self._is_closing:
            return 0
        now = self._clock.monotonic()
        victims = [
            mailbox
            for mailbox in self._cells.values()
            if now - mailbox.last_active > ttl and mailbox.is_idle()
        ]
        if victims:
            await self._stop_mailboxes(victims, 0.0, passivate=True)
        return len(victims)

    async def _reap_forever(self) -> None:
        ttl = self._idle_ttl if self._idle_ttl is not None else 60.0
        interval = self._reap_interval if self._reap_interval is not None else max(ttl / 2, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.passivate_idle()
            except Exception:
                _log.exception("idle passivation failed")

    async def _stop_mailboxes(
        self, mailboxes: list[Mailbox], grace: float, *, passivate: bool
    ) -> None:
        reason = "passivated" if passivate else "stopped"
        for mailbox in mailboxes:
            self._begin_stop(mailbox, f"actor {mailbox.actor_id!r} was {reason}", None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # An actor that stops itself from its own handler must not wait for that handler.
        current = asyncio.current_task()
        while tasks := {t for mailbox in mailboxes for t in mailbox.running_tasks(current)}:
            remaining = deadline - loop.time()
            if remaining > 0:
                await asyncio.wait(tasks, timeout=remaining)
                continue
            for mailbox in mailboxes:
                mailbox.state = State.DEAD  # refuse further control messages
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        for mailbox in mailboxes:
            await self._finish_stop(mailbox, passivated=passivate)

    def _begin_stop(self, mailbox: Mailbox, reason: str, cause: Exception | None) -> None:
        actor_id = mailbox.actor_id
        mailbox.state = State.STOPPING
        if self._cells.get(actor_id) is mailbox:
            del self._cells[actor_id]
        self._stopping[actor_id] = asyncio.Event()
        queue = mailbox.queue
        while queue:
            error = ActorDeadError(reason)
            error.__cause__ = cause
            queue.popleft().fail(error)

    async def _finish_stop(self, mailbox: Mailbox, *, passivated: bool) -> None:
        actor_id = mailbox.actor_id
        mailbox.state = State.DEAD
        mailbox.fail_control(f"actor {actor_id!r} stopped")
        instance, mailbox.instance = mailbox.instance, None
        try:
            if instance is not None:
                await stop_quietly(actor_id, instance)
        finally:
            mailbox.outbox.close()
            event = self._stopping.pop(actor_id, None)
            if event is not None:
                event.set()
        self._ledger.ended(actor_id, passivated=passivated)

    # -- bookkeeping --------------------------------------------------------------------------

    def went_idle(self, mailbox: Mailbox) -> None:
        """A lane ran dry: the actor's idle clock starts and it moves to the back of the LRU."""
        mailbox.last_active = self._clock.monotonic()
        if self._cells.get(mailbox.actor_id) is mailbox:
            self._cells.move_to_end(mailbox.actor_id)

    def stats(self) -> SupervisorStats:
        return self._ledger.stats(self._cells)

    def __len__(self) -> int:
        return len(self._cells)

    def ids(self) -> list[str]:
        return list(self._cells)
