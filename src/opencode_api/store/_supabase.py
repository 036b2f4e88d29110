"""Supabase REST backend: PostgREST (postgrest-py, as supabase-py uses it) on the opencode_*
tables of sql/supabase.sql; multi-statement writes are SQL functions called with rpc()."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opencode_api.store._branch_records import fork_tag
from opencode_api.store._errors import StoreConflict, StoreError, StoreNotOpen
from opencode_api.store._leases import INTERRUPTED_ERROR
from opencode_api.store._models import (
    Message,
    MessagePage,
    MessageStatus,
    Owner,
    Part,
    Session,
    SessionCost,
    SessionStatus,
    StepRecord,
    Todo,
    utcnow,
)
from opencode_api.store._protocol import ClearableField, Order
from opencode_api.store._rows import cost_from_rows
from opencode_api.store._supabase_files import SupabaseFiles
from opencode_api.store._supabase_records import SupabaseRecords
from opencode_api.store._supabase_rows import (
    _COSTS,
    _MESSAGES,
    _PARTS,
    _SESSIONS,
    _TODOS,
    _message_from,
    _message_row,
    _part_from,
    _part_row,
    _session_from,
    _session_row,
    _ts,
)
from opencode_api.store._supabase_webhooks import SupabaseWebhooks

if TYPE_CHECKING:
    # postgrest/httpx are the optional "supabase" extra: imported when a SupabaseStore opens.
    import httpx
    from postgrest import AsyncPostgrestClient, AsyncRequestBuilder


class SupabaseStore(SupabaseRecords, SupabaseWebhooks, SupabaseFiles):
    """Sessions over Supabase's REST API.

    The store built from the service key (``SUPABASE_KEY``) sees every row. One built with a
    user's ``jwt`` and an open store's ``http_client`` acts as that user (row-level security
    applies) and shares the pool; it is cheap, so build one per request. The shared client's
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
        row = _session_row(session)
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
        max_cost: float | None = None,
        webhook_url: str | None = None,
        clear: Sequence[ClearableField] = (),
    ) -> Session | None:
        changes: dict[str, Any] = {"updated_at": _ts(utcnow())}
        for column, value in (
            ("title", title),
            ("provider_id", provider_id),
            ("model_id", model_id),
            ("status", status),
            ("max_cost", max_cost),
            ("webhook_url", webhook_url),
        ):
            if value is not None:
                changes[column] = value
        changes.update({column: None for column in clear})
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
    async def delete_message(self, session_id: str, message_id: str) -> bool:
        params = {"p_session_id": session_id, "p_message_id": message_id}
        return bool(await self._rpc("opencode_delete_message", params))

    # -- branching -----------------------------------------------------------------------------
    async def fork_session(
        self, source_id: str, fork: Session, *, upto: str | None = None
    ) -> Session | None:
        params = {
            "p_source": source_id,
            "p_fork": _session_row(fork),
            "p_upto": upto,
            "p_tag": fork_tag(fork.id),
            "p_user": fork.user_id,
        }
        copied = int(await self._rpc("opencode_fork_session", params))
        if copied < 0:
            return None
        await self._copy_files(source_id, fork.id, fork.user_id)
        return fork.model_copy(update={"message_count": copied})

    async def revert_session(self, session_id: str, message_id: str | None) -> Session | None:
        params = {"p_session_id": session_id, "p_message": message_id}
        if not await self._rpc("opencode_revert_session", params):
            return None
        return await self.get_session(session_id)

    async def commit_revert(self, session_id: str, from_message_id: str | None = None) -> int:
        params = {"p_session_id": session_id, "p_from": from_message_id}
        return int(await self._rpc("opencode_commit_revert", params))

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

    async def interrupted_replies(self, *, since: datetime, limit: int = 1000) -> list[Message]:
        query = (
            self._table(_MESSAGES)
            .select("*")
            .eq("status", "interrupted")
            .eq("role", "assistant")
            .gte("created_at", _ts(since))
            .order("created_at")
            .order("id")
            .limit(limit)
        )
        return [_message_from(r, []) for r in (await self._run(query)).data]

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
        query = query.neq("reverted", True)  # hidden by a revert
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
