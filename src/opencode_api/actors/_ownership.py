"""``TurnLease``: this process's claim on the turns it runs, and the recovery of orphaned turns.

Each runtime holds a lease in the store (owner id, host, pid, heartbeat) and renews it every
third of its TTL; turns it stores carry its owner id. Recovery (at start-up, then with every
renewal) marks ``interrupted`` only the turns whose owner is gone: its lease expired, or it ran on
this host under a pid that is no longer alive (so a restarted server recovers at once instead of
after a TTL). A second process on the same database never touches this one's live turns.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from datetime import timedelta

import structlog

from opencode_api.store import Owner, Store, StoreError, utcnow

log = structlog.get_logger("opencode_api.runtime")


# Owners of this process that are open: several runtimes may share a process (embedding, tests).
_OPEN_HERE: set[str] = set()


def _alive(owner: Owner) -> bool:
    pid = owner.pid
    if pid == os.getpid():
        # An owner with our pid that is not one of ours is an earlier incarnation (a container's
        # pid 1, say).
        return owner.id in _OPEN_HERE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


class TurnLease:
    """The lease of one runtime; ``start`` claims it (and recovers), ``close`` releases it."""

    def __init__(self, store: Store, *, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        host = socket.gethostname()
        pid = os.getpid()
        self.owner = Owner(id=f"{host}:{pid}:{uuid.uuid4().hex[:12]}", host=host, pid=pid)
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, recover: bool) -> None:
        await self._store.claim_turns(self.owner)
        _OPEN_HERE.add(self.owner.id)
        if recover:
            marked = await self.recover()
            if marked:
                log.warning("marked interrupted turns", count=marked)
        self._task = asyncio.create_task(self._renew_forever(), name="opencode_api.turn_lease")

    async def recover(self) -> int:
        """Mark the turns of owners that are gone; returns how many were marked."""
        owners = await self._store.list_owners()
        me = self.owner
        dead = [o.id for o in owners if o.id != me.id and o.host == me.host and not _alive(o)]
        await self._store.drop_owners(dead)
        return await self._store.mark_interrupted(
            live_since=utcnow() - timedelta(seconds=self._ttl)
        )

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                renewed = self.owner.model_copy(update={"heartbeat_at": utcnow()})
                await self._store.claim_turns(renewed)
                marked = await self.recover()
            except StoreError as exc:
                log.warning("turn lease not renewed: store unavailable", detail=str(exc))
                continue
            if marked:
                log.warning("marked orphaned turns of a stopped process", count=marked)

    async def close(self) -> None:
        _OPEN_HERE.discard(self.owner.id)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        try:
            await self._store.release_turns()
        except StoreError:
            log.warning("turn lease not released: store unavailable (it expires by itself)")
