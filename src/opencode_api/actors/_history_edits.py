"""History edits (API.md, "Branching and editing"): they go through the session's mailbox, so
they are serialized with its turns, and while a turn runs or waits they answer 409 ``busy``
instead of waiting behind it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from opencode_api.actors._errors import NotFoundError, SessionBusyError
from opencode_api.actors._messages import DeleteMessage
from opencode_api.actors._placement import Placement


class HistoryEdits:
    def __init__(
        self, placement: Placement, status: Callable[[str], Literal["idle", "busy"]]
    ) -> None:
        self._placement = placement
        self._status = status

    async def delete_message(self, session_id: str, message_id: str) -> None:
        if self._status(session_id) == "busy":
            raise SessionBusyError(f"session {session_id} is busy with a turn")
        ref = await self._placement.reach(session_id)
        if not await ref.ask(DeleteMessage(message_id)):
            raise NotFoundError("message", message_id)
