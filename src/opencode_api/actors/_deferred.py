"""``DeferredWrites``: the end of a turn that the store refused, written when the store is back.

A turn always ends for its client (``error`` or ``done``) whatever the store does; what the store
could not take at that moment (the final state of the reply, the user message's status, the quota
settlement) waits here and is retried with backoff until it lands or the runtime closes. A process
that dies with writes still pending leaves its turns ``running``; the owner-lease recovery of the
next process (or of another live one) marks them ``interrupted``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import structlog

from opencode_api.store import StoreError

log = structlog.get_logger("opencode_api.session")

Write = Callable[[], Awaitable[object]]


class DeferredWrites:
    """Runs groups of writes in order; a group the store refuses is retried from where it
    stopped. One retry task at most, owned by this object, alive only while writes wait."""

    def __init__(self, *, first_delay: float = 0.5, max_delay: float = 10.0) -> None:
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._pending: deque[tuple[str, list[Write]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self.drained = asyncio.Event()
        self.drained.set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._pending)

    async def run(self, what: str, writes: Sequence[Write]) -> bool:
        """Run ``writes`` now, in order; True when all landed. On a ``StoreError`` the rest
        (the failed one included) is kept and retried in the background; another exception is a
        bug: logged, and the rest is dropped."""
        remaining = await self._attempt(what, list(writes))
        if remaining is None:
            return True
        if not remaining:
            return False
        self._pending.append((what, remaining))
        self.drained.clear()
        log.warning("store unavailable: the end of a turn will be written later", what=what)
        if self._closed:
            return False
        if self._task is None:
            self._task = asyncio.create_task(self._retry(), name="opencode_api.deferred_writes")
        return False

    async def _attempt(self, what: str, writes: list[Write]) -> list[Write] | None:
        """None: all landed. A list: what is left after a store error ([] after a bug)."""
        for index, write in enumerate(writes):
            try:
                await write()
            except StoreError:
                return writes[index:]
            except Exception:
                log.exception("a write at the end of a turn failed", what=what)
                return []
        return None

    async def _retry(self) -> None:
        delay = self._first_delay
        try:
            while self._pending:
                what, writes = self._pending[0]
                remaining = await self._attempt(what, writes)
                if remaining:
                    self._pending[0] = (what, remaining)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._max_delay)
                    continue
                self._pending.popleft()
                delay = self._first_delay
                if remaining is None:
                    log.info("deferred end of a turn written", what=what)
        finally:
            self._task = None
            if not self._pending:
                self.drained.set()

    async def close(self, timeout: float = 2.0) -> None:
        """Give the pending writes one last chance within ``timeout``, then drop them (they are
        logged; the turns they end are marked interrupted by the next recovery)."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if not self._pending:
            return
        try:
            async with asyncio.timeout(timeout):
                while self._pending:
                    what, writes = self._pending[0]
                    if await self._attempt(what, writes):
                        break
                    self._pending.popleft()
        except TimeoutError:
            pass
        for what, _ in self._pending:
            log.error("store unavailable at shutdown: the end of a turn was not written", what=what)
        self._pending.clear()
        self.drained.set()
