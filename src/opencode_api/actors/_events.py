"""Events a session publishes: turn events (its outbox, the SSE turn stream) and bus events.

Plain frozen dataclasses of JSON-ready values, so they cross the placement seam (another process,
a Ray shard) as they are. ``to_dict()`` gives API.md's SSE ``data`` object.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

_WIRE_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _wire_fields(cls: type[Any]) -> tuple[str, ...]:
    # dataclasses.fields() per event showed in profiles: computed once per event class.
    names = _WIRE_FIELDS.get(cls)
    if names is None:
        names = _WIRE_FIELDS[cls] = tuple(f.name for f in fields(cls) if f.name != "turn_id")
    return names


_INIT_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _init_fields(cls: type[Any]) -> tuple[str, ...]:
    names = _INIT_FIELDS.get(cls)
    if names is None:
        names = _INIT_FIELDS[cls] = tuple(f.name for f in fields(cls))
    return names


@dataclass(frozen=True, slots=True)
class TurnEvent:
    """Base of the turn events. ``turn_id`` is the user message that started the turn."""

    type: ClassVar[str] = "event"
    # Events that end a turn's stream.
    terminal: ClassVar[bool] = False

    session_id: str
    message_id: str
    turn_id: str

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type}
        for name in _wire_fields(type(self)):
            data[name] = getattr(self, name)
        return data

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled by the batch when events cross processes (Ray shards): the class and its
        # fields in order, instead of dataclasses' per-event fields() walk (~4x the time).
        cls = type(self)
        return cls, tuple(getattr(self, name) for name in _init_fields(cls))


@dataclass(frozen=True, slots=True)
class MessageStart(TurnEvent):
    type: ClassVar[str] = "message_start"
    parent_id: str


@dataclass(frozen=True, slots=True)
class StepStart(TurnEvent):
    type: ClassVar[str] = "step_start"
    step_number: int
    max_steps: int


@dataclass(frozen=True, slots=True)
class ReasoningEvent(TurnEvent):
    type: ClassVar[str] = "reasoning"
    text: str


@dataclass(frozen=True, slots=True)
class TextEvent(TurnEvent):
    type: ClassVar[str] = "text"
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallEvent(TurnEvent):
    type: ClassVar[str] = "tool_call"
    # {"id", "name", "arguments"} with arguments as the parsed JSON object.
    tool_call: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResultEvent(TurnEvent):
    type: ClassVar[str] = "tool_result"
    tool_call_id: str
    name: str
    text: str
    is_error: bool


@dataclass(frozen=True, slots=True)
class QuestionEvent(TurnEvent):
    type: ClassVar[str] = "question"
    question_id: str
    questions: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class StepFinish(TurnEvent):
    type: ClassVar[str] = "step_finish"
    step_number: int
    stop_reason: str
    usage: dict[str, int]
    cost: float


@dataclass(frozen=True, slots=True)
class Done(TurnEvent):
    type: ClassVar[str] = "done"
    terminal: ClassVar[bool] = True
    usage: dict[str, int]
    cost: float
    stop_reason: str
    # The parsed answer of a turn with a response_format; left out of the event without one.
    output: Any = None

    def to_dict(self) -> dict[str, Any]:
        data = TurnEvent.to_dict(self)
        if self.output is None:
            del data["output"]
        return data


@dataclass(frozen=True, slots=True)
class ErrorEvent(TurnEvent):
    type: ClassVar[str] = "error"
    terminal: ClassVar[bool] = True
    # {"type": "<snake_case>", "message": "<human text>"}
    error: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BusEvent:
    """A global event (``GET /event``): ``{"type": ..., "properties": {...}}``."""

    type: str
    properties: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    user_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "properties": self.properties}
