"""What a tool is: a typed parameter model, an async ``run`` with a timeout, an output cap."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel

from opencode_api.errors import OpenCodeError
from opencode_api.store import QuestionItem, Store, Todo
from opencode_api.tools._schema import inline_schema

P = TypeVar("P", bound=BaseModel)


class QuestionRejected(OpenCodeError):
    """The user rejected the question (raised from ``ToolContext.ask``)."""


class ToolContext(Protocol):
    """What a running tool may use; provided by the session actor for one tool call."""

    @property
    def session_id(self) -> str: ...

    @property
    def message_id(self) -> str: ...

    @property
    def tool_call_id(self) -> str: ...

    @property
    def store(self) -> Store: ...

    def publish(self, event_type: str, properties: dict[str, Any]) -> None:
        """Publish a global bus event (``todo.updated``, ...) for this session."""

    async def ask(self, questions: Sequence[QuestionItem]) -> list[list[str]] | None:
        """Ask the user; waits for the reply. None when unanswered before the timeout.

        Raises ``QuestionRejected`` when the user rejects; cancelled when the turn is aborted."""

    async def todos_changed(self, todos: Sequence[Todo]) -> None:
        """Store the session's todo list and publish ``todo.updated``."""


@dataclass(frozen=True, slots=True)
class ToolOutput:
    text: str
    title: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What the model and the client see of one call."""

    tool_call_id: str
    name: str
    text: str
    is_error: bool
    arguments: dict[str, Any] | None = None
    # From the tool's ToolOutput (None for errors): a short label and structured details for
    # clients (todo lists, question answers), never shown to the model.
    title: str | None = None
    metadata: dict[str, Any] | None = None


class ToolError(OpenCodeError):
    """A tool failed in a way the model should read (becomes ``is_error: true``)."""


class Tool(Generic[P]):
    """A tool the model can call. Subclasses set the class attributes and implement ``run``.

    ``run`` may raise: ``ToolError`` (its message is the result), any other exception (reported as
    an internal tool error), or be cancelled (abort). The registry enforces ``timeout`` and caps
    the output at ``max_output_chars``.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[type[BaseModel]]
    timeout: ClassVar[float] = 60.0
    max_output_chars: ClassVar[int] = 50_000

    async def run(self, params: P, ctx: ToolContext) -> ToolOutput:
        raise NotImplementedError

    def timeout_for(self, params: P) -> float:
        """The timeout of one call (a tool may let its parameters shorten or extend it)."""
        return self.timeout

    def schema(self) -> dict[str, Any]:
        """The OpenAI-format tool schema given to the model (``$ref``s inlined, no titles)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": inline_schema(self.params.model_json_schema()),
            },
        }

    async def aclose(self) -> None:
        """Release what the tool holds (HTTP sessions); the registry calls it once, at shutdown."""
        return None


ToolFactory = Callable[[], Awaitable[Tool[Any]]]
