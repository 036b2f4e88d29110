"""The one async protocol every storage backend implements (SQLite, PostgreSQL, Supabase REST)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from opencode_api.store._models import (
    CompactionState,
    DailyUsage,
    FileData,
    Message,
    MessagePage,
    MessageStatus,
    Owner,
    Question,
    QuestionStatus,
    Reservation,
    Session,
    SessionCost,
    SessionStatus,
    StepRecord,
    Todo,
)
from opencode_api.store._webhook_records import WebhookDelivery, WebhookStatus

Order = Literal["asc", "desc"]
# Session fields a PATCH may set back to null.
ClearableField = Literal["max_cost", "webhook_url"]


@runtime_checkable
class Store(Protocol):
    """Persistence for sessions and everything in them.

    Every method taking ``user_id`` scopes the call to that user when it is not None: a session of
    another user is simply not found (``None``/``False``/empty). IDs are made by the caller.
    Timestamps are timezone-aware UTC datetimes.
    """

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and apply pending schema migrations (safe when two processes start at once)."""

    async def close(self) -> None: ...

    # -- sessions ----------------------------------------------------------------------------
    async def create_session(self, session: Session) -> Session: ...

    async def get_session(
        self, session_id: str, *, user_id: str | None = None
    ) -> Session | None: ...

    async def list_sessions(
        self, *, user_id: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Session]:
        """Newest ``updated_at`` first."""

    async def update_session(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        title: str | None = None,
        provider_id: str | None = None,
        model_id: str | None = None,
        status: SessionStatus | None = None,
        max_cost: float | None = None,
        webhook_url: str | None = None,
        clear: Sequence[ClearableField] = (),
    ) -> Session | None:
        """Set the fields given (None leaves a field as it is), set those named in ``clear`` to
        null, and bump ``updated_at``."""

    async def delete_session(self, session_id: str, *, user_id: str | None = None) -> bool:
        """Delete the session with its messages, parts, todos, questions and compaction state."""

    # -- messages ----------------------------------------------------------------------------
    async def append_message(self, message: Message) -> Message:
        """Insert a message with its parts; the session's message_count and updated_at follow."""

    async def start_reply(self, question_id: str, reply: Message) -> Message:
        """A turn begins: the user message ``question_id`` becomes ``completed`` and the
        assistant's ``reply`` is inserted, in one transaction where the backend has them."""

    async def save_step(self, step: StepRecord) -> None:
        """Write one finished step atomically (see StepRecord); all or nothing."""

    async def delete_message(self, session_id: str, message_id: str) -> bool:
        """Delete one message of the session and its parts (the session's totals of cost and
        tokens keep what was spent); False when the session holds no such message."""

    async def get_message(self, message_id: str) -> Message | None: ...

    # -- files (API.md, "Richer input and output") -------------------------------------------
    async def put_files(self, files: Sequence[FileData]) -> None:
        """Store the bytes of the files a user message is about to refer to (written before
        ``append_message``; they belong to their session and go when it is deleted)."""

    async def get_files(self, session_id: str, file_ids: Sequence[str]) -> list[FileData]:
        """The session's stored files among ``file_ids`` (missing ones are left out)."""

    # -- branching (API.md, "Branching and editing") -----------------------------------------
    async def fork_session(
        self, source_id: str, fork: Session, *, upto: str | None = None
    ) -> Session | None:
        """Create ``fork`` (a new session record, ``forked_from`` set) holding copies, under new
        ids, of the source's visible messages up to and including ``upto`` (all when None) with
        their parts, and of its todos, files and compaction record; queued or running copies become
        ``interrupted``. The fork's cost totals start at zero. None when the source (of
        ``fork.user_id``) or ``upto`` among its visible messages does not exist."""

    async def revert_session(self, session_id: str, message_id: str | None) -> Session | None:
        """Hide ``message_id`` and every finished message after it (by (created_at, id)) from
        lists, forks and history, and record the revert point; ``None`` unhides them all. None
        when there is no such session or the message is not one of its messages."""

    async def commit_revert(self, session_id: str, from_message_id: str | None = None) -> int:
        """Delete the hidden messages for good and clear the revert point (with
        ``from_message_id``: hide that message and every finished one after it first); how
        many messages were deleted."""

    async def set_message_status(
        self, message_id: str, status: MessageStatus, *, error: dict[str, object] | None = None
    ) -> None: ...

    async def list_messages(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        order: Order = "asc",
        include_compacted: bool = True,
    ) -> MessagePage | None:
        """A page with parts; ``total_count`` is counted by the database. None: no such session.

        Ordered by (created_at, id), so a page is stable while new messages arrive.
        """

    async def mark_interrupted(self, *, live_since: datetime | None = None) -> int:
        """Mark messages left ``running`` or ``queued`` by a dead process ``interrupted``.

        ``live_since``: spare the turns of owners whose lease was renewed after that moment
        (other live processes); None marks every unfinished turn (and resets sessions left
        ``busy``), for a process that knows it is alone. Returns how many messages were marked.
        """

    async def interrupted_replies(self, *, since: datetime, limit: int = 1000) -> list[Message]:
        """Assistant messages marked ``interrupted`` (a dead process's turns), created at or
        after ``since``, oldest first, without their parts."""

    # -- turn ownership ------------------------------------------------------------------------
    async def claim_turns(self, owner: Owner) -> None:
        """Record or renew ``owner``'s lease; turns this handle stores as ``queued`` or
        ``running`` from now on belong to it."""

    async def release_turns(self) -> None:
        """Drop this handle's lease (a clean shutdown: its turns have ended)."""

    async def list_owners(self) -> list[Owner]: ...

    async def drop_owners(self, owner_ids: Sequence[str]) -> None:
        """Forget leases of owners known to be dead (their turns become orphans at once)."""

    # -- cost ----------------------------------------------------------------------------------
    async def get_session_cost(
        self, session_id: str, *, user_id: str | None = None
    ) -> SessionCost | None: ...

    # -- todos ---------------------------------------------------------------------------------
    async def get_todos(self, session_id: str) -> list[Todo]: ...

    async def set_todos(self, session_id: str, todos: Sequence[Todo]) -> None: ...

    # -- questions -----------------------------------------------------------------------------
    async def create_question(self, question: Question) -> Question: ...

    async def get_question(
        self, question_id: str, *, user_id: str | None = None
    ) -> Question | None: ...

    async def list_questions(
        self, *, session_id: str | None = None, user_id: str | None = None
    ) -> list[Question]:
        """Pending questions only, oldest first."""

    async def resolve_question(
        self, question_id: str, status: QuestionStatus, answers: list[list[str]] | None = None
    ) -> bool:
        """Move a pending question to a final status; False if it was not pending."""

    # -- compaction ----------------------------------------------------------------------------
    async def get_compaction_state(self, session_id: str) -> CompactionState: ...

    async def set_compaction_state(self, state: CompactionState) -> None: ...

    async def apply_compaction(
        self, session_id: str, summary: Message, compacted_ids: Sequence[str]
    ) -> None:
        """In one transaction: insert the summary message, flag ``compacted_ids`` compacted,
        bump compaction_count and last_compacted_at, clear last_error, status idle."""

    # -- per-user daily usage (quota) ------------------------------------------------------------
    async def reserve_usage(
        self,
        user_id: str,
        day: str,
        *,
        tokens: int,
        token_limit: int | None,
        request_limit: int | None,
    ) -> Reservation | None:
        """Atomically hold ``tokens`` and one request for the day if it keeps
        used + reserved within the limits (None = no limit); None when it would not."""

    async def settle_usage(
        self, reservation: Reservation, *, input_tokens: int, output_tokens: int
    ) -> None:
        """Replace the reservation by the real figures (counts the request)."""

    async def release_usage(self, reservation: Reservation) -> None:
        """Drop the reservation without counting anything (the turn never ran)."""

    async def get_daily_usage(self, user_id: str, day: str) -> DailyUsage: ...

    async def add_daily_cost(self, user_id: str, day: str, cost: float) -> float:
        """Add ``cost`` (USD) to the user's spending of the day, atomically; the new total."""

    # -- webhooks (API.md, "Webhooks") -------------------------------------------------------------
    async def add_webhook_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        """Store pending deliveries; one whose id is already stored is left as it is."""

    async def claim_webhook_deliveries(
        self, owner: str, *, limit: int, lease: float, now: datetime | None = None
    ) -> list[WebhookDelivery]:
        """Lease to ``owner`` for ``lease`` s up to ``limit`` pending deliveries due by ``now``
        that nobody holds (or whose lease ran out), oldest due first. Concurrent claims, from
        any process, never return the same delivery while its lease lasts."""

    async def finish_webhook_attempt(self, delivery: WebhookDelivery, owner: str) -> bool:
        """Store an attempt's outcome (status, attempts, last_*, next_attempt_at) and release
        the lease; False when ``owner`` no longer holds it (nothing changed)."""

    async def list_webhook_deliveries(
        self,
        *,
        session_id: str | None = None,
        status: WebhookStatus | None = None,
        user_id: str | None = None,
        limit: int | None = None,
    ) -> list[WebhookDelivery]:
        """Deliveries newest first, filtered by whichever of the arguments are given."""
