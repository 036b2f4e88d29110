"""The LLM seam: one small protocol in front of the model providers.

The agent loop talks only to an ``LLMClient``. Implementations: the LiteLLM client (every
provider) and the fast client for the OpenAI and Anthropic wire protocols; tests point either at
the fake provider of ``opencode_api.testing`` over real HTTP. A stream yields ``StreamEvent``s and
must be closed with ``aclose()`` (the caller does it in ``finally``), which closes the upstream
connection at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from opencode_api.usage import Usage


# Slotted, frozen: thousands are created per second on the hot path.
@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """A complete tool call, assembled from its streamed deltas; ``arguments`` is the raw JSON."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class StreamFinish:
    """The model's stop reason: ``stop``, ``tool_calls``, ``length``, ``content_filter``."""

    reason: str


# A stream ends with one ``Usage`` (the step's token counts) and one ``StreamFinish``.
StreamEvent = TextDelta | ReasoningDelta | ToolCallRequest | Usage | StreamFinish


@dataclass(slots=True)
class LLMRequest:
    """One chat completion request in OpenAI format (messages and tool schemas).

    ``model`` is a LiteLLM model string (``openai/gpt-4o-mini``, ``anthropic/claude-...``).
    ``api_base``/``api_key`` override the provider's configured endpoint and key.
    """

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    api_base: str | None = None
    api_key: str | None = None
    timeout: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class LLMClient(Protocol):
    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        """Stream one completion. Tool calls are yielded whole, after the text, before the
        finish; usage comes last. Raises ``LLMError`` subclasses. Call ``aclose()`` when done."""

    async def complete(self, request: LLMRequest) -> str:
        """One non-streamed completion (titles, compaction); returns the text."""

    async def aclose(self) -> None:
        """Release pooled connections."""
