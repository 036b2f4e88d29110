"""``SessionActor``: one chat session as an actor. Its mailbox serializes turns, compaction,
titles and history edits; its control lane takes aborts and answers to questions while a turn
runs. Every event goes to its outbox; every step to the store (how a turn ends: ``_turn_end``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from opencode_api.actors._agent_loop import AgentLoop
from opencode_api.actors._compaction import compact, needs_compaction
from opencode_api.actors._context import build_context, file_ids
from opencode_api.actors._deps import SessionDeps
from opencode_api.actors._errors import SessionError, client_error, log_failure
from opencode_api.actors._events import MessageStart, TurnEvent
from opencode_api.actors._history_edits import apply_edit, commit_revert
from opencode_api.actors._ids import new_id
from opencode_api.actors._messages import (
    Abort,
    AnswerQuestion,
    Compact,
    DeleteMessage,
    GenerateTitle,
    Revert,
    RunTurn,
)
from opencode_api.actors._questions import QuestionDesk, SessionToolContext
from opencode_api.actors._titles import (
    BackgroundTitle,
    first_user_text,
    make_title,
    session_model,
)
from opencode_api.actors._turn import Turn
from opencode_api.actors._turn_end import TurnEnding
from opencode_api.llm import LLMError
from opencode_api.runtime import Actor
from opencode_api.store import (
    Message,
    QuestionItem,
    Session,
    StoreError,
    Usage,
    utcnow,
)

log = structlog.get_logger("opencode_api.session")

# Cancellation-time cleanup (storing an aborted step) is bounded so shutdown cannot hang on it.
_CLEANUP_TIMEOUT = 10.0


class SessionActor(TurnEnding, Actor):
    # A refused request (bad input, an unconfigured or failing provider) or a store outage is an
    # answer to its asker, not a crash: only bugs count toward the restart intensity.
    answer_errors = (SessionError, LLMError, StoreError)

    def __init__(self, session: Session, deps: SessionDeps) -> None:
        self.session = session
        self.deps = deps
        # What the model sees, cached for the activation; a new session needs no query.
        self._history: list[Message] | None = [] if session.message_count == 0 else None
        self._turn_task: asyncio.Task[str] | None = None
        self._abort_ticket = 0
        self._desk = QuestionDesk(
            deps.store, deps.settings.question_timeout, self.publish, self.publish_bus
        )
        self._compaction_failed_at: int | None = None
        self._abort_requested_at: float | None = None
        self._title = BackgroundTitle(
            deps.title_slots, lambda text: self._generate_title(text, None)
        )

    async def on_stop(self) -> None:
        await self._title.cancel()

    def can_passivate(self) -> bool:
        return not self._title.running  # its result is to be stored and published

    # -- mailbox ---------------------------------------------------------------------------

    async def receive(self, message: Any) -> Any:
        structlog.contextvars.bind_contextvars(session_id=self.session.id)
        match message:
            case RunTurn():
                await self._run_turn(message)
                return None
            case Compact():
                return await self._compact(message)
            case GenerateTitle():
                return await self._generate_title(message.message, message.model)
            case DeleteMessage() | Revert():
                self._history = None  # read again: the model no longer sees what changed
                answer, self.session = await apply_edit(
                    self.deps.store, self.session, message, self.publish_bus
                )
                return answer
            case _:
                raise TypeError(f"SessionActor cannot handle {type(message).__name__}")

    async def receive_control(self, message: Any) -> Any:
        match message:
            case Abort(ticket=ticket, requested_at=requested_at):
                if not message.running_only:
                    self._abort_ticket = max(self._abort_ticket, ticket)
                task = self._turn_task
                running = task is not None and not task.done()
                if task is not None and running:
                    task.cancel()
                    if self._abort_requested_at is None:
                        self._abort_requested_at = requested_at
                return running or self.ref.mailbox_depth > 0
            case AnswerQuestion():
                return self._desk.answer(message)
            case _:
                raise TypeError(f"SessionActor cannot handle control {type(message).__name__}")

    # -- publishing ------------------------------------------------------------------------

    def publish(self, event: TurnEvent) -> None:
        self.outbox.publish(event)

    def publish_bus(
        self, event_type: str, properties: dict[str, Any] | Callable[[], dict[str, Any]]
    ) -> None:
        """Publish on the global bus about this session (see ``SessionDeps.publish_bus``)."""
        self.deps.publish_bus(event_type, self.session.id, self.session.user_id, properties)

    # -- turns -----------------------------------------------------------------------------

    async def _run_turn(self, msg: RunTurn) -> None:
        """Run one turn. Whatever fails and wherever, its stream ends with ``error`` (or
        ``done``), the session's busy count drops, and what the store refused is retried."""
        store = self.deps.store
        started = time.monotonic()
        # The reply takes its question's timestamp (and a later id), so a history listed by
        # (created_at, id) reads as a conversation even when the next message was queued
        # before this reply began.
        assistant = Message(
            id=new_id("msg"),
            session_id=self.session.id,
            created_at=msg.sent_at or utcnow(),
            role="assistant",
            provider_id=msg.options.provider_id,
            model_id=msg.options.model_id,
            parent_id=msg.user_message_id,
            status="running",
            usage=Usage(),
        )
        turn = Turn(
            session_id=self.session.id,
            user_message_id=msg.user_message_id,
            message=assistant,
            options=msg.options,
        )
        start = MessageStart(
            self.session.id, assistant.id, msg.user_message_id, parent_id=msg.user_message_id
        )
        if msg.ticket < self._abort_ticket:
            # Aborted while queued: end it the same way, without calling the model.
            self.publish(start)
            await self._finish(turn, msg, "aborted", started, store_message=False)
            return
        try:
            await self._commit_revert(msg.replaces)
            await store.start_reply(msg.user_message_id, assistant)
        except Exception as exc:
            # The store refused the turn's start (down, disk full): nothing ran, nothing to keep.
            log_failure(exc)
            self.publish(start)
            error = client_error(exc)
            await self._finish(turn, msg, "error", started, error=error, store_message=False)
            return
        # The live status is the runtime's (Runtime.status); the store's stays "idle".
        self.publish_bus("session.status", {"status": "busy"})
        self.publish(start)
        self.publish_bus("message.created", lambda: {"info": assistant.model_dump(mode="json")})

        task = asyncio.create_task(self._turn_body(turn, msg), name=f"turn:{assistant.id}")
        self._turn_task = task
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            # The actor itself is being stopped (shutdown past its grace): abort the turn,
            # record it, and let the cancellation go on.
            task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.wait([task]), _CLEANUP_TIMEOUT)
            await asyncio.shield(self._finish(turn, msg, "aborted", started))
            raise
        finally:
            self._turn_task = None

        if task.cancelled():
            await self._finish(turn, msg, "aborted", started)
        elif (failure := task.exception()) is not None:
            log_failure(failure)
            await self._finish(turn, msg, "error", started, error=client_error(failure))
        else:
            await self._finish(turn, msg, task.result(), started)
            await self._after_turn(msg)

    async def _turn_body(self, turn: Turn, msg: RunTurn) -> str:
        history = await self._load_history(exclude=msg.user_message_id)
        user = Message(
            id=msg.user_message_id,
            session_id=self.session.id,
            role="user",
            content=msg.content,
            parts=list(msg.parts),
        )
        settings = self.deps.settings
        messages = [*history, user]
        ids = file_ids(messages)
        files = await self.deps.store.get_files(self.session.id, ids) if ids else []
        context = build_context(
            msg.options.system,
            messages,
            prune_tokens=settings.tool_output_prune_tokens,
            files={f.id: f for f in files},
        )
        loop = AgentLoop(
            settings=settings,
            store=self.deps.store,
            llm=self.deps.llm,
            tools=self.deps.tools,
            publish=self.publish,
            budgets=self.deps.budgets,
            tool_context=lambda t, call_id: SessionToolContext(
                t, call_id, self.deps.store, self.publish_bus, self._ask
            ),
        )
        return await loop.run(turn, context)

    async def _after_turn(self, msg: RunTurn) -> None:
        settings = self.deps.settings
        # A message of files alone has no text to name the session by: a later one will.
        if self.session.title is None and settings.auto_title and msg.content.strip():
            self._title.start(msg.content)
        history = self._history or []
        if needs_compaction(history, msg.options.model, settings):
            live = sum(1 for m in history if not m.compacted)
            if self._compaction_failed_at is not None and live < self._compaction_failed_at + 10:
                return  # failed recently: retry after more messages, never in a loop
            with contextlib.suppress(Exception):
                self.ref.tell(Compact(auto=True))

    async def _load_history(self, *, exclude: str | None = None) -> list[Message]:
        """The messages the model still sees (cached; the store is read once per activation)."""
        if self._history is None:
            page = await self.deps.store.list_messages(self.session.id, include_compacted=False)
            messages = page.messages if page is not None else []
            self._history = [
                m for m in messages if m.status not in ("queued", "running") and m.id != exclude
            ]
        return [m for m in self._history if not m.compacted]

    # -- questions -----------------------------------------------------------------------------

    async def _ask(
        self, turn: Turn, tool_call_id: str, questions: Sequence[QuestionItem]
    ) -> list[list[str]] | None:
        return await self._desk.ask(self.session, turn, tool_call_id, questions)

    # -- titles ----------------------------------------------------------------------------

    async def _generate_title(self, text: str | None, model: str | None) -> str:
        text = text or first_user_text(await self._load_history())
        settings = self.deps.settings
        model = model or settings.title_model or session_model(self.session, settings)
        title = await make_title(self.deps.llm, text, model)
        updated = await self.deps.store.update_session(self.session.id, title=title)
        if updated is not None:
            self.session = updated
            self.publish_bus("session.updated", {"info": updated.model_dump(mode="json")})
        return title

    # -- compaction ------------------------------------------------------------------------------

    async def _commit_revert(self, replaces: str | None) -> None:
        session = await commit_revert(self.deps.store, self.session, replaces, self.publish_bus)
        if session is not None:
            self.session, self._history = session, None

    async def _compact(self, msg: Compact) -> bool:
        await self._commit_revert(None)  # what a revert hid is not summarized: it goes first
        self._history = None
        history = await self._load_history()
        model = msg.model or session_model(self.session, self.deps.settings)
        deps = self.deps
        try:
            compacted = await compact(
                deps.store,
                deps.llm,
                deps.settings,
                self.session.id,
                history,
                model,
                self.publish_bus,
            )
        except Exception:
            self._compaction_failed_at = len(history)
            if not msg.auto:
                raise
            return False
        if not compacted:
            return False
        self._compaction_failed_at = None
        self._history = None
        return True
