"""``Runtime``: the one door to sessions, for http/ and for embedding applications.

Where a session's actor lives is the Runtime's business (this process today); callers only see
plain data: records from the store, events from the outbox.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import structlog

from opencode_api.actors._busy import ClearOnStop, PendingTurns
from opencode_api.actors._compaction import CompactionStatus, compaction_status
from opencode_api.actors._deferred import Write
from opencode_api.actors._deps import SessionDeps, TurnSummary
from opencode_api.actors._errors import (
    InvalidRequestError,
    NotFoundError,
    SessionBusyError,
    client_error,
)
from opencode_api.actors._events import BusEvent
from opencode_api.actors._ids import new_id
from opencode_api.actors._messages import (
    Abort,
    AnswerQuestion,
    Compact,
    GenerateTitle,
    RunTurn,
    TurnOptions,
    next_ticket,
)
from opencode_api.actors._ownership import TurnLease
from opencode_api.actors._placement import LocalPlacement, Placement
from opencode_api.actors._quota import QuotaPolicy
from opencode_api.actors._session_actor import SessionActor
from opencode_api.actors._turn_request import BusyPolicy, TurnRequest
from opencode_api.actors._turn_stream import TurnStream
from opencode_api.llm import LLMClient, RoutingLLMClient, resolve_model
from opencode_api.runtime import (
    MailboxFull,
    Outbox,
    Subscription,
    Supervisor,
    SupervisorHooks,
    SupervisorStats,
)
from opencode_api.settings import Settings
from opencode_api.store import (
    Message,
    MessagePage,
    Order,
    Question,
    Session,
    SessionCost,
    Store,
    Todo,
    open_store_for,
)
from opencode_api.tools import ToolRegistry, default_registry

log = structlog.get_logger("opencode_api.runtime")



class Runtime:
    """Sessions as actors, with their store, LLM client and tools. Use ``Runtime.open``."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        llm: LLMClient | None = None,
        tools: Callable[[], ToolRegistry] | None = None,
        hooks: SupervisorHooks | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        if llm is None:
            llm = RoutingLLMClient(settings)
        self.llm: LLMClient = llm
        self._tools_factory = tools or (lambda: default_registry(settings))
        self.tools = self._tools_factory()
        self.bus: Outbox[BusEvent] = Outbox(capacity=settings.outbox_size)
        self.quota = QuotaPolicy(store, settings)
        self.lease = TurnLease(store, ttl=settings.turn_lease_ttl)
        self._deps = SessionDeps(
            settings=settings,
            store=store,
            llm=self.llm,
            tools=self.tools,
            bus=self.bus,
            quota=self.quota,
        )
        # Callables told about every finished turn (metrics).
        self.turn_listeners: list[Callable[[TurnSummary], None]] = self._deps.turn_listeners
        self._pending = PendingTurns()
        # Recently used sessions, so a turn does not read its session back from the store: only
        # fields a turn needs and that never change after creation (owner, model, system) are
        # read from here; title updates do not matter to it. Deletion evicts.
        self._recent_sessions: OrderedDict[str, Session] = OrderedDict()
        self.turn_listeners.append(self._turn_ended)
        self.placement: Placement = LocalPlacement(
            settings, self._activate, ClearOnStop(self._pending, hooks)
        )
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings | None = None,
        *,
        database_url: str | None = None,
        llm: LLMClient | None = None,
        **overrides: Any,
    ) -> AsyncIterator[Runtime]:
        """Open the store, start the runtime, and stop both on exit (running turns drain)."""

        if settings is None:
            settings = Settings(**overrides)
        elif overrides:
            settings = settings.model_copy(update=overrides)
        if database_url is not None:
            settings = settings.model_copy(update={"database_url": database_url})
        store = open_store_for(settings)
        await store.open()
        runtime = cls(settings, store, llm=llm)
        try:
            await runtime.start()
            yield runtime
        finally:
            try:
                await runtime.close()
            finally:
                await store.close()

    async def start(self) -> None:
        # In the background and only when the default model needs LiteLLM (2 s, ~200 MB).
        if self.settings.llm_warm_up and isinstance(self.llm, RoutingLLMClient):
            self.llm.start_warm_up()
        await self.lease.start(recover=self.settings.mark_interrupted_on_start)
        await self.placement.start()
        self._started = True

    async def close(self, grace: float | None = None) -> None:
        """Stop accepting; let running turns finish within ``grace``; abort the rest."""
        if not self._started:
            return
        self._started = False
        grace = self.settings.shutdown_grace if grace is None else grace
        await self.placement.close(grace)
        self.bus.close()
        await self._deps.writes.close()
        await self.lease.close()
        await self.tools.aclose()
        await self.llm.aclose()

    @property
    def supervisor(self) -> Supervisor:
        """The supervisor of a local placement (tests and embedding code that need its knobs)."""
        placement = self.placement
        if not isinstance(placement, LocalPlacement):
            raise AttributeError("sessions of this runtime are not placed in this process")
        return placement.supervisor

    def stats(self) -> SupervisorStats:
        """Live and busy sessions, activations, restarts, mailbox depths (for metrics)."""
        return self.placement.stats()

    async def _activate(self, session_id: str) -> SessionActor:
        session = await self.store.get_session(session_id)
        if session is None:
            raise NotFoundError("session", session_id)
        return SessionActor(session, self._deps)

    # -- sessions --------------------------------------------------------------------------

    async def create_session(
        self,
        *,
        title: str | None = None,
        provider_id: str | None = None,
        model_id: str | None = None,
        system: str | None = None,
        user_id: str | None = None,
    ) -> Session:
        if provider_id is not None or model_id is not None:
            provider_id, model_id, _ = self._resolve(provider_id, model_id)
        session = Session(
            id=new_id("ses"),
            title=title,
            provider_id=provider_id,
            model_id=model_id,
            system=system,
            user_id=user_id,
        )
        created = await self.store.create_session(session)
        self._remember(created)
        self._publish("session.created", created.id, user_id, lambda: {"info": _jsonable(created)})
        return created

    async def get_session(self, session_id: str, *, user_id: str | None = None) -> Session:
        session = await self.store.get_session(session_id, user_id=user_id)
        if session is None:
            raise NotFoundError("session", session_id)
        self._remember(session)
        return session

    _RECENT_SESSIONS = 10_000

    def _remember(self, session: Session) -> None:
        recent = self._recent_sessions
        recent[session.id] = session
        recent.move_to_end(session.id)
        if len(recent) > self._RECENT_SESSIONS:
            recent.popitem(last=False)

    async def _session_for_turn(self, session_id: str, user_id: str | None) -> Session:
        session = self._recent_sessions.get(session_id)
        if session is not None and (user_id is None or session.user_id == user_id):
            self._recent_sessions.move_to_end(session_id)
            return session
        return await self.get_session(session_id, user_id=user_id)

    async def list_sessions(
        self, *, user_id: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Session]:
        return await self.store.list_sessions(user_id=user_id, limit=limit, offset=offset)

    async def update_session(
        self, session_id: str, *, user_id: str | None = None, title: str | None = None
    ) -> Session:
        session = await self.store.update_session(session_id, user_id=user_id, title=title)
        if session is None:
            raise NotFoundError("session", session_id)
        self._publish("session.updated", session_id, user_id, lambda: {"info": _jsonable(session)})
        return session

    async def delete_session(self, session_id: str, *, user_id: str | None = None) -> None:
        """Abort a running turn, stop the actor, delete the session and all it holds."""
        await self.get_session(session_id, user_id=user_id)
        ref = self.placement.live(session_id)
        if ref is not None:
            try:
                await ref.ask_control(Abort(next_ticket()), timeout=5.0)
            except Exception:  # the actor may already be gone; deletion goes on
                log.debug("abort before delete failed", session_id=session_id, exc_info=True)
            await self.placement.stop(session_id, self.settings.shutdown_grace)
        self._recent_sessions.pop(session_id, None)
        if not await self.store.delete_session(session_id, user_id=user_id):
            raise NotFoundError("session", session_id)
        self._publish("session.deleted", session_id, user_id, lambda: {"info": {"id": session_id}})

    async def list_messages(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        order: Order = "asc",
    ) -> MessagePage:
        if limit is not None and limit < 0:
            raise InvalidRequestError("limit must be >= 0", field="limit")
        if offset < 0:
            raise InvalidRequestError("offset must be >= 0", field="offset")
        page = await self.store.list_messages(
            session_id, user_id=user_id, limit=limit, offset=offset, order=order
        )
        if page is None:
            raise NotFoundError("session", session_id)
        return page

    async def session_cost(self, session_id: str, *, user_id: str | None = None) -> SessionCost:
        cost = await self.store.get_session_cost(session_id, user_id=user_id)
        if cost is None:
            raise NotFoundError("session", session_id)
        return cost

    async def todos(self, session_id: str, *, user_id: str | None = None) -> list[Todo]:
        await self.get_session(session_id, user_id=user_id)
        return await self.store.get_todos(session_id)

    def status(self, session_id: str) -> Literal["idle", "busy"]:
        return self._pending.status(session_id)

    def _turn_ended(self, summary: TurnSummary) -> None:
        self._pending.done(summary.session_id)

    # -- turns -----------------------------------------------------------------------------

    def send(
        self,
        session_id: str,
        content: str,
        *,
        user_id: str | None = None,
        model: str | None = None,
        provider_id: str | None = None,
        model_id: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        tools_enabled: bool = True,
        max_steps: int | None = None,
        busy: BusyPolicy = "queue",
    ) -> TurnStream:
        """Send a user message; the returned stream yields this turn's events.

        The turn belongs to the session: closing the stream early does not stop it.
        """
        return self.send_request(
            TurnRequest(
                session_id,
                content,
                user_id=user_id,
                model=model,
                provider_id=provider_id,
                model_id=model_id,
                system=system,
                temperature=temperature,
                max_tokens=max_tokens,
                tools_enabled=tools_enabled,
                max_steps=max_steps,
                busy=busy,
            )
        )

    def send_request(self, request: TurnRequest) -> TurnStream:
        """``send`` for a request built elsewhere (http/ builds one per POST)."""
        session_id = request.session_id
        return TurnStream(
            lambda: self._enqueue_turn(request),
            lambda after: self._resubscribe(session_id, after),
        )

    async def _enqueue_turn(self, request: TurnRequest) -> tuple[str, Subscription[Any]]:
        request.check()
        session_id, user_id, content = request.session_id, request.user_id, request.content
        model_id = request.model_id or request.model
        session = await self._session_for_turn(session_id, user_id)
        provider, model_name, litellm_model = self._resolve(
            request.provider_id or (None if model_id else session.provider_id),
            model_id or session.model_id,
        )
        ref = await self.placement.reach(session_id)
        if request.busy == "reject" and self.status(session_id) == "busy":
            raise SessionBusyError(f"session {session_id} is busy with another turn")
        reservation = await self.quota.reserve(user_id, request.max_tokens)
        user_message = Message(
            id=new_id("msg"),
            session_id=session_id,
            role="user",
            content=content,
            provider_id=provider,
            model_id=model_name,
            status="queued",
        )
        options = TurnOptions(
            model=litellm_model,
            provider_id=provider,
            model_id=model_name,
            system=request.system if request.system is not None else session.system,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            tools_enabled=request.tools_enabled,
            max_steps=request.max_steps or self.settings.max_steps,
        )
        subscription = ref.subscribe(ref.outbox.last_seq, max_pending=self.settings.outbox_size)
        self._pending.add(session_id)
        try:
            await self.store.append_message(user_message)
            ref.tell(
                RunTurn(
                    user_message_id=user_message.id,
                    content=content,
                    options=options,
                    ticket=next_ticket(),
                    reservation=reservation,
                    sent_at=user_message.created_at,
                )
            )
        except BaseException as exc:
            subscription.close()
            self._pending.done(session_id)
            # The message may be stored although the store reported a failure (the connection
            # died after the commit): whatever happened, it must not stay queued. Through
            # DeferredWrites, so a store that is down gets these once it is back.
            store = self.store
            error = client_error(exc)
            if isinstance(exc, MailboxFull):
                error = {"type": "mailbox_full", "message": str(exc)}
            cleanup: list[Write] = [
                lambda: store.set_message_status(user_message.id, "error", error=error)
            ]
            if reservation is not None:
                cleanup.append(lambda: store.release_usage(reservation))
            await self._deps.writes.run(f"refused turn {user_message.id}", cleanup)
            raise
        self._publish(
            "message.created", session_id, user_id, lambda: {"info": _jsonable(user_message)}
        )
        return user_message.id, subscription

    async def _resubscribe(self, session_id: str, after: int | None) -> Subscription[Any]:
        ref = await self.placement.reach(session_id)
        return ref.subscribe(after, max_pending=self.settings.outbox_size)

    async def abort(self, session_id: str, *, user_id: str | None = None) -> bool:
        """Abort the running turn and the queued ones; False when there was nothing to abort."""
        requested_at = time.monotonic()
        await self.get_session(session_id, user_id=user_id)
        ref = self.placement.live(session_id)
        if ref is None:
            return False
        result = await ref.ask_control(Abort(next_ticket(), requested_at), timeout=30.0)
        return bool(result)

    @asynccontextmanager
    async def subscribe(
        self, session_id: str, *, user_id: str | None = None, after: int | None = None
    ) -> AsyncIterator[Subscription[Any]]:
        """Re-attach to a session's event stream: what came after ``after``, then live.

        When the events after ``after`` are no longer kept (a new activation, or too old), the
        subscription starts from now; the stored messages hold everything that was lost.
        """
        await self.get_session(session_id, user_id=user_id)
        ref = await self.placement.reach(session_id)
        outbox = ref.outbox
        if after is not None:
            if after > outbox.last_seq or outbox.oldest_seq is None:
                # From another activation's future, or nothing buffered: from now on.
                after = None
            elif not _replayable(outbox, after):
                # Older than the buffer (``0`` included): everything still buffered.
                oldest = getattr(outbox, "oldest_seq", None)
                after = None if oldest is None else oldest - 1
        subscription = ref.subscribe(after, max_pending=self.settings.outbox_size)
        try:
            yield subscription
        finally:
            subscription.close()

    def subscribe_bus(self, *, max_pending: int = 1024) -> Subscription[BusEvent]:
        return self.bus.subscribe(None, max_pending=max_pending)

    # -- compaction and titles -----------------------------------------------------------------

    async def compact(
        self, session_id: str, *, user_id: str | None = None, model_id: str | None = None
    ) -> CompactionStatus:
        """Compact now (queued behind a running turn); the status after it ran."""
        session = await self.get_session(session_id, user_id=user_id)
        model = self._resolve(None, model_id)[2] if model_id else None
        ref = await self.placement.reach(session_id)
        await ref.ask(Compact(model=model))
        return await compaction_status(self.store, session, self.settings.compaction_threshold)

    async def compaction_status(
        self, session_id: str, *, user_id: str | None = None
    ) -> CompactionStatus:
        session = await self.get_session(session_id, user_id=user_id)
        return await compaction_status(self.store, session, self.settings.compaction_threshold)

    async def generate_title(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        message: str | None = None,
        model_id: str | None = None,
    ) -> str:
        await self.get_session(session_id, user_id=user_id)
        model = self._resolve(None, model_id)[2] if model_id else None
        ref = await self.placement.reach(session_id)
        title = await ref.ask(GenerateTitle(message=message, model=model))
        return str(title)

    # -- questions -----------------------------------------------------------------------------

    async def list_questions(
        self, *, session_id: str | None = None, user_id: str | None = None
    ) -> list[Question]:
        return await self.store.list_questions(session_id=session_id, user_id=user_id)

    async def question_session(self, question_id: str) -> str | None:
        """The session a question belongs to (any user's), or None: for routing a reply."""
        question = await self.store.get_question(question_id)
        return question.session_id if question is not None else None

    async def reply_question(
        self, question_id: str, answers: Sequence[Sequence[str]], *, user_id: str | None = None
    ) -> None:
        await self._answer(question_id, [list(a) for a in answers], False, user_id)

    async def reject_question(self, question_id: str, *, user_id: str | None = None) -> None:
        await self._answer(question_id, None, True, user_id)

    async def _answer(
        self,
        question_id: str,
        answers: list[list[str]] | None,
        rejected: bool,
        user_id: str | None,
    ) -> None:
        question = await self.store.get_question(question_id, user_id=user_id)
        if question is None or question.status != "pending":
            raise NotFoundError("question", question_id)
        ref = self.placement.live(question.session_id)
        handled = False
        if ref is not None:
            handled = bool(
                await ref.ask_control(
                    AnswerQuestion(question_id, answers=answers, rejected=rejected), timeout=30.0
                )
            )
        if not handled:
            # Nobody waits any more (the turn ended or the process restarted): record it anyway.
            status: Literal["answered", "rejected"] = "rejected" if rejected else "answered"
            if not await self.store.resolve_question(question_id, status, answers):
                raise NotFoundError("question", question_id)

    # -- helpers -------------------------------------------------------------------------------

    def _resolve(self, provider_id: str | None, model_id: str | None) -> tuple[str, str, str]:
        try:
            return resolve_model(provider_id, model_id, self.settings.default_model)
        except ValueError as exc:
            raise InvalidRequestError(str(exc), field="model_id") from exc

    def _publish(
        self,
        event_type: str,
        session_id: str,
        user_id: str | None,
        properties: Callable[[], dict[str, Any]],
    ) -> None:
        self._deps.publish_bus(event_type, session_id, user_id, properties)


def _replayable(outbox: Outbox[Any], after: int) -> bool:
    oldest = getattr(outbox, "oldest_seq", None)
    return oldest is None or after >= oldest - 1


def _jsonable(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json")
    return data
