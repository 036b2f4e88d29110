"""``RecentSessions``: the sessions used lately, so a turn does not read its session back."""

from __future__ import annotations

from collections import OrderedDict

from opencode_api.store import Session


class RecentSessions:
    """Least-recently-used sessions, at most ``capacity``.

    Only fields a turn needs and that never change after creation (owner, model, system) may be
    read from here; title updates do not matter to it. Deletion evicts.

    A session created by this process and not yet activated is also whole here (``take_new``):
    nothing but this process knows its id yet, and what changes it here (an update, a deletion)
    comes through ``remember`` and ``forget``, so its actor starts without reading it back.
    """

    __slots__ = ("_capacity", "_new", "_sessions")

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._new: set[str] = set()

    def remember(self, session: Session, *, new: bool = False) -> None:
        sessions = self._sessions
        sessions[session.id] = session
        sessions.move_to_end(session.id)
        if new:
            self._new.add(session.id)
        if len(sessions) > self._capacity:
            evicted, _ = sessions.popitem(last=False)
            self._new.discard(evicted)

    def take_new(self, session_id: str) -> Session | None:
        """The session as created here, once, if it was never activated (else None)."""
        if session_id not in self._new:
            return None
        self._new.discard(session_id)
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
        self._new.discard(session_id)
