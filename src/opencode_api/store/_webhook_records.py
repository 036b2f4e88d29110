"""Webhook deliveries: the record of one event for one target, and its queries in the SQL stores.

A delivery is stored before it is sent, so a restart or a crash loses none (at-least-once). A
sender claims due deliveries with a lease (``locked_by``/``locked_until``, set by one conditional
UPDATE), so several processes on one database never send the same delivery at the same time; a
claim that is never finished (its process died) runs out and the delivery is claimed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from opencode_api.store._models import utcnow
from opencode_api.store._rows import Row, SqlDialect

WebhookStatus = Literal["pending", "delivered", "failed"]

_COLUMNS = (
    "id, event, session_id, user_id, url, payload, status, attempts, last_status_code, "
    "last_error, next_attempt_at, created_at"
)


class WebhookDelivery(BaseModel):
    """One event for one target URL, and how its delivery went so far."""

    id: str  # also the ``webhook-id`` header: receivers drop duplicates by it
    event: str
    session_id: str
    user_id: str | None = None
    url: str
    # The exact body sent (fixed when the event happened; every attempt signs the same bytes).
    payload: str
    status: WebhookStatus = "pending"
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    # When it is due (pending only; None once delivered or failed).
    next_attempt_at: datetime | None = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)


class WebhookRecords(SqlDialect):
    """Mixin of ``SqlStore``."""

    def _delivery(self, r: Row) -> WebhookDelivery:
        return WebhookDelivery(
            id=r["id"],
            event=r["event"],
            session_id=r["session_id"],
            user_id=r["user_id"],
            url=r["url"],
            payload=r["payload"],
            status=r["status"],
            attempts=r["attempts"],
            last_status_code=r["last_status_code"],
            last_error=r["last_error"],
            next_attempt_at=self._opt_ts(r["next_attempt_at"]),
            created_at=self._from_ts(r["created_at"]),
        )

    async def add_webhook_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        if not deliveries:
            return
        rows = [
            (
                d.id,
                d.event,
                d.session_id,
                d.user_id,
                d.url,
                d.payload,
                d.status,
                d.attempts,
                d.last_status_code,
                d.last_error,
                None if d.next_attempt_at is None else self._ts(d.next_attempt_at),
                self._ts(d.created_at),
            )
            for d in deliveries
        ]
        # ON CONFLICT DO NOTHING: a write retried after its commit was lost adds nothing twice.
        async with self._write() as conn:
            await conn.executemany(
                f"INSERT INTO webhook_deliveries ({_COLUMNS}) VALUES "
                f"({self._marks(12)}) ON CONFLICT (id) DO NOTHING",
                rows,
            )

    async def claim_webhook_deliveries(
        self, owner: str, *, limit: int, lease: float, now: datetime | None = None
    ) -> list[WebhookDelivery]:
        now = now or utcnow()
        at, until = self._ts(now), self._ts(now + timedelta(seconds=lease))
        # The conditions are repeated outside the subquery: on PostgreSQL a row another
        # transaction claimed meanwhile is re-checked against them after its lock is released.
        async with self._write() as conn:
            rows = await conn.fetch(
                "UPDATE webhook_deliveries SET locked_by = ?, locked_until = ? "
                "WHERE status = 'pending' AND (locked_until IS NULL OR locked_until <= ?) "
                "AND id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' "
                "AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until <= ?) "
                f"ORDER BY next_attempt_at, id LIMIT ?) RETURNING {_COLUMNS}",
                owner,
                until,
                at,
                at,
                at,
                limit,
            )
        found = [self._delivery(r) for r in rows]
        found.sort(key=lambda d: (d.next_attempt_at or d.created_at, d.id))
        return found

    async def finish_webhook_attempt(self, delivery: WebhookDelivery, owner: str) -> bool:
        async with self._single_write() as conn:
            changed: int = await conn.execute(
                "UPDATE webhook_deliveries SET status = ?, attempts = ?, last_status_code = ?, "
                "last_error = ?, next_attempt_at = ?, locked_by = NULL, locked_until = NULL "
                "WHERE id = ? AND locked_by = ?",
                delivery.status,
                delivery.attempts,
                delivery.last_status_code,
                delivery.last_error,
                None if delivery.next_attempt_at is None else self._ts(delivery.next_attempt_at),
                delivery.id,
                owner,
            )
        return changed > 0

    async def list_webhook_deliveries(
        self,
        *,
        session_id: str | None = None,
        status: WebhookStatus | None = None,
        user_id: str | None = None,
        limit: int | None = None,
    ) -> list[WebhookDelivery]:
        sql = f"SELECT {_COLUMNS} FROM webhook_deliveries WHERE 1 = 1"
        args: list[object] = []
        for column, value in (("session_id", session_id), ("status", status), ("user_id", user_id)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        sql += " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        async with self._read() as conn:
            rows = await conn.fetch(sql, *args)
        return [self._delivery(r) for r in rows]
