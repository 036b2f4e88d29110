"""Injectable clocks: TTLs and restart windows read time through one, so tests never sleep."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of monotonic time in seconds."""

    def monotonic(self) -> float: ...


class SystemClock(Clock):
    """The real clock (``time.monotonic``)."""

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock(Clock):
    """A clock that moves only when told to; for deterministic tests of TTLs and windows."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward; a monotonic clock never goes back."""
        if seconds < 0:
            raise ValueError(f"cannot move a monotonic clock back ({seconds} s)")
        self._now += seconds
