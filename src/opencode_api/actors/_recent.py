"""``RecentSessions``: the sessions used lately, so a turn does not read its session back."""

from __future__ import annotations

from collections import OrderedDict

from opencode_api.store import Session


class RecentSessions:
    """Least-recently-used sessions, at most ``capacity``.

    Only fields a turn needs and that never change after creation (owner, model, system) may be
    read from here; title updates do not matter to it. Deletion evicts.
    """

    __slots__ = ("_capacity", "_sessions")

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def remember(self, session: Session) -> None:
        sessions = self._sessions
        sessions[session.id] = session
        sessions.move_to_end(session.id)
        if len(sessions) > self._capacity:
            sessions.popitem(last=False)

    def get(self, session_id: str, user_id: str | None) -> Session | None:
        """The session when it is remembered and ``user_id`` (if given) owns it."""
        session = self._sessions.get(session_id)
        if session is None or (user_id is not None and session.user_id != user_id):
            return None
        self._sessions.move_to_end(session_id)
        return session

    def forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
