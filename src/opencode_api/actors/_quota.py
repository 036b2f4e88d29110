"""Per-user daily quota: a turn reserves before it starts and settles to its real usage after."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from opencode_api.actors._errors import QuotaExceededError
from opencode_api.settings import Settings
from opencode_api.store import Reservation, Store, Usage


def _utc_day(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d")


def _next_utc_midnight() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


class QuotaPolicy:
    """Per-user daily limits, enforced with the store's reserve-then-settle pair."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self.token_limit = settings.daily_token_limit
        self.request_limit = settings.daily_request_limit
        self.default_reservation = settings.quota_reserve_tokens

    @property
    def enabled(self) -> bool:
        return self.token_limit is not None or self.request_limit is not None

    async def reserve(self, user_id: str | None, max_tokens: int | None) -> Reservation | None:
        if not self.enabled or user_id is None:
            return None
        tokens = max_tokens or self.default_reservation
        if self.token_limit is not None:
            tokens = min(tokens, self.token_limit)
        day = _utc_day()
        reservation = await self._store.reserve_usage(
            user_id,
            day,
            tokens=tokens,
            token_limit=self.token_limit,
            request_limit=self.request_limit,
        )
        if reservation is None:
            usage = await self._store.get_daily_usage(user_id, day)
            raise QuotaExceededError(
                "daily usage quota exceeded",
                usage={
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "total_tokens": usage.total_tokens,
                    "requests": usage.requests,
                },
                limits={"daily_tokens": self.token_limit, "daily_requests": self.request_limit},
                resets_at=_next_utc_midnight(),
            )
        return reservation

    def settle(self, reservation: Reservation, usage: Usage) -> Callable[[], Awaitable[None]]:
        """The write that ends a turn's reservation: settled to what it used, or released when
        it used nothing (the turn never reached the model)."""
        store = self._store
        if usage.total_tokens:
            return lambda: store.settle_usage(
                reservation, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens
            )
        return lambda: store.release_usage(reservation)
