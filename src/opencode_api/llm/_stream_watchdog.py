"""One timer per provider stream: it ends a stream idle too long or past its total deadline.

aiohttp's ``sock_read`` timeout cancels and re-creates a timer on every network read; an
``asyncio.timeout`` per chunk does the same per chunk. The watchdog arms one timer for the stream
and re-arms it only when it fires before anything expired (at most once per idle period); a read
costs two attribute writes (``wait()`` before it, ``done()`` after it). Only the time spent
waiting on the provider counts: a consumer that is slow to ask for the next event is not idle.

When a wait expires, the timer cancels the waiting task; the stream's code catches the
``CancelledError`` and asks ``expired()``, which tells this cancellation apart from any other
(the same bookkeeping as ``asyncio.timeout``: ``Task.uncancel()``), then raises ``error()``.
"""

from __future__ import annotations

import asyncio
import math

from opencode_api.llm._errors import ProviderTimeoutError
from opencode_api.llm._provider_errors import timed_out

# Timers may run up to the loop's clock resolution early: a wait this close to expiry has expired.
_SLACK = 0.001


class StreamWatchdog:
    """``idle``: seconds a wait on the provider may last; ``total``: seconds the whole call may
    last (either None: no limit). Use as a context manager around the call."""

    __slots__ = (
        "_deadline",
        "_idle",
        "_loop",
        "_pending",
        "_provider",
        "_reason",
        "_since",
        "_task",
        "_timer",
    )

    def __init__(self, provider: str | None, *, idle: float | None, total: float | None) -> None:
        self._provider = provider
        self._idle = idle if idle and idle > 0 else math.inf
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self._deadline = now + total if total and total > 0 else math.inf
        self._since: float | None = None
        self._task: asyncio.Task[object] | None = None
        self._reason: str | None = None
        self._pending = False  # a cancellation of ours not yet claimed by expired()
        self._timer: asyncio.TimerHandle | None = None

    def __enter__(self) -> StreamWatchdog:
        self._arm(self._loop.time())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._since = None

    def wait(self) -> None:
        """The caller is about to await the provider (raises if the deadline has passed)."""
        now = self._loop.time()
        if now >= self._deadline - _SLACK:
            raise timed_out(self._provider)
        self._since = now
        self._task = asyncio.current_task()  # type: ignore[assignment]

    def done(self) -> None:
        """The provider answered: the wait is over."""
        self._since = None

    def expired(self) -> bool:
        """Whether the failure now propagating comes from this watchdog alone: call it where the
        ``CancelledError`` is caught (or the error an SDK made of it). It claims the watchdog's
        cancellation once; False when another cancellation is pending too (let that one win)."""
        if not self._pending or self._task is None:
            return False
        self._pending = False
        return self._task.uncancel() == 0

    def error(self) -> ProviderTimeoutError:
        if self._reason == "idle":
            return timed_out(self._provider, idle=self._idle)
        return timed_out(self._provider)

    def _arm(self, now: float) -> None:
        at = min(now + self._idle, self._deadline)
        if at != math.inf:
            self._timer = self._loop.call_at(at, self._check)

    def _check(self) -> None:
        self._timer = None
        now = self._loop.time()
        since = self._since
        if since is None:
            if now >= self._deadline - _SLACK:
                return  # the next wait() raises
            self._arm(now)
            return
        idle_end = since + self._idle
        expires = min(idle_end, self._deadline)
        if now < expires - _SLACK:
            self._timer = self._loop.call_at(expires, self._check)
            return
        task = self._task
        if task is None or task.done():
            return
        self._reason = "idle" if idle_end <= self._deadline else "deadline"
        self._pending = True
        task.cancel()
