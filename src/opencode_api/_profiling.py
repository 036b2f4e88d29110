"""A CPU profile of a serving process, in windows (``CPU_PROFILE``; ``opencode-api bench
--profile`` reads it).

With ``CPU_PROFILE=PREFIX`` the server runs under ``cProfile`` and, on each ``SIGUSR1``, writes
what it profiled since the previous signal to ``PREFIX.N.pstats`` (N = 0, 1, ...) with the time
spent in garbage collection (measured with ``gc.callbacks``) in ``PREFIX.N.gc``, then starts a
new window. Profiling slows the server down: use it to split the CPU between components, not to
measure it.
"""

from __future__ import annotations

import cProfile
import gc
import signal
import time
from pathlib import Path
from typing import Any


class WindowProfiler:
    """See the module docstring."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._window = 0
        self._profile = cProfile.Profile()
        self._gc_seconds = 0.0
        self._gc_started: float | None = None

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        signal.signal(signal.SIGUSR1, lambda _signum, _frame: self.dump())
        self._profile.enable()

    def _on_gc(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.thread_time()
        elif self._gc_started is not None:
            self._gc_seconds += time.thread_time() - self._gc_started
            self._gc_started = None

    def dump(self) -> None:
        """Write the window that ends now and start the next one."""
        self._profile.disable()
        path = f"{self._prefix}.{self._window}"
        self._profile.dump_stats(f"{path}.pstats.part")
        Path(f"{path}.gc").write_text(f"{self._gc_seconds:.6f}\n")
        Path(f"{path}.pstats.part").rename(f"{path}.pstats")  # readers see whole files only
        self._window += 1
        self._gc_seconds = 0.0
        self._profile = cProfile.Profile()
        self._profile.enable()
