"""Background turns and their replies: ``POST .../message?stream=false`` answers at once, and
``GET .../message/{user_message_id}/reply?wait=S`` tells how that turn went (API.md, "Busy
sessions and background turns"). A background turn is the same turn as a streamed one: nobody
needs to read its stream for it to run to its end and be stored step by step."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

from pydantic import BaseModel

from opencode_api.actors._errors import NotFoundError
from opencode_api.actors._events import TurnEvent
from opencode_api.actors._turn_stream import TurnStream
from opencode_api.runtime import Subscription
from opencode_api.store import Message, Store

ReplyStatus = Literal["queued", "running", "done", "aborted", "error", "interrupted"]
_REPLY_STATUS: dict[str, ReplyStatus] = {
    "running": "running",
    "completed": "done",
    "aborted": "aborted",
    "error": "error",
    "interrupted": "interrupted",
}
# (session id, user id) -> the session's live events from now on.
Subscribe = Callable[[str, str | None], AbstractAsyncContextManager[Subscription[Any]]]


class TurnReply(BaseModel):
    """How a turn went: ``message`` is its final assistant message once it ended."""

    status: ReplyStatus
    message: Message | None = None


class TurnReplies:
    """Reads a turn's state from the store; waits for its end on the session's events."""

    def __init__(self, store: Store, subscribe: Subscribe) -> None:
        self._store = store
        self._subscribe = subscribe

    async def reply(
        self, session_id: str, user_message_id: str, *, user_id: str | None, wait: float
    ) -> TurnReply:
        # Subscribed before the first read: a turn that ends in between is not waited for.
        async with self._subscribe(session_id, user_id) as events:
            reply = await self._read(session_id, user_message_id, user_id)
            if reply.status in ("queued", "running") and wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_turn_end(events, user_message_id), wait)
                reply = await self._read(session_id, user_message_id, user_id)
            return reply

    async def _read(self, session_id: str, user_message_id: str, user_id: str | None) -> TurnReply:
        question = await self._store.get_message(user_message_id)
        if question is None or question.session_id != session_id or question.role != "user":
            raise NotFoundError("message", user_message_id)
        answer = await self._answer_to(session_id, user_message_id, user_id)
        if answer is None:
            # Not started: queued, or refused/aborted before it ran (no reply was stored).
            status = _REPLY_STATUS.get(question.status, "queued")
            return TurnReply(status="queued" if status in ("done", "running") else status)
        status = _REPLY_STATUS.get(answer.status, "running")
        return TurnReply(status=status, message=None if status == "running" else answer)

    async def _answer_to(
        self, session_id: str, user_message_id: str, user_id: str | None
    ) -> Message | None:
        # Newest first: the reply to a recent turn is near the top.
        page = await self._store.list_messages(session_id, user_id=user_id, order="desc")
        if page is None:
            raise NotFoundError("session", session_id)
        return next(
            (m for m in page.messages if m.role == "assistant" and m.parent_id == user_message_id),
            None,
        )


async def send_background(
    stream: TurnStream, waits: bool
) -> tuple[str, Literal["queued", "running"]]:
    """Start ``stream``'s turn and stop listening: the turn runs on without a reader."""
    try:
        await stream.start()
    finally:
        await stream.aclose()
    assert stream.turn_id is not None
    return stream.turn_id, "queued" if waits else "running"


async def _turn_end(events: Subscription[Any], turn_id: str) -> None:
    async for item in events:
        event = item.event
        if isinstance(event, TurnEvent) and event.turn_id == turn_id and event.terminal:
            return
