"""``TurnAdmission``: how a user message becomes a turn in its session's mailbox.

It resolves the model, refuses a busy session when asked to, reserves quota, stores the user
message as ``queued`` and tells the session's actor to run it, subscribed to its events first so
none is missed. A refused turn leaves nothing behind: its message is marked ``error`` and its
reservation released, through ``DeferredWrites`` when the store is down.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from opencode_api.actors._budget import BudgetPolicy
from opencode_api.actors._busy import PendingTurns
from opencode_api.actors._deferred import DeferredWrites, Write
from opencode_api.actors._errors import InvalidRequestError, SessionBusyError, client_error
from opencode_api.actors._file_inputs import FileInputs
from opencode_api.actors._ids import new_id
from opencode_api.actors._messages import Abort, RunTurn, TurnOptions, next_ticket
from opencode_api.actors._placement import Placement
from opencode_api.actors._quota import QuotaPolicy
from opencode_api.actors._turn_request import TurnRequest
from opencode_api.runtime import MailboxFull, Subscription
from opencode_api.settings import Settings
from opencode_api.store import Message, Session, Store
from opencode_api.tools import ToolRegistry

# (session id, user id) -> the session, or NotFoundError.
LoadSession = Callable[[str, str | None], Awaitable[Session]]
# (provider id, model id) -> (provider, model name, LiteLLM model string), or InvalidRequestError.
ResolveModel = Callable[[str | None, str | None], tuple[str, str, str]]
# The user message, once it is queued (the bus's ``message.created``).
Admitted = Callable[[Message, str | None], None]


class TurnAdmission:
    """Admits turns for the ``Runtime``; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        placement: Placement,
        quota: QuotaPolicy,
        budgets: BudgetPolicy,
        tools: ToolRegistry,
        pending: PendingTurns,
        writes: DeferredWrites,
        load_session: LoadSession,
        resolve: ResolveModel,
        admitted: Admitted,
    ) -> None:
        self._settings = settings
        self._store = store
        self._placement = placement
        self._quota = quota
        self._budgets = budgets
        self._tools = tools
        self._pending = pending
        self._writes = writes
        self._load_session = load_session
        self._resolve = resolve
        self._admitted = admitted
        self._inputs = FileInputs(settings)

    async def enqueue(self, request: TurnRequest) -> tuple[str, Subscription[Any]]:
        """The user message id and a subscription to the session's events from before it."""
        request.check()
        unknown = [name for name in request.tools or () if name not in self._tools]
        if unknown:
            message = f"unknown tool(s): {', '.join(sorted(set(unknown)))}"
            raise InvalidRequestError(message, field="tools")
        session_id, user_id = request.session_id, request.user_id
        model_id = request.model_id or request.model
        session = await self._load_session(session_id, user_id)
        provider, model_name, litellm_model = self._resolve(
            request.provider_id or (None if model_id else session.provider_id),
            model_id or session.model_id,
        )
        message_id = new_id("msg")
        # Files are checked before anything is held or stored (API.md "Richer input").
        given = await self._inputs.prepare(
            request.content,
            request.parts,
            kept=request.files,
            session_id=session_id,
            message_id=message_id,
            model=litellm_model,
            provider=provider,
        )
        ref = await self._placement.reach(session_id)
        if request.busy == "reject" and self._pending.status(session_id) == "busy":
            raise SessionBusyError(f"session {session_id} is busy with another turn")
        budget = await self._budgets.admit(session, user_id)
        reservation = await self._quota.reserve(user_id, request.max_tokens)
        user_message = Message(
            id=message_id,
            session_id=session_id,
            role="user",
            content=given.content,
            parts=given.parts,
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
            max_steps=request.max_steps or self._settings.max_steps,
            budget=budget,
            response_format=request.response_format,
            tools=request.tools,
        )
        subscription = ref.subscribe(ref.outbox.last_seq, max_pending=self._settings.outbox_size)
        self._pending.add(session_id)
        try:
            await self._store.put_files(given.files)
            await self._store.append_message(user_message)
            interrupt = request.busy == "interrupt"
            ref.tell(
                RunTurn(
                    user_message_id=user_message.id,
                    content=given.content,
                    options=options,
                    ticket=next_ticket(),
                    reservation=reservation,
                    sent_at=user_message.created_at,
                    replaces=request.replaces,
                    parts=tuple(given.parts),
                ),
                first=interrupt,
            )
        except BaseException as exc:
            subscription.close()
            self._pending.done(session_id)
            await self._refused(user_message, reservation, exc)
            raise
        self._admitted(user_message, user_id)
        if interrupt:
            # Queued first, then the running turn aborted: this one runs next. (An abort that
            # does not arrive leaves it first in line behind the running turn.)
            abort = Abort(next_ticket(), time.monotonic(), running_only=True)
            with contextlib.suppress(Exception):
                await ref.ask_control(abort, timeout=self._settings.control_timeout)
        return user_message.id, subscription

    async def _refused(self, message: Message, reservation: Any, exc: BaseException) -> None:
        # The message may be stored although the store reported a failure (the connection died
        # after the commit): whatever happened, it must not stay queued. Through DeferredWrites,
        # so a store that is down gets these once it is back.
        store = self._store
        error = client_error(exc)
        if isinstance(exc, MailboxFull):
            error = {"type": "mailbox_full", "message": str(exc)}
        cleanup: list[Write] = [lambda: store.set_message_status(message.id, "error", error=error)]
        if reservation is not None:
            cleanup.append(lambda: store.release_usage(reservation))
        await self._writes.run(f"refused turn {message.id}", cleanup)

    async def resubscribe(self, session_id: str, after: int | None) -> Subscription[Any]:
        """The session's events after ``after`` (a subscriber that lagged catches up)."""
        ref = await self._placement.reach(session_id)
        return ref.subscribe(after, max_pending=self._settings.outbox_size)
