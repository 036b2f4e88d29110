"""``WorkerPlacement``: sessions spread over the worker processes of ``serve --workers N``.

One asyncio loop uses one core. With ``WORKERS=N`` every worker binds the public port (the kernel
spreads connections over them) and also listens on a Unix socket of its own. A session belongs to
worker ``crc32(session id) % N``, so its actor is activated in one process only; a request that
lands elsewhere is passed to the owner's socket by http/ (``Runtime.route`` says where).
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from opencode_api.actors._placement import LocalPlacement, Peer, Placement
from opencode_api.runtime import Actor, SupervisorHooks
from opencode_api.settings import Settings


def socket_path(socket_dir: Path | str, index: int) -> Path:
    """Where worker ``index`` listens for requests the other workers pass on."""
    return Path(socket_dir) / f"worker-{index}.sock"


class WorkerPlacement(LocalPlacement):
    """This worker's sessions in its own supervisor; the others' named by ``home``."""

    def __init__(
        self,
        settings: Settings,
        activate: Callable[[str], Awaitable[Actor]],
        hooks: SupervisorHooks | None,
        *,
        index: int,
        count: int,
        socket_dir: str,
    ) -> None:
        super().__init__(settings, activate, hooks)
        self.index = index
        self._peers = [Peer(str(i), str(socket_path(socket_dir, i))) for i in range(count)]

    def home(self, session_id: str) -> Peer | None:
        owner = zlib.crc32(session_id.encode()) % len(self._peers)
        return None if owner == self.index else self._peers[owner]

    def peers(self) -> list[Peer]:
        return [peer for i, peer in enumerate(self._peers) if i != self.index]


def placement_for(
    settings: Settings,
    activate: Callable[[str], Awaitable[Actor]],
    hooks: SupervisorHooks | None,
) -> Placement:
    """The placement ``settings`` ask for: one process, or one worker of several."""
    if settings.workers > 1 and settings.worker_socket_dir is not None:
        return WorkerPlacement(
            settings,
            activate,
            hooks,
            index=settings.worker_index,
            count=settings.workers,
            socket_dir=settings.worker_socket_dir,
        )
    return LocalPlacement(settings, activate, hooks)
