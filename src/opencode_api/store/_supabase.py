"""Supabase REST backend: PostgREST (postgrest-py, as supabase-py uses it) on the opencode_*
tables of sql/supabase.sql; multi-statement writes are SQL functions called with rpc()."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opencode_api.store._errors import StoreConflict, StoreError, StoreNotOpen
from opencode_api.store._leases import INTERRUPTED_ERROR
from opencode_api.store._models import (
    CompactionState,
    DailyUsage,
    Message,
    MessagePage,
    MessageStatus,
    Owner,
    Part,
    Question,
    QuestionStatus,
    Reservation,
    Session,
    SessionCost,
    SessionStatus,
    StepRecord,
    Todo,
    utcnow,
)
from opencode_api.store._protocol import Order
from opencode_api.store._rows import cost_from_rows, new_reservation_id

if TYPE_CHECKING:
    # postgrest/httpx are the optional "supabase" extra: imported when a SupabaseStore opens.
    import httpx
    from postgrest import AsyncPostgrestClient, AsyncRequestBuilder

_SESSIONS = "opencode_sessions"
_MESSAGES = "opencode_messages"
_PARTS = "opencode_message_parts"
_COSTS = "opencode_session_costs"
_TODOS = "opencode_todos"
_QUESTIONS = "opencode_questions"
_COMPACTION = "opencode_compaction"
_USAGE = "opencode_usage"


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _message_row(m: Message) -> dict[str, Any]:
    row = m.model_dump(mode="json", exclude={"parts"})
    row["created_at"] = _ts(m.created_at)
    row["step_count"] = 0
    return row


def _part_row(p: Part) -> dict[str, Any]:
    row = p.model_dump(mode="json")
    row["created_at"] = _ts(p.created_at)
    return row


def _session_from(row: dict[str, Any]) -> Session:
    return Session.model_validate(row)


def _part_from(row: dict[str, Any]) -> Part:
    row = {k: v for k, v in row.items() if k != "user_id"}
    return Part.model_validate(row)


def _message_from(row: dict[str, Any], parts: list[Part]) -> Message:
    row = {k: v for k, v in row.items() if k not in ("user_id", "step_count")}
    return Message.model_validate({**row, "parts": parts})


class SupabaseStore:
    """Sessions over Supabase's REST API.

    The store built from the service key (``SUPABASE_KEY``) sees every row. ``for_user(jwt)``
    returns a store acting as that user (row-level security applies) that shares this store's
    HTTP connection pool; it is cheap, so build one per request. The shared client's
    ``auth()`` is never used: it would change the headers of every concurrent request.
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 30.0,
        max_connections: int = 100,
        http_client: httpx.AsyncClient | None = None,
        jwt: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._key = key
        self._jwt = jwt
        self._timeout = timeout
        self._max_connections = max_connections
        self._http = http_client
        self._owns_http = http_client is None
        self._client: AsyncPostgrestClient | None = None
        if http_client is not None:
            self._client = self._make_client(http_client)

    def __repr__(self) -> str:
        return f"SupabaseStore({self.url!r}{', for a user' if self._jwt else ''})"

    def _make_client(self, http: httpx.AsyncClient) -> AsyncPostgrestClient:
        from postgrest import AsyncPostgrestClient

        headers = {
            "apikey": self._key,
            "Authorization": f"Bearer {self._jwt or self._key}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        return AsyncPostgrestClient(f"{self.url}/rest/v1", headers=headers, http_client=http)

    def for_user(self, jwt: str) -> SupabaseStore:
        """A store acting for the user whose JWT this is, sharing this store's connections."""
        if self._http is None:
            raise StoreNotOpen("SupabaseStore is not open: await store.open() first")
        return SupabaseStore(
            self.url, self._key, timeout=self._timeout, http_client=self._http, jwt=jwt
        )

    # -- lifecycle -------------------------------------------------------------------------------
    async def open(self) -> None:
        """Create the HTTP pool. The schema is sql/supabase.sql, applied once by the user."""
        if self._client is not None:
            return
        import httpx

        self._http = httpx.AsyncClient(
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=self._max_connections),
            follow_redirects=True,
        )
        self._client = self._make_client(self._http)

    async def close(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None and self._owns_http:
            await http.aclose()

    def _table(self, name: str) -> AsyncRequestBuilder:
        if self._client is None:
            raise StoreNotOpen("SupabaseStore is not open: await store.open() first")
        return self._client.from_(name)

    async def _run(self, builder: Any) -> Any:
        """Execute a request; PostgREST and transport errors become StoreError."""
        import httpx
        from postgrest import APIError

        try:
            return await builder.execute()
        except APIError as exc:
            code = str(exc.code or "")
            if code.startswith("23"):  # integrity_constraint_violation class
                raise StoreConflict(f"Supabase: {exc.message}") from exc
            raise StoreError(f"Supabase: {exc.code} {exc.message}") from exc
        except httpx.HTTPError as exc:
            raise StoreError(f"Supabase: {exc!r}") from exc

    async def _rpc(self, name: str, params: dict[str, Any]) -> Any:
        if self._client is None:
            raise StoreNotOpen("SupabaseStore is not open: await store.open() first")
        return (await self._run(self._client.rpc(name, params))).data

    async def _session_user(self, session_id: str) -> str | None:
        rows = (await self._run(self._table(_SESSIONS).select("user_id").eq("id", session_id))).data
        return rows[0]["user_id"] if rows else None

    async def _session_exists(self, session_id: str, user_id: str | None) -> bool:
        query = self._table(_SESSIONS).select("id").eq("id", session_id)
        if user_id is not None:
            query = query.eq("user_id", user_id)
        return bool((await self._run(query)).data)

    # -- sessions ------------------------------------------------------------------------------
    async def create_session(self, session: Session) -> Session:
        row = session.model_dump(mode="json")
        row["created_at"] = _ts(session.created_at)
        row["updated_at"] = _ts(session.updated_at)
        await self._run(self._table(_SESSIONS).insert(row))
        return session

    async def get_session(self, session_id: str, *, user_id: str | None = None) -> Session | None:
        query = self._table(_SESSIONS).select("*").eq("id", session_id)
        if user_id is not None:
            query = query.eq("user_id", user_id)
        rows = (await self._run(query)).data
        return _session_from(rows[0]) if rows else None

    async def list_sessions(
        self, *, user_id: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Session]:
        query = self._table(_SESSIONS).select("*")
        if user_id is not None:
            query = query.eq("user_id", user_id)
        query = query.order("updated_at", desc=True).order("id", desc=True)
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        return [_session_from(r) for r in (await self._run(query)).data]

    async def update_session(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        title: str | None = None,
        provider_id: str | None = None,
        model_id: str | None = None,
        status: SessionStatus | None = None,
    ) -> Session | None:
        changes: dict[str, Any] = {"updated_at": _ts(utcnow())}
        for column, value in (
            ("title", title),
            ("provider_id", provider_id),
            ("model_id", model_id),
            ("status", status),
        ):
            if value is not None:
                changes[column] = value
        query = self._table(_SESSIONS).update(changes).eq("id", session_id)
        if user_id is not None:
            query = query.eq("user_id", user_id)
        rows = (await self._run(query)).data
        return _session_from(rows[0]) if rows else None

    async def delete_session(self, session_id: str, *, user_id: str | None = None) -> bool:
        query = self._table(_SESSIONS).delete().eq("id", session_id)
        if user_id is not None:
            query = query.eq("user_id", user_id)
        return bool((await self._run(query)).data)

    # -- messages ------------------------------------------------------------------------------
    async def append_message(self, message: Message) -> Message:
        await self._rpc(
            "opencode_append_message",
            {"p_message": _message_row(message), "p_parts": [_part_row(p) for p in message.parts]},
        )
        return message

    async def start_reply(self, question_id: str, reply: Message) -> Message:
        # Two requests: PostgREST has no transaction across them (a reply stored without its
        # question marked completed reads as a turn that was interrupted at its start).
        await self.set_message_status(question_id, "completed")
        return await self.append_message(reply)

    async def save_step(self, step: StepRecord) -> None:
        await self._rpc(
            "opencode_save_step",
            {
                "p_message": _message_row(step.message),
                "p_parts": [_part_row(p) for p in step.parts],
                "p_usage": step.usage_delta.model_dump(),
                "p_cost": step.cost_delta,
            },
        )

    async def upsert_part(self, part: Part) -> None:
        await self._rpc("opencode_upsert_parts", {"p_parts": [_part_row(part)]})

    async def _parts_of(self, message_ids: Sequence[str]) -> dict[str, list[Part]]:
        by_message: dict[str, list[Part]] = {mid: [] for mid in message_ids}
        if message_ids:
            query = (
                self._table(_PARTS)
                .select("*")
                .in_("message_id", list(message_ids))
                .order("message_id")
                .order("created_at")
                .order("id")
            )
            for row in (await self._run(query)).data:
                by_message[row["message_id"]].append(_part_from(row))
        return by_message

    async def get_message(self, message_id: str) -> Message | None:
        rows = (await self._run(self._table(_MESSAGES).select("*").eq("id", message_id))).data
        if not rows:
            return None
        parts = await self._parts_of([message_id])
        return _message_from(rows[0], parts[message_id])

    async def set_message_status(
        self, message_id: str, status: MessageStatus, *, error: dict[str, object] | None = None
    ) -> None:
        changes: dict[str, Any] = {"status": status}
        if error is not None:
            changes["error"] = error
        await self._run(self._table(_MESSAGES).update(changes).eq("id", message_id))

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
        from postgrest.types import CountMethod

        if not await self._session_exists(session_id, user_id):
            return None
        desc = order == "desc"
        query = (
            self._table(_MESSAGES).select("*", count=CountMethod.exact).eq("session_id", session_id)
        )
        if not include_compacted:
            query = query.eq("compacted", False)
        query = query.order("created_at", desc=desc).order("id", desc=desc)
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        response = await self._run(query)
        rows: list[dict[str, Any]] = response.data
        parts = await self._parts_of([r["id"] for r in rows])
        return MessagePage(
            messages=[_message_from(r, parts[r["id"]]) for r in rows],
            total_count=int(response.count or 0),
            limit=limit,
            offset=offset,
        )

    # Turn ownership: the REST backend has no lease table (the replaced service's schema), so its
    # recovery stays global: run one server process per Supabase project, or use the PostgreSQL
    # backend with the project's connection string for several.
    async def claim_turns(self, owner: Owner) -> None:
        return None

    async def release_turns(self) -> None:
        return None

    async def list_owners(self) -> list[Owner]:
        return []

    async def drop_owners(self, owner_ids: Sequence[str]) -> None:
        return None

    async def mark_interrupted(self, *, live_since: datetime | None = None) -> int:
        if live_since is not None:
            return 0  # cannot tell a live process's turns from a dead one's: mark none
        return int(await self._rpc("opencode_mark_interrupted", {"p_error": INTERRUPTED_ERROR}))

    # -- cost ----------------------------------------------------------------------------------
    async def get_session_cost(
        self, session_id: str, *, user_id: str | None = None
    ) -> SessionCost | None:
        if not await self._session_exists(session_id, user_id):
            return None
        query = (
            self._table(_COSTS)
            .select("*")
            .eq("session_id", session_id)
            .order("provider_id")
            .order("model_id")
        )
        return cost_from_rows(session_id, (await self._run(query)).data)

    # -- todos ---------------------------------------------------------------------------------
    async def get_todos(self, session_id: str) -> list[Todo]:
        rows = (
            await self._run(self._table(_TODOS).select("todos").eq("session_id", session_id))
        ).data
        return [Todo.model_validate(t) for t in rows[0]["todos"]] if rows else []

    async def set_todos(self, session_id: str, todos: Sequence[Todo]) -> None:
        row = {
            "session_id": session_id,
            "user_id": await self._session_user(session_id),
            "todos": [t.model_dump() for t in todos],
        }
        await self._run(self._table(_TODOS).upsert(row, on_conflict="session_id"))

    # -- questions -----------------------------------------------------------------------------
    async def create_question(self, question: Question) -> Question:
        if question.user_id is None:
            question = question.model_copy(
                update={"user_id": await self._session_user(question.session_id)}
            )
        row = question.model_dump(mode="json")
        row["created_at"] = _ts(question.created_at)
        await self._run(self._table(_QUESTIONS).insert(row))
        return question

    async def get_question(
        self, question_id: str, *, user_id: str | None = None
    ) -> Question | None:
        query = self._table(_QUESTIONS).select("*").eq("id", question_id)
        if user_id is not None:
            query = query.eq("user_id", user_id)
        rows = (await self._run(query)).data
        return Question.model_validate(rows[0]) if rows else None

    async def list_questions(
        self, *, session_id: str | None = None, user_id: str | None = None
    ) -> list[Question]:
        query = self._table(_QUESTIONS).select("*").eq("status", "pending")
        if session_id is not None:
            query = query.eq("session_id", session_id)
        if user_id is not None:
            query = query.eq("user_id", user_id)
        query = query.order("created_at").order("id")
        return [Question.model_validate(r) for r in (await self._run(query)).data]

    async def resolve_question(
        self, question_id: str, status: QuestionStatus, answers: list[list[str]] | None = None
    ) -> bool:
        query = (
            self._table(_QUESTIONS)
            .update({"status": status, "answers": answers})
            .eq("id", question_id)
            .eq("status", "pending")
        )
        return bool((await self._run(query)).data)

    # -- compaction ----------------------------------------------------------------------------
    async def get_compaction_state(self, session_id: str) -> CompactionState:
        query = self._table(_COMPACTION).select("*").eq("session_id", session_id)
        rows = (await self._run(query)).data
        if not rows:
            return CompactionState(session_id=session_id)
        row = {k: v for k, v in rows[0].items() if k != "user_id"}
        return CompactionState.model_validate(row)

    async def set_compaction_state(self, state: CompactionState) -> None:
        row = state.model_dump(mode="json")
        if state.last_compacted_at is not None:
            row["last_compacted_at"] = _ts(state.last_compacted_at)
        row["user_id"] = await self._session_user(state.session_id)
        await self._run(self._table(_COMPACTION).upsert(row, on_conflict="session_id"))

    async def apply_compaction(
        self, session_id: str, summary: Message, compacted_ids: Sequence[str]
    ) -> None:
        await self._rpc(
            "opencode_apply_compaction",
            {
                "p_session_id": session_id,
                "p_summary": _message_row(summary),
                "p_parts": [_part_row(p) for p in summary.parts],
                "p_compacted_ids": list(compacted_ids),
            },
        )

    # -- per-user daily usage --------------------------------------------------------------------
    async def reserve_usage(
        self,
        user_id: str,
        day: str,
        *,
        tokens: int,
        token_limit: int | None,
        request_limit: int | None,
    ) -> Reservation | None:
        reservation = Reservation(
            id=new_reservation_id(), user_id=user_id, day=day, tokens=tokens, requests=1
        )
        granted = await self._rpc(
            "opencode_reserve_usage",
            {
                "p_id": reservation.id,
                "p_user_id": user_id,
                "p_day": day,
                "p_tokens": tokens,
                "p_token_limit": token_limit,
                "p_request_limit": request_limit,
            },
        )
        return reservation if granted is True else None

    async def settle_usage(
        self, reservation: Reservation, *, input_tokens: int, output_tokens: int
    ) -> None:
        await self._rpc(
            "opencode_finish_reservation",
            {
                "p_id": reservation.id,
                "p_input_tokens": input_tokens,
                "p_output_tokens": output_tokens,
                "p_count": True,
            },
        )

    async def release_usage(self, reservation: Reservation) -> None:
        await self._rpc(
            "opencode_finish_reservation",
            {"p_id": reservation.id, "p_input_tokens": 0, "p_output_tokens": 0, "p_count": False},
        )

    async def get_daily_usage(self, user_id: str, day: str) -> DailyUsage:
        query = self._table(_USAGE).select("*").eq("user_id", user_id).eq("day", day)
        rows = (await self._run(query)).data
        return DailyUsage.model_validate(rows[0]) if rows else DailyUsage(user_id=user_id, day=day)
