"""The envelope that carries one message, and the future of its answer, through a mailbox lane."""

from __future__ import annotations

import asyncio
from typing import Any


class Envelope:
    """One message in a mailbox; ``future`` is set for ``ask`` and None for ``tell``."""

    # Slots, not a dataclass: one envelope is built per message on the hot path, and a plain
    # slotted class is created ~20% faster and is smaller than a dict-backed object.
    __slots__ = ("future", "message")

    def __init__(self, message: Any, future: asyncio.Future[Any] | None) -> None:
        self.message = message
        self.future = future

    def answer(self, result: Any) -> None:
        """Answer the asker, unless there is none or it stopped waiting (timeout, cancel)."""
        future = self.future
        if future is not None and not future.done():
            future.set_result(result)

    def fail(self, error: BaseException) -> bool:
        """Fail the asker; returns False when nobody was waiting for the answer."""
        future = self.future
        if future is not None and not future.done():
            future.set_exception(error)
            return True
        return False
