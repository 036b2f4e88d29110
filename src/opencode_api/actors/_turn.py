"""``Turn``: the state of one running turn, and the one place its steps fold into the reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opencode_api.actors._ids import new_id
from opencode_api.actors._messages import TurnOptions
from opencode_api.store import Message, Part, StepRecord, Usage


@dataclass(slots=True)
class Turn:
    """The state of one running turn: the assistant message and what its steps produced."""

    session_id: str
    user_message_id: str
    message: Message
    options: TurnOptions
    step: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    priced: bool = True
    # Parts of finished steps (already stored) and of the step in progress (not yet stored).
    stored_parts: list[Part] = field(default_factory=list)
    step_parts: list[Part] = field(default_factory=list)
    step_text: list[str] = field(default_factory=list)
    step_reasoning: list[str] = field(default_factory=list)
    recent_calls: list[tuple[str, str]] = field(default_factory=list)
    # The final answer parsed, when the turn has a response_format (``output`` on ``done``).
    output: Any = None

    @property
    def message_id(self) -> str:
        return self.message.id

    def text(self) -> str:
        stored = "".join(p.content or "" for p in self.stored_parts if p.type == "text")
        return stored + "".join(self.step_text)

    def new_part(self, type_: Any, **fields: Any) -> Part:
        return Part(
            id=new_id("prt"),
            message_id=self.message.id,
            session_id=self.session_id,
            type=type_,
            **fields,
        )

    def pending_step_parts(self) -> list[Part]:
        """The step in progress as parts (text and reasoning streamed so far, tool calls)."""
        head, calls = self.step_parts[:1], self.step_parts[1:]
        # Stored in the order they streamed: reasoning and text (made now) before the tool calls
        # (made when they arrived). Parts are listed by (created_at, id): these take the step's
        # start time, and ids later than its step_start part's.
        at = {"created_at": head[0].created_at} if head else {}
        if self.step_reasoning:
            head.append(self.new_part("reasoning", content="".join(self.step_reasoning), **at))
        if self.step_text:
            head.append(self.new_part("text", content="".join(self.step_text), **at))
        return head + calls

    def usage_dict(self, usage: Usage | None = None) -> dict[str, int]:
        data: dict[str, int] = (usage or self.usage).model_dump()
        return data

    def fold(self, parts: list[Part], **final: Any) -> Message:
        """Move ``parts`` (a finished or interrupted step) into the stored parts, clear the step in
        progress, and rebuild the reply from the turn's totals; ``final`` sets ``finish``,
        ``status`` and ``error`` when the turn ends with this write."""
        self.stored_parts.extend(parts)
        self.step_parts, self.step_text, self.step_reasoning = [], [], []
        self.message = self.message.model_copy(
            update={
                "content": self.text(),
                "usage": self.usage,
                "cost": self.cost,
                "priced": self.priced,
                "parts": list(self.stored_parts),
                **final,
            }
        )
        return self.message

    def end(self, stop_reason: str, status: str, error: dict[str, Any] | None) -> StepRecord | None:
        """Fold what the turn holds into its final reply; the record that stores it, or None when
        the last step already stored the reply finished."""
        partial = self.pending_step_parts() if self.step else []
        stored = self.message.status == "completed" and self.message.finish == stop_reason
        if stored and not partial:
            return None
        for part in partial:
            if part.type == "tool_call" and part.tool_status in ("pending", "running"):
                part.tool_status = "error"
                part.tool_output = part.tool_output or "Tool execution was aborted"
        self.fold(partial, finish=stop_reason, status=status, error=error)
        return StepRecord(message=self.message, parts=partial, usage_delta=Usage(), cost_delta=0.0)
