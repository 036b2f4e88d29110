"""``RecentSessions``: the sessions used lately, so a turn does not read its session back."""

from __future__ import annotations

from collections import OrderedDict

from opencode_api.store import Session


class RecentSessions:
    """Least-recently-used sessions, at most ``capacity``.

    Only fields a turn needs and that never change after creation (owner, model, system) may be
    read from here; title updates do not matter to it. Deletion evicts.

    A session is also *whole* here (``take_whole``) when it was created by this process, or read
    while no actor of it ran, and no actor has held it since: what an actor writes (totals,
    status) only an actor writes, and what changes it outside an actor here (an update, a
    deletion) comes through ``remember`` and ``forget``. Its next actor starts from this row
    instead of reading it again (a Ray shard admits a turn with one read, not two).
    """

    __slots__ = ("_capacity", "_sessions", "_whole")

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._whole: set[str] = set()

    def remember(self, session: Session, *, whole: bool = False) -> None:
        sessions = self._sessions
        sessions[session.id] = session
        sessions.move_to_end(session.id)
        if whole:
            self._whole.add(session.id)
        if len(sessions) > self._capacity:
            evicted, _ = sessions.popitem(last=False)
            self._whole.discard(evicted)

    def take_whole(self, session_id: str) -> Session | None:
        """The whole session, once, for the actor about to start (else None)."""
        if session_id not in self._whole:
            return None
        self._whole.discard(session_id)
        return self._sessions.get(session_id)

    def get(self, session_id: str, user_id: str | None) -> Session | None:
        """The session when it is remembered and ``user_id`` (if given) owns it."""
        session = self._sessions.get(session_id)
        if session is None or (user_id is not None and session.user_id != user_id):
            return None
        self._sessions.move_to_end(session_id)
        return session

    def forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._whole.discard(session_id)
