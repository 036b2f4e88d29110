"""Conversation compaction: summarize older messages so the context the model sees stays small."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from opencode_api.actors._errors import client_error
from opencode_api.actors._ids import new_id
from opencode_api.llm import LLMClient, LLMRequest, context_window
from opencode_api.settings import Settings
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
            # The summarizer sees no file, only that one was attached.
            files = [
                f"[attached {p.metadata.get('mime')}: {p.content or 'unnamed'}]"
                for p in message.parts
                if p.type == "file"
            ]
            lines.append(" ".join([f"User: {message.content}", *files]))
            continue
        for part in message.parts:
            if part.type == "text" and part.content:
                lines.append(f"Assistant: {part.content}")
            elif part.type == "tool_call":
                output = (part.tool_output or "")[:max_tool_chars]
                lines.append(f"Tool {part.tool_name}({part.tool_args}) -> {output}")
    return "\n\n".join(lines)


def needs_compaction(history: list[Message], model: str, settings: Settings) -> bool:
    """More live messages than the threshold, or the last step's input near the model's window."""
    live = sum(1 for m in history if not m.compacted)
    last_input = 0
    for message in reversed(history):
        if message.role == "assistant" and message.parts:
            steps = [p for p in message.parts if p.type == "step_finish"]
            if steps:
                last_input = int(steps[-1].metadata.get("usage", {}).get("input_tokens", 0))
            break
    window = context_window(model)
    near_full = bool(window) and last_input > settings.compaction_context_ratio * (window or 0)
    return live > settings.compaction_threshold or near_full


async def summarize(llm: LLMClient, model: str, older: list[Message], timeout: float) -> str:
    """The model's summary of ``older`` messages."""
    return await llm.complete(
        LLMRequest(
            model=model,
            messages=[
                {"role": "system", "content": SUMMARY_PROMPT},
                {"role": "user", "content": transcript(older)},
            ],
            timeout=timeout,
        )
    )


# (event type, properties): a bus event about the session being compacted.
PublishBus = Callable[[str, dict[str, Any]], None]


async def compact(
    store: Store,
    llm: LLMClient,
    settings: Settings,
    session_id: str,
    history: list[Message],
    model: str,
    publish_bus: PublishBus,
) -> int:
    """Summarize all of ``history`` but its last ``compaction_keep_messages`` into one summary
    message; the number of messages compacted (0: too few). A failure is recorded in the
    session's compaction state and on the bus, then raised."""
    keep = settings.compaction_keep_messages
    older = history[:-keep] if len(history) > keep else []
    if not older:
        return 0
    state = await store.get_compaction_state(session_id)
    await store.set_compaction_state(state.model_copy(update={"status": "running"}))
    try:
        summary_text = await summarize(llm, model, older, settings.llm_timeout)
    except Exception as exc:
        error = client_error(exc)  # stored for clients: no exception text
        await store.set_compaction_state(
            state.model_copy(update={"status": "failed", "last_error": error["message"]})
        )
        publish_bus("session.error", {"error": error})
        raise
    summary = Message(
        id=new_id("msg"),
        session_id=session_id,
        role="assistant",
        content=summary_text,
        summary=True,
    )
    await store.apply_compaction(session_id, summary, [m.id for m in older])
    publish_bus("session.compacted", {"summary_message_id": summary.id, "compacted": len(older)})
    return len(older)
