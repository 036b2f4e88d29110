"""Conversation compaction: summarize older messages so the context the model sees stays small."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from opencode_api.store import CompactionState, Message, Session, Store

SUMMARY_PROMPT = (
    "You are summarizing a conversation between a user and an AI assistant so it can continue "
    "with less context. Write a concise but complete summary: the user's goals and requests, "
    "decisions made, facts and results found (including tool results that still matter), open "
    "questions and what the assistant was about to do next. Write it as notes for the assistant "
    "itself; do not address the user."
)


class CompactionStatus(BaseModel):
    session_id: str
    status: Literal["idle", "pending", "running", "failed"]
    message_count: int
    compaction_threshold: int
    should_compact: bool
    compaction_count: int
    remaining_until_compaction: int
    last_compacted_at: datetime | None
    last_error: str | None


async def compaction_status(
    store: Store, session: Session, threshold: int, *, pending: bool = False
) -> CompactionStatus:
    """API.md's CompactionStatus; ``message_count`` counts the messages the model still sees."""
    state: CompactionState = await store.get_compaction_state(session.id)
    page = await store.list_messages(session.id, limit=0, include_compacted=False)
    live = page.total_count if page is not None else 0
    status = state.status
    if pending and status == "idle":
        status = "pending"
    return CompactionStatus(
        session_id=session.id,
        status=status,
        message_count=live,
        compaction_threshold=threshold,
        should_compact=live > threshold,
        compaction_count=state.compaction_count,
        remaining_until_compaction=max(0, threshold - live),
        last_compacted_at=state.last_compacted_at,
        last_error=state.last_error,
    )


def transcript(messages: list[Message], *, max_tool_chars: int = 2000) -> str:
    """A plain-text transcript of ``messages`` for the summarizer."""
    lines: list[str] = []
    for message in messages:
        if message.summary:
            lines.append(f"[Earlier summary]\n{message.content}")
            continue
        if message.role == "user":
            lines.append(f"User: {message.content}")
            continue
        for part in message.parts:
            if part.type == "text" and part.content:
                lines.append(f"Assistant: {part.content}")
            elif part.type == "tool_call":
                output = (part.tool_output or "")[:max_tool_chars]
                lines.append(f"Tool {part.tool_name}({part.tool_args}) -> {output}")
    return "\n\n".join(lines)
