"""``Runtime``: the one door to sessions, for http/ and for embedding applications.

Where a session's actor lives is the Runtime's business (this process today); callers only see
plain data: records from the store, events from the outbox.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, Unpack

import structlog

from opencode_api.actors._admission import TurnAdmission
from opencode_api.actors._answers import QuestionAnswers
from opencode_api.actors._budget import BudgetPolicy
from opencode_api.actors._busy import ClearOnStop, PendingTurns
from opencode_api.actors._compaction import CompactionStatus, compaction_status
from opencode_api.actors._deps import SessionDeps, TurnSummary
from opencode_api.actors._errors import NotFoundError
from opencode_api.actors._events import BusEvent
from opencode_api.actors._history_edits import HistoryEdits
from opencode_api.actors._messages import (
    Abort,
    Compact,
    GenerateTitle,
    next_ticket,
)
from opencode_api.actors._ownership import TurnLease
from opencode_api.actors._placement import LocalPlacement, Peer, Placement
from opencode_api.actors._quota import QuotaPolicy
from opencode_api.actors._replies import TurnReplies
from opencode_api.actors._runtime_history import HistoryOperations
from opencode_api.actors._session_actor import SessionActor
from opencode_api.actors._sessions import NewSession, SessionChanges, SessionDirectory, jsonable
from opencode_api.actors._turn_request import SendOptions, TurnRequest
from opencode_api.actors._turn_stream import TurnStream, reattach_after
from opencode_api.actors._webhooks import Webhooks
from opencode_api.actors._worker_placement import placement_for
from opencode_api.llm import LLMClient, RoutingLLMClient
from opencode_api.runtime import (
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


class Runtime(HistoryOperations):
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
        self.tools = tools() if tools is not None else default_registry(settings)
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
            budgets=BudgetPolicy(store, settings),
        )
        # Callables told about every finished turn (metrics).
        self.turn_listeners: list[Callable[[TurnSummary], None]] = self._deps.turn_listeners
        self._pending = PendingTurns()
        self.turn_listeners.append(self._turn_ended)
        self.placement: Placement = placement_for(
            settings, self._activate, ClearOnStop(self._pending, hooks)
        )
        self._sessions = SessionDirectory(settings, store, self.placement, self._publish)
        self._resolve = self._sessions.resolve
        self._admission = TurnAdmission(
            settings,
            store,
            placement=self.placement,
            quota=self.quota,
            budgets=self._deps.budgets,
            tools=self.tools,
            pending=self._pending,
            writes=self._deps.writes,
            load_session=self._sessions.for_turn,
            resolve=self._resolve,
            admitted=self._admitted,
        )
        self._answers = QuestionAnswers(store, self.placement, settings.control_timeout)
        self._edits = HistoryEdits(store, self.placement, self.status)
        self._replies = TurnReplies(
            store, lambda session_id, user_id: self.subscribe(session_id, user_id=user_id)
        )
        self._webhooks: Webhooks | None = None
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
        try:
            runtime = cls(settings, store, llm=llm)
            try:
                await runtime.start()
                yield runtime
            finally:
                await runtime.close()
        finally:
            await store.close()  # also when the runtime could not be built

    async def start(self) -> None:
        # In the background and only when the default model needs LiteLLM (2 s, ~200 MB).
        if self.settings.llm_warm_up and isinstance(self.llm, RoutingLLMClient):
            self.llm.start_warm_up()
        await self.lease.start(recover=self.settings.mark_interrupted_on_start)
        await self.placement.start()
        self.tools.start()  # MCP servers connect in the background
        # Webhook deliveries (WEBHOOK_SECRET set): the ends of turns, from the bus, stored and sent.
        self._webhooks = Webhooks.start_for(self)
        self._started = True

    async def close(self, grace: float | None = None) -> None:
        """Stop accepting; let running turns finish within ``grace``; abort the rest."""
        if not self._started:
            return
        self._started = False
        grace = self.settings.shutdown_grace if grace is None else grace
        await self.placement.close(grace)
        self.bus.close()
        if self._webhooks is not None:  # after the bus: aborted turns' ends are stored too
            await self._webhooks.close()
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

    @property
    def webhooks(self) -> Webhooks | None:
        """This runtime's webhooks (None: off, without ``WEBHOOK_SECRET``)."""
        return self._webhooks

    def store_statements(self) -> int | None:
        """SQL statements (round trips on PostgreSQL) since the store opened, or None."""
        count = getattr(self.store, "statements", None)
        return count if isinstance(count, int) else None

    def store_transactions(self) -> int | None:
        """Write and read transactions (COMMITs) since the store opened, or None."""
        count = getattr(self.store, "transactions", None)
        return count if isinstance(count, int) else None

    def stats(self) -> SupervisorStats:
        """Live and busy sessions, activations, restarts, mailbox depths (for metrics)."""
        return self.placement.stats()

    async def _activate(self, session_id: str) -> SessionActor:
        # A session created or read here while no actor held it starts from that row.
        session = self._sessions.take_whole(session_id) or await self.store.get_session(session_id)
        if session is None:
            raise NotFoundError("session", session_id)
        return SessionActor(session, self._deps)

    # -- sessions --------------------------------------------------------------------------

    async def create_session(self, **fields: Unpack[NewSession]) -> Session:
        """A new session; ``fields``: title, provider_id, model_id, system, user_id."""
        return await self._sessions.create(**fields)

    async def get_session(self, session_id: str, *, user_id: str | None = None) -> Session:
        return await self._sessions.get(session_id, user_id)

    async def list_sessions(
        self, *, user_id: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Session]:
        return await self.store.list_sessions(user_id=user_id, limit=limit, offset=offset)

    async def update_session(
        self, session_id: str, *, user_id: str | None = None, **changes: Unpack[SessionChanges]
    ) -> Session:
        return await self._sessions.update(session_id, user_id, changes)

    async def delete_session(self, session_id: str, *, user_id: str | None = None) -> None:
        """Abort a running turn, stop the actor, delete the session and all it holds."""
        await self._sessions.delete(session_id, user_id)

    async def list_messages(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        order: Order = "asc",
    ) -> MessagePage:
        return await self._sessions.messages(session_id, user_id, limit, offset, order)

    async def session_cost(self, session_id: str, *, user_id: str | None = None) -> SessionCost:
        return await self._sessions.cost(session_id, user_id)

    async def todos(self, session_id: str, *, user_id: str | None = None) -> list[Todo]:
        await self.get_session(session_id, user_id=user_id)
        return await self.store.get_todos(session_id)

    def status(self, session_id: str) -> Literal["idle", "busy"]:
        return self._pending.status(session_id)

    def _turn_ended(self, summary: TurnSummary) -> None:
        self._pending.done(summary.session_id)

    # -- turns -----------------------------------------------------------------------------

    def send(self, session_id: str, content: str, **options: Unpack[SendOptions]) -> TurnStream:
        """Send a user message; the stream yields its turn's events (closing it does not stop
        the turn). ``options``: ``TurnRequest``'s fields (model, system, max_steps, busy, ...)."""
        return self.send_request(TurnRequest(session_id, content, **options))

    def send_request(self, request: TurnRequest) -> TurnStream:
        """``send`` for a request built elsewhere (http/ builds one per POST)."""
        session_id = request.session_id
        admission = self._admission
        return TurnStream(
            lambda: admission.enqueue(request),
            lambda after: admission.resubscribe(session_id, after),
        )

    async def abort(self, session_id: str, *, user_id: str | None = None) -> bool:
        """Abort the running turn and the queued ones; False when there was nothing to abort."""
        requested_at = time.monotonic()
        await self.get_session(session_id, user_id=user_id)
        ref = self.placement.live(session_id)
        if ref is None:
            return False
        result = await ref.ask_control(
            Abort(next_ticket(), requested_at), timeout=self.settings.control_timeout
        )
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
        after = reattach_after(ref.outbox, after)
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

    async def route(
        self, *, session_id: str | None = None, question_id: str | None = None
    ) -> Peer | None:
        """The peer process hosting this session (or this question's session), or None when
        this process serves it: http/ passes the request there unchanged."""
        if question_id is not None:
            question = await self.store.get_question(question_id)
            session_id = question.session_id if question is not None else None
        return self.placement.home(session_id) if session_id is not None else None

    def peers(self) -> list[Peer]:
        """The other processes hosting sessions (``GET /event`` merges their buses)."""
        return self.placement.peers()

    async def reply_question(
        self, question_id: str, answers: Sequence[Sequence[str]], *, user_id: str | None = None
    ) -> None:
        answer = [list(a) for a in answers]
        await self._answers.answer(question_id, answer, rejected=False, user_id=user_id)

    async def reject_question(self, question_id: str, *, user_id: str | None = None) -> None:
        await self._answers.answer(question_id, None, rejected=True, user_id=user_id)

    # -- helpers -------------------------------------------------------------------------------

    def _admitted(self, message: Message, user_id: str | None) -> None:
        self._publish(
            "message.created", message.session_id, user_id, lambda: {"info": jsonable(message)}
        )

    def _publish(
        self,
        event_type: str,
        session_id: str,
        user_id: str | None,
        properties: Callable[[], dict[str, Any]],
    ) -> None:
        self._deps.publish_bus(event_type, session_id, user_id, properties)
