"""The ``Runtime``'s operations on a session's history and on turns that run without a stream
(API.md, "Branching and editing" and "Busy sessions and background turns"), mixed into it."""

from __future__ import annotations

from typing import Literal, Unpack

from opencode_api.actors._errors import NotFoundError
from opencode_api.actors._history_edits import HistoryEdits
from opencode_api.actors._replies import TurnReplies, TurnReply, send_background
from opencode_api.actors._sessions import SessionDirectory
from opencode_api.actors._turn_request import SendOptions, TurnRequest
from opencode_api.actors._turn_stream import TurnStream
from opencode_api.store import FileData, Message, Session, Store


class HistoryOperations:
    """Mixin of ``Runtime`` (which provides what is declared here)."""

    store: Store
    _sessions: SessionDirectory
    _edits: HistoryEdits
    _replies: TurnReplies

    def status(self, session_id: str) -> Literal["idle", "busy"]:
        raise NotImplementedError

    def send_request(self, request: TurnRequest) -> TurnStream:
        raise NotImplementedError

    async def get_session(self, session_id: str, *, user_id: str | None = None) -> Session:
        raise NotImplementedError

    # -- background turns ----------------------------------------------------------------------

    async def send_background(
        self, request: TurnRequest
    ) -> tuple[str, Literal["queued", "running"]]:
        """Enqueue the turn and return at once (user message id, queued or running)."""
        waits = self.status(request.session_id) == "busy"
        return await send_background(self.send_request(request), waits)

    async def reply(
        self,
        session_id: str,
        user_message_id: str,
        *,
        user_id: str | None = None,
        wait: float = 0.0,
    ) -> TurnReply:
        """How the turn of ``user_message_id`` went; waits up to ``wait`` s for it to end."""
        await self.get_session(session_id, user_id=user_id)
        return await self._replies.reply(session_id, user_message_id, user_id=user_id, wait=wait)

    # -- messages and branches -----------------------------------------------------------------

    async def get_message(
        self, session_id: str, message_id: str, *, user_id: str | None = None
    ) -> Message:
        return await self._sessions.message(session_id, message_id, user_id)

    async def get_file(
        self, session_id: str, file_id: str, *, user_id: str | None = None
    ) -> FileData:
        """The bytes (base64) of a file a user message of the session carries."""
        await self.get_session(session_id, user_id=user_id)
        found = await self.store.get_files(session_id, [file_id])
        if not found:
            raise NotFoundError("file", file_id)
        return found[0]

    async def delete_message(
        self, session_id: str, message_id: str, *, user_id: str | None = None
    ) -> None:
        await self.get_session(session_id, user_id=user_id)
        await self._edits.delete_message(session_id, message_id)

    async def fork(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        message_id: str | None = None,
        title: str | None = None,
    ) -> Session:
        """A new session holding copies of this one's messages up to ``message_id`` (all when
        None). It copies what is stored: it never waits for a running turn."""
        return await self._sessions.fork(session_id, user_id, message_id, title)

    async def revert(
        self, session_id: str, message_id: str, *, user_id: str | None = None
    ) -> Session:
        """Hide ``message_id`` and all after it from the list and the model (409 while busy);
        the next turn deletes them for good, ``unrevert`` shows them again."""
        await self.get_session(session_id, user_id=user_id)
        return await self._edits.revert(session_id, message_id)

    async def unrevert(self, session_id: str, *, user_id: str | None = None) -> Session:
        await self.get_session(session_id, user_id=user_id)
        return await self._edits.revert(session_id, None)

    async def regenerate(
        self,
        session_id: str,
        message_id: str,
        content: str | None = None,
        **options: Unpack[SendOptions],
    ) -> TurnStream:
        """Run the turn of user message ``message_id`` (or of the one the assistant message
        ``message_id`` answered) again, with ``content`` as its text when given: that message
        and all after it are deleted when the turn starts. Refused (409) while busy."""
        session = await self.get_session(session_id, user_id=options.get("user_id"))
        request = await self._edits.regeneration(session, message_id, content, options)
        return self.send_request(request)
