"""``Ledger``: what a supervisor counts and tells its hooks, and its ``SupervisorStats``."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping

import structlog

from opencode_api.runtime._hooks import NoHooks, SupervisorHooks, SupervisorStats
from opencode_api.runtime._mailbox import Mailbox

_log = structlog.get_logger("opencode_api.runtime")

_TOP_MAILBOXES = 20


def _ignore(actor_id: str) -> None:
    return None


class Ledger:
    """Counters since creation, and the hooks told about each change (a hook that raises is
    logged and ignored)."""

    __slots__ = (
        "activations",
        "on_activate",
        "on_passivate",
        "on_restart",
        "on_stop",
        "passivations",
        "restarts",
        "stopped",
    )

    def __init__(self, hooks: SupervisorHooks | None) -> None:
        # Resolved once, with no-op fallbacks: a structural implementation may define only some.
        hooks = hooks if hooks is not None else NoHooks()
        self.on_activate: Callable[[str], None] = getattr(hooks, "on_activate", _ignore)
        self.on_passivate: Callable[[str], None] = getattr(hooks, "on_passivate", _ignore)
        self.on_restart: Callable[[str], None] = getattr(hooks, "on_restart", _ignore)
        self.on_stop: Callable[[str], None] = getattr(hooks, "on_stop", _ignore)
        self.activations = 0
        self.restarts = 0
        self.passivations = 0
        self.stopped = 0

    def activated(self, actor_id: str) -> None:
        self.activations += 1
        _notify(self.on_activate, actor_id)

    def restarted(self, actor_id: str) -> None:
        self.restarts += 1
        _notify(self.on_restart, actor_id)

    def ended(self, actor_id: str, *, passivated: bool) -> None:
        if passivated:
            self.passivations += 1
            _notify(self.on_passivate, actor_id)
        else:
            self.stopped += 1
            _notify(self.on_stop, actor_id)

    def stats(self, live: Mapping[str, Mailbox]) -> SupervisorStats:
        busy = 0
        total = 0
        depths: list[tuple[int, str]] = []
        for actor_id, mailbox in live.items():
            depth = len(mailbox.queue)
            total += depth
            if mailbox.is_busy:
                busy += 1
            if depth:
                depths.append((depth, actor_id))
        depths.sort(reverse=True)
        return SupervisorStats(
            live=len(live),
            busy=busy,
            activations=self.activations,
            restarts=self.restarts,
            passivations=self.passivations,
            stopped=self.stopped,
            mailbox_depth_total=total,
            mailbox_depths={actor_id: depth for depth, actor_id in depths[:_TOP_MAILBOXES]},
        )


class RestartIntensity:
    """one_for_one's limit: at most ``max_restarts`` restarts of one actor within ``window``
    seconds; past it the actor is stopped."""

    __slots__ = ("max_restarts", "window")

    def __init__(self, max_restarts: int, window: float) -> None:
        self.max_restarts = max_restarts
        self.window = window

    def admit(self, mailbox: Mailbox, now: float) -> bool:
        """Record one more restart of ``mailbox``'s actor at ``now``; False past the limit."""
        restarts = mailbox.restarts
        if restarts is None:
            restarts = mailbox.restarts = deque()
        while restarts and now - restarts[0] > self.window:
            restarts.popleft()
        if len(restarts) >= self.max_restarts:
            return False
        restarts.append(now)
        return True


def _notify(hook: Callable[[str], None], actor_id: str) -> None:
    try:
        hook(actor_id)
    except Exception:
        _log.exception("supervisor hook raised", hook=repr(hook), actor_id=actor_id)
