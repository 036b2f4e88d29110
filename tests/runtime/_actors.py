"""Small actors shared by the runtime tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from opencode_api.runtime import Actor


@dataclass
class Journal:
    """What the actors of one test did, across activations and restarts."""

    built: int = 0
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    handled: list[tuple[str, Any]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    waiting: dict[str, asyncio.Event] = field(default_factory=dict)
    instances: dict[str, Recorder] = field(default_factory=dict)

    def waiting_in(self, actor_id: str) -> asyncio.Event:
        """Set once a handler of ``actor_id`` is blocked in ``"wait"``."""
        return self.waiting.setdefault(actor_id, asyncio.Event())


class Refused(Exception):
    """An answer, not a crash: ``Recorder`` lists it in ``answer_errors``."""


class Recorder(Actor):
    """Records messages; understands a few commands for the tests.

    ``"wait"`` blocks until the control lane says ``"release"`` or ``"abort"``;
    ``("burst", n)`` publishes n events, yielding between them; ``"boom"`` raises (a crash);
    ``"refuse"`` raises ``Refused`` (an answer error).
    """

    answer_errors = (Refused,)

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.count = 0
        self.gate = asyncio.Event()
        self.aborted = False
        self.passivable = True

    async def on_start(self) -> None:
        self.journal.started.append(self.actor_id)
        self.journal.instances[self.actor_id] = self

    async def on_stop(self) -> None:
        self.journal.stopped.append(self.actor_id)

    async def receive(self, message: Any) -> Any:
        self.journal.handled.append((self.actor_id, message))
        match message:
            case "boom":
                raise ValueError("boom")
            case "refuse":
                raise Refused("refused")
            case "wait":
                self.journal.waiting_in(self.actor_id).set()
                try:
                    await self.gate.wait()
                except asyncio.CancelledError:
                    self.journal.cancelled.append(self.actor_id)
                    raise
                return "aborted" if self.aborted else "released"
            case ("burst", int(n)):
                for i in range(n):
                    self.outbox.publish(i)
                    await asyncio.sleep(0)
                return n
            case _:
                self.count += 1
                return self.count

    async def receive_control(self, message: Any) -> Any:
        match message:
            case "abort":
                self.aborted = True
                self.gate.set()
                return "aborting"
            case "release":
                self.gate.set()
                return "releasing"
            case "fail":
                raise RuntimeError("control failed")
            case _:
                return ("control", message, self.count)

    def can_passivate(self) -> bool:
        return self.passivable


def recorder_factory(journal: Journal) -> Any:
    async def factory(actor_id: str) -> Recorder:
        journal.built += 1
        return Recorder(journal)

    return factory
