"""Webhook deliveries over Supabase's REST API (the table and functions of sql/supabase.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from opencode_api.store._models import utcnow
from opencode_api.store._supabase_rows import _from_ts, _ts
from opencode_api.store._webhook_records import WebhookDelivery, WebhookStatus

if TYPE_CHECKING:
    from postgrest import AsyncRequestBuilder

_DELIVERIES = "opencode_webhook_deliveries"


def _delivery_row(d: WebhookDelivery) -> dict[str, Any]:
    row = d.model_dump(mode="json")
    row["next_attempt_at"] = None if d.next_attempt_at is None else _ts(d.next_attempt_at)
    row["created_at"] = _ts(d.created_at)
    return row


def _delivery_from(row: dict[str, Any]) -> WebhookDelivery:
    data = {k: v for k, v in row.items() if k not in ("locked_by", "locked_until")}
    due = data.get("next_attempt_at")
    data["next_attempt_at"] = None if due is None else _from_ts(due)
    data["created_at"] = _from_ts(data["created_at"])
    return WebhookDelivery.model_validate(data)


class SupabaseWebhooks:
    """Mixin of ``SupabaseStore``: it supplies the table builder and the request runners."""

    def _table(self, name: str) -> AsyncRequestBuilder:
        raise NotImplementedError

    async def _run(self, builder: Any) -> Any:
        raise NotImplementedError

    async def _rpc(self, name: str, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    async def add_webhook_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        if deliveries:
            rows = [_delivery_row(d) for d in deliveries]
            await self._rpc("opencode_add_webhook_deliveries", {"p_rows": rows})

    async def claim_webhook_deliveries(
        self, owner: str, *, limit: int, lease: float, now: datetime | None = None
    ) -> list[WebhookDelivery]:
        now = now or utcnow()
        rows = await self._rpc(
            "opencode_claim_webhook_deliveries",
            {
                "p_owner": owner,
                "p_now": _ts(now),
                "p_until": _ts(now + timedelta(seconds=lease)),
                "p_limit": limit,
            },
        )
        found = [_delivery_from(r) for r in rows or []]
        found.sort(key=lambda d: (d.next_attempt_at or d.created_at, d.id))
        return found

    async def finish_webhook_attempt(self, delivery: WebhookDelivery, owner: str) -> bool:
        changes = {
            "status": delivery.status,
            "attempts": delivery.attempts,
            "last_status_code": delivery.last_status_code,
            "last_error": delivery.last_error,
            "next_attempt_at": (
                None if delivery.next_attempt_at is None else _ts(delivery.next_attempt_at)
            ),
            "locked_by": None,
            "locked_until": None,
        }
        query = (
            self._table(_DELIVERIES).update(changes).eq("id", delivery.id).eq("locked_by", owner)
        )
        return bool((await self._run(query)).data)

    async def list_webhook_deliveries(
        self,
        *,
        session_id: str | None = None,
        status: WebhookStatus | None = None,
        user_id: str | None = None,
        limit: int | None = None,
    ) -> list[WebhookDelivery]:
        query = self._table(_DELIVERIES).select("*")
        for column, value in (("session_id", session_id), ("status", status), ("user_id", user_id)):
            if value is not None:
                query = query.eq(column, value)
        query = query.order("created_at", desc=True).order("id", desc=True)
        if limit is not None:
            query = query.limit(limit)
        return [_delivery_from(r) for r in (await self._run(query)).data]
