"""Session titles: one short completion from the first user message, cleaned up.

The automatic title runs off the turn path: a task the session actor owns (``BackgroundTitle``),
at most one per session and ``TITLE_CONCURRENCY`` per process, cancelled when the actor stops.
A turn queued behind it, or sent after it began, never waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog

from opencode_api.actors._errors import InvalidRequestError
from opencode_api.llm import LLMClient, LLMRequest, resolve_model
from opencode_api.settings import Settings
from opencode_api.store import Message, Session

log = structlog.get_logger("opencode_api.session")

TITLE_PROMPT = (
    "Generate a short title (at most 8 words) for a conversation that starts with the user "
    "message below. Reply with the title only: no quotes, no punctuation at the end."
)


async def make_title(llm: LLMClient, text: str, model: str) -> str:
    """A title for a conversation starting with ``text``; falls back to the text itself."""
    reply = await llm.complete(
        LLMRequest(
            model=model,
            messages=[
                {"role": "system", "content": TITLE_PROMPT},
                {"role": "user", "content": text[:4000]},
            ],
            max_tokens=64,
            timeout=60.0,
        )
    )
    return clean_title(reply) or clean_title(text) or "New session"


def session_model(session: Session, settings: Settings) -> str:
    """The LiteLLM model string of the session's model (or the default model)."""
    return resolve_model(session.provider_id, session.model_id, settings.default_model)[2]


def first_user_text(history: Sequence[Message]) -> str:
    """What to title a session from when no text is given: its first user message."""
    text = next((m.content for m in history if m.role == "user" and m.content), None)
    if not text:
        raise InvalidRequestError(
            "the session has no message to make a title from", field="message"
        )
    return text


def clean_title(text: str) -> str:
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = line.strip("\"'`*# ").rstrip(".")
    if len(line) > 80:
        line = line[:77].rstrip() + "..."
    return line


class BackgroundTitle:
    """The automatic title of one session, as a task its actor owns."""

    __slots__ = ("_make", "_slots", "_task")

    def __init__(self, slots: asyncio.Semaphore, make: Callable[[str], Awaitable[object]]) -> None:
        self._slots = slots
        self._make = make
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, text: str) -> None:
        """Title the session from ``text`` in the background, unless a title is under way."""
        if not self.running:
            self._task = asyncio.create_task(self._run(text), name="session-title")

    async def _run(self, text: str) -> None:
        try:
            async with self._slots:
                await self._make(text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a title is a nicety: the turn already succeeded
            log.warning("automatic title failed", error=str(exc))

    async def cancel(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
