"""Records the store keeps: sessions, messages and parts, todos, questions, usage, compaction.

They are pydantic models whose JSON shapes are those of API.md, so http/ returns them as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opencode_api.usage import Usage

SessionStatus = Literal["idle", "busy"]
Role = Literal["user", "assistant"]
# file: a user message's image or PDF; its bytes live apart, in a ``FileData`` (metadata.file_id).
PartType = Literal["text", "reasoning", "tool_call", "step_start", "step_finish", "file"]
ToolStatus = Literal["pending", "running", "completed", "error"]
# queued: stored, waiting for its turn; running: its turn is in progress; the rest are final.
MessageStatus = Literal["queued", "running", "completed", "aborted", "error", "interrupted"]
TodoStatus = Literal["pending", "in_progress", "completed", "cancelled"]
TodoPriority = Literal["high", "medium", "low"]
QuestionStatus = Literal["pending", "answered", "rejected", "expired"]
CompactionRunStatus = Literal["idle", "pending", "running", "failed"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class ForkOrigin(BaseModel):
    """Where a fork came from: the session and the last message copied (None: all of them)."""

    session_id: str
    message_id: str | None = None


class RevertPoint(BaseModel):
    """A revert: this message and all after it are hidden until the next turn deletes them."""

    message_id: str


class Session(BaseModel):
    id: str
    title: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    provider_id: str | None = None
    model_id: str | None = None
    system: str | None = None
    user_id: str | None = None
    status: SessionStatus = "idle"
    message_count: int = 0
    total_cost: float = 0.0
    total_input_tokens: int = 0
    total_output_tokens: int = 0
    # USD this session may spend in all; None: no limit.
    max_cost: float | None = None
    # Where this session's webhook events go (besides WEBHOOK_URL); None: nowhere.
    webhook_url: str | None = None
    forked_from: ForkOrigin | None = None
    revert: RevertPoint | None = None


class Part(BaseModel):
    id: str
    message_id: str
    session_id: str
    type: PartType
    content: str | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    tool_args: dict[str, Any] | None = None
    tool_output: str | None = None
    tool_status: ToolStatus | None = None
    # step_start / step_finish details (step number, usage, cost, stop reason); pruned outputs.
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


class FileData(BaseModel):
    """The bytes of a file a user message carries (an image or a PDF), base64-encoded as the
    providers take them. Kept in their own table, apart from the message and part rows, so that
    listing messages never loads megabytes; the message's ``file`` part names it by ``id``
    (``metadata.file_id``). A file belongs to its session (a fork gets copies)."""

    id: str
    session_id: str
    mime: str
    # Decoded bytes.
    size: int
    data: str
    created_at: datetime = Field(default_factory=utcnow)


class Message(BaseModel):
    id: str
    session_id: str
    role: Role
    created_at: datetime = Field(default_factory=utcnow)
    content: str = ""
    provider_id: str | None = None
    model_id: str | None = None
    usage: Usage | None = None
    cost: float = 0.0
    # None when the model is not in LiteLLM's price map: tokens are counted, no price invented.
    priced: bool = True
    finish: str | None = None
    error: dict[str, Any] | None = None
    status: MessageStatus = "completed"
    parent_id: str | None = None
    parts: list[Part] = Field(default_factory=list)
    compacted: bool = False
    summary: bool = False

    @property
    def stop_reason(self) -> str | None:
        return self.finish


class Owner(BaseModel):
    """A process that runs turns, and its lease: turns it owns count as live while its
    ``heartbeat_at`` is recent (see ``Store.mark_interrupted``)."""

    id: str
    host: str
    pid: int
    heartbeat_at: datetime = Field(default_factory=utcnow)


class MessagePage(BaseModel):
    messages: list[Message]
    total_count: int
    limit: int | None
    offset: int


class StepRecord(BaseModel):
    """One finished agent-loop step, written in one transaction.

    The assistant message row is upserted with ``message`` (content, finish, status, usage and cost
    are the message's running totals after this step); ``parts`` are upserted; the session's totals
    and its per-model roll-up grow by ``usage_delta`` and ``cost_delta``.
    """

    message: Message
    parts: list[Part]
    usage_delta: Usage
    cost_delta: float


class ModelCost(BaseModel):
    provider_id: str | None
    model_id: str | None
    cost: float
    input_tokens: int
    output_tokens: int
    messages: int
    priced: bool = True


class SessionCost(BaseModel):
    session_id: str
    total_cost: float
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    by_model: list[ModelCost]
    priced: bool = True


class Todo(BaseModel):
    id: str
    content: str
    status: TodoStatus = "pending"
    priority: TodoPriority = "medium"


class QuestionOption(BaseModel):
    label: str
    description: str = ""


class QuestionItem(BaseModel):
    question: str
    header: str = Field(default="", max_length=30)
    options: list[QuestionOption] = Field(default_factory=list)
    multiple: bool = False


class Question(BaseModel):
    id: str
    session_id: str
    message_id: str
    tool_call_id: str
    questions: list[QuestionItem]
    created_at: datetime = Field(default_factory=utcnow)
    status: QuestionStatus = "pending"
    answers: list[list[str]] | None = None
    user_id: str | None = None


class CompactionState(BaseModel):
    session_id: str
    status: CompactionRunStatus = "idle"
    compaction_count: int = 0
    last_compacted_at: datetime | None = None
    last_error: str | None = None


class DailyUsage(BaseModel):
    """A user's usage for one UTC day; ``reserved_*`` are held by turns still running."""

    user_id: str
    day: str  # YYYY-MM-DD, UTC
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    reserved_tokens: int = 0
    reserved_requests: int = 0
    # USD spent (DAILY_COST_LIMIT), step by step as turns run.
    cost: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class Reservation(BaseModel):
    """What ``reserve_usage`` held; pass it back to ``settle_usage`` or ``release_usage``."""

    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    day: str
    tokens: int
    requests: int = 1
