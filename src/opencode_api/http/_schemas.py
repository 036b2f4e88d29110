"""Request and response bodies of the HTTP API as pydantic models (validation and OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from opencode_api.actors import BusyPolicy, SendOptions
from opencode_api.inputs import InputPart, ResponseFormat
from opencode_api.store import Message

# -- requests -------------------------------------------------------------------------------------


class _Request(BaseModel):
    # Unknown fields are ignored, as the replaced FastAPI service did: old clients keep working.
    model_config = ConfigDict(extra="ignore")


_MAX_COST = Field(
    default=None,
    ge=0,
    strict=True,  # a number, not true or "1"
    description="USD the session may spend in all (null: no limit).",
)
_WEBHOOK_URL = Field(
    default=None,
    max_length=2048,
    description="Where this session's webhook events go, signed with the server's secret "
    "(null: nowhere but WEBHOOK_URL). http(s) only; private addresses are refused unless "
    "WEBHOOK_ALLOW_PRIVATE=true.",
)


class CreateSessionRequest(_Request):
    title: str | None = None
    provider_id: str | None = None
    model_id: str | None = None
    system: str | None = None
    max_cost: float | None = _MAX_COST
    webhook_url: str | None = _WEBHOOK_URL


class UpdateSessionRequest(_Request):
    """The fields given are changed; ``max_cost`` or ``webhook_url`` given as null are cleared."""

    title: str | None = None
    max_cost: float | None = _MAX_COST
    webhook_url: str | None = _WEBHOOK_URL


class MessageRequest(_Request):
    """A user message that starts (or queues) a turn."""

    # content is required unless parts are given (the replaced service required content).
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"anyOf": [{"required": ["content"]}, {"required": ["parts"]}]},
    )

    parts: list[InputPart] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Text and files (images, PDFs) of the message; `content`, when given too, "
        "comes first.",
    )
    content: str | None = Field(
        default=None,
        validate_default=True,
        min_length=1,
        description="The user's message; must not be blank. Required unless `parts` are given.",
    )
    response_format: ResponseFormat | None = Field(
        default=None,
        description="The final answer must be JSON (`json_object`) or match a JSON schema "
        "(`json_schema`); `done` then carries it parsed as `output`.",
    )
    tools: list[str] | None = Field(
        default=None,
        max_length=256,
        description="The tools this turn may use (default: all enabled); an unknown name is a 422.",
    )
    provider_id: str | None = None
    model_id: str | None = Field(
        default=None,
        description="A model id of the provider, or a full LiteLLM model string "
        "such as `openai/gpt-4o-mini` (then provider_id may be omitted).",
    )
    system: str | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    tools_enabled: bool = True
    max_steps: int | None = Field(default=None, ge=1, description="Default 50.")

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if cls is MessageRequest and not info.data.get("parts"):
                raise PydanticCustomError("missing", "content (or parts) is required")
            return value
        # Providers refuse whitespace-only text (Anthropic answers 400): refuse it here, as a 422
        # naming the field, rather than as a failed turn.
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    def send_options(self, user_id: str | None, busy: BusyPolicy = "queue") -> SendOptions:
        """The turn's options (``TurnRequest``'s keyword fields) this request gives."""
        return SendOptions(
            user_id=user_id,
            busy=busy,
            provider_id=self.provider_id,
            model_id=self.model_id,
            system=self.system,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            tools_enabled=self.tools_enabled,
            max_steps=self.max_steps,
            parts=tuple(self.parts or ()),
            response_format=self.response_format,
            tools=None if self.tools is None else tuple(self.tools),
        )


class RegenerateRequest(MessageRequest):
    """A regenerate: MessageRequest's options; ``content`` replaces the user message's text."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={})  # nothing is required

    content: str | None = Field(  # type: ignore[assignment]
        default=None,
        min_length=1,
        description="The user message's new text; omitted, its text as it was.",
    )


class ForkRequest(_Request):
    message_id: str | None = Field(
        default=None, description="Copy messages up to and including this one (default: all)."
    )
    title: str | None = None


class RevertRequest(_Request):
    message_id: str = Field(description="This message and all after it are hidden.")


class GenerateTitleRequest(_Request):
    message: str | None = None
    model_id: str | None = None


class CompactRequest(_Request):
    model_id: str | None = None


class QuestionReplyRequest(_Request):
    answers: list[list[str]] = Field(description="One list of chosen labels per question.")


# -- query parameters -----------------------------------------------------------------------------


# Bounds keep page arithmetic inside the databases' 64-bit integers (a larger OFFSET overflows).
MAX_PAGE = 2**31 - 1


class SessionListQuery(_Request):
    limit: int | None = Field(default=None, ge=0, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=MAX_PAGE)


class MessageListQuery(_Request):
    limit: int | None = Field(
        default=None, ge=0, le=MAX_PAGE, description="Max messages to return (default: all)."
    )
    offset: int = Field(default=0, ge=0, le=MAX_PAGE, description="Messages to skip.")
    order: Literal["asc", "desc"] = "asc"


class SendQuery(_Request):
    busy: Literal["queue", "reject", "interrupt"] = "queue"
    # false (or the header ``Prefer: respond-async``): 202 at once, the turn runs in the background
    stream: bool = True


class ReplyQuery(_Request):
    wait: float = Field(default=0.0, ge=0, le=60)


class BackgroundTurn(BaseModel):
    """``POST /session/{id}/message?stream=false``: the turn is queued or running."""

    session_id: str
    user_message_id: str
    status: Literal["queued", "running"]


class StreamQuery(_Request):
    after: int | None = Field(default=None, ge=0, le=2**63 - 1)


class _SessionFilter(_Request):
    session_id: str | None = Field(default=None, description="Only this session's (empty: all)")

    @field_validator("session_id")
    @classmethod
    def _empty_is_absent(cls, value: str | None) -> str | None:
        return value or None  # ``?session_id=`` filters nothing, as when absent


class EventQuery(_SessionFilter):
    pass


class QuestionListQuery(_SessionFilter):
    pass


# -- responses ------------------------------------------------------------------------------------


def _with_stop_reason(schema: dict[str, Any]) -> None:
    schema.setdefault("properties", {})["stop_reason"] = {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": "The same as `finish` (both names are in use by clients).",
    }
    required = schema.setdefault("required", [])
    if "stop_reason" not in required:
        required.append("stop_reason")


class MessageOut(Message):
    """A stored message as listed: the stored fields plus ``stop_reason`` (see ``message_json``)."""

    model_config = ConfigDict(json_schema_extra=_with_stop_reason)


class MessagePageOut(BaseModel):
    messages: list[MessageOut]
    total_count: int
    limit: int | None
    offset: int


class SuccessResponse(BaseModel):
    success: bool = True


class AbortResponse(BaseModel):
    cancelled: bool


class TitleResponse(BaseModel):
    title: str


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    error: ErrorDetail


class QuotaErrorResponse(BaseModel):
    error: ErrorDetail
    usage: dict[str, Any]
    limits: dict[str, Any]
    resets_at: str


class BudgetErrorResponse(BaseModel):
    """429 ``budget_exceeded``: the session's ``max_cost`` or the user's ``DAILY_COST_LIMIT``."""

    error: ErrorDetail
    spent: float = Field(description="USD spent (by the session, or by the user today)")
    limit: float = Field(description="The budget in USD")


def message_json(message: Message) -> dict[str, Any]:
    """A message as API.md lists it: the stored fields plus ``stop_reason``."""
    data: dict[str, Any] = message.model_dump(mode="json")
    data["stop_reason"] = message.finish
    return data


class TurnReplyOut(BaseModel):
    """How a turn went; ``message``: its final assistant message once it ended."""

    status: Literal["queued", "running", "done", "aborted", "error", "interrupted"]
    message: MessageOut | None = None
