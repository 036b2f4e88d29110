"""History edits (API.md, "Branching and editing"): deleting a message, revert and unrevert, and
regenerate. They go through the session's mailbox, so they are serialized with its turns, and
while a turn runs or waits they answer 409 ``busy`` instead of waiting behind it.

A revert hides messages (the store flags them); the next turn, or a compaction, deletes them for
good before it reads the history. A regenerate is a turn that first deletes the user message it
replaces and everything after it. A fork only reads what is stored, so it never waits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

from opencode_api.actors._errors import InvalidRequestError, NotFoundError, SessionBusyError
from opencode_api.actors._messages import DeleteMessage, Revert
from opencode_api.actors._placement import Placement
from opencode_api.actors._turn_request import SendOptions, TurnRequest
from opencode_api.store import Session, Store

# (event type, properties) -> published on the bus about the session.
PublishBus = Callable[[str, dict[str, Any]], None]


class HistoryEdits:
    """The Runtime's side: refuse while busy, then ask the session's actor."""

    def __init__(
        self,
        store: Store,
        placement: Placement,
        status: Callable[[str], Literal["idle", "busy"]],
    ) -> None:
        self._store = store
        self._placement = placement
        self._status = status

    def _idle(self, session_id: str) -> None:
        if self._status(session_id) == "busy":
            raise SessionBusyError(f"session {session_id} is busy with a turn")

    async def delete_message(self, session_id: str, message_id: str) -> None:
        self._idle(session_id)
        ref = await self._placement.reach(session_id)
        if not await ref.ask(DeleteMessage(message_id)):
            raise NotFoundError("message", message_id)

    async def revert(self, session_id: str, message_id: str | None) -> Session:
        """Hide ``message_id`` and all after it; None: show every hidden message again."""
        self._idle(session_id)
        ref = await self._placement.reach(session_id)
        session: Session | None = await ref.ask(Revert(message_id))
        if session is None:
            raise NotFoundError("message" if message_id else "session", message_id or session_id)
        return session

    async def regeneration(
        self,
        session: Session,
        message_id: str,
        content: str | None,
        options: SendOptions,
    ) -> TurnRequest:
        """The turn that replaces user message ``message_id`` (or the one an assistant message
        ``message_id`` answered), with ``content`` instead of its text when given, and its files
        unless ``parts`` are given."""
        message = await self._store.get_message(message_id)
        if message is None or message.session_id != session.id:
            raise NotFoundError("message", message_id)
        if message.role == "assistant":
            parent = message.parent_id
            message = None if parent is None else await self._store.get_message(parent)
            if message is None or message.session_id != session.id:
                raise InvalidRequestError(
                    f"message {message_id} answers no stored user message", field="message_id"
                )
        self._idle(session.id)
        text = content if content is not None else message.content
        # New parts replace the message's files; without them its files are kept.
        files = () if options.get("parts") else tuple(p for p in message.parts if p.type == "file")
        # A regenerate never queues behind a turn: it is refused while the session is busy.
        request = TurnRequest(session.id, text, **options)
        return dataclasses.replace(request, busy="reject", replaces=message.id, files=files)


async def apply_edit(
    store: Store, session: Session, edit: DeleteMessage | Revert, publish: PublishBus
) -> tuple[Any, Session]:
    """The actor's side of an edit: (the answer to the asker, the session as it is now)."""
    if isinstance(edit, DeleteMessage):
        return await store.delete_message(session.id, edit.message_id), session
    updated = await store.revert_session(session.id, edit.message_id)
    if updated is None:
        return None, session
    publish("session.updated", {"info": updated.model_dump(mode="json")})
    return updated, updated


async def commit_revert(
    store: Store, session: Session, replaces: str | None, publish: PublishBus
) -> Session | None:
    """Before a turn (or a compaction) reads the history: delete what a revert hid, and for a
    regenerate the replaced message and all after it. The session as it is now, or None when
    there was nothing to do."""
    if session.revert is None and replaces is None:
        return None
    await store.commit_revert(session.id, replaces)
    updated = await store.get_session(session.id)
    if updated is None:
        return None
    publish("session.updated", {"info": updated.model_dump(mode="json")})
    return updated
