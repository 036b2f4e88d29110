"""The per-user daily quota ledger of the SQL stores: reserve, settle, release, read."""

from __future__ import annotations

from typing import Any

from opencode_api.store._models import DailyUsage, Reservation
from opencode_api.store._rows import SqlDialect, new_reservation_id


class QuotaLedger(SqlDialect):
    """Mixin of ``SqlStore``: each operation is one transaction (or one point read)."""

    async def reserve_usage(
        self,
        user_id: str,
        day: str,
        *,
        tokens: int,
        token_limit: int | None,
        request_limit: int | None,
    ) -> Reservation | None:
        # The conditional UPDATE is the atomic step: the row lock (Postgres) or the single writer
        # (SQLite) makes check-and-add one operation, so concurrent turns cannot both squeeze in.
        sql = (
            "UPDATE daily_usage SET reserved_tokens = reserved_tokens + ?, "
            "reserved_requests = reserved_requests + 1 WHERE user_id = ? AND day = ?"
        )
        args: list[Any] = [tokens, user_id, day]
        if token_limit is not None:
            sql += " AND input_tokens + output_tokens + reserved_tokens + ? <= ?"
            args += [tokens, token_limit]
        if request_limit is not None:
            sql += " AND requests + reserved_requests + 1 <= ?"
            args.append(request_limit)
        reservation = Reservation(
            id=new_reservation_id(), user_id=user_id, day=day, tokens=tokens, requests=1
        )
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO daily_usage (user_id, day) VALUES (?, ?) ON CONFLICT DO NOTHING",
                user_id,
                day,
            )
            if not await conn.execute(sql, *args):
                return None
            await conn.execute(
                "INSERT INTO usage_reservations (id, user_id, day, tokens, requests) "
                "VALUES (?, ?, ?, ?, ?)",
                reservation.id,
                user_id,
                day,
                tokens,
                reservation.requests,
            )
        return reservation

    async def _finish_reservation(
        self, r: Reservation, input_tokens: int, output_tokens: int, requests: int
    ) -> None:
        async with self._write() as conn:
            # Deleting the reservation row first makes a second settle/release a no-op.
            if not await conn.execute("DELETE FROM usage_reservations WHERE id = ?", r.id):
                return
            await conn.execute(
                "UPDATE daily_usage SET reserved_tokens = reserved_tokens - ?, "
                "reserved_requests = reserved_requests - ?, "
                "input_tokens = input_tokens + ?, output_tokens = output_tokens + ?, "
                "requests = requests + ? WHERE user_id = ? AND day = ?",
                r.tokens,
                r.requests,
                input_tokens,
                output_tokens,
                requests,
                r.user_id,
                r.day,
            )

    async def settle_usage(
        self, reservation: Reservation, *, input_tokens: int, output_tokens: int
    ) -> None:
        await self._finish_reservation(
            reservation, input_tokens, output_tokens, reservation.requests
        )

    async def release_usage(self, reservation: Reservation) -> None:
        await self._finish_reservation(reservation, 0, 0, 0)

    async def get_daily_usage(self, user_id: str, day: str) -> DailyUsage:
        async with self._point_read() as conn:
            row = await conn.fetchrow(
                "SELECT input_tokens, output_tokens, requests, reserved_tokens, "
                "reserved_requests, cost FROM daily_usage WHERE user_id = ? AND day = ?",
                user_id,
                day,
            )
        if row is None:
            return DailyUsage(user_id=user_id, day=day)
        return DailyUsage(user_id=user_id, day=day, **dict(row))

    async def add_daily_cost(self, user_id: str, day: str, cost: float) -> float:
        async with self._single_write() as conn:
            row = await conn.fetchrow(
                "INSERT INTO daily_usage (user_id, day, cost) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, day) DO UPDATE SET cost = daily_usage.cost + excluded.cost "
                "RETURNING cost",
                user_id,
                day,
                cost,
            )
        return float(row["cost"]) if row is not None else cost
