"""Budgets (API.md "Budgets"): a session's ``max_cost`` and a user's ``DAILY_COST_LIMIT``.

Before a turn: refused (429 ``budget_exceeded``) when either is spent. During it: after each step
the turn's spending is compared with what the session had left, and the step's cost is added to
the user's day (one atomic statement that returns the new total); a turn that crossed a limit ends
there with ``stop_reason: "budget"``. Concurrent turns of one user can therefore overshoot the
daily limit by at most the step each of them was running when it was crossed; a session's turns
run one at a time, so its ``max_cost`` is overshot by at most one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from opencode_api.actors._errors import BudgetExceededError
from opencode_api.settings import Settings
from opencode_api.store import Session, Store


@dataclass(frozen=True, slots=True)
class TurnBudget:
    """What one turn may spend: USD left of the session's ``max_cost``, and whose day counts."""

    session_left: float | None = None
    user_id: str | None = None
    day: str | None = None
    daily_limit: float | None = None


class BudgetPolicy:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._daily_limit = settings.daily_cost_limit

    async def admit(self, session: Session, user_id: str | None) -> TurnBudget | None:
        """The turn's budget (None: nothing limits it); ``BudgetExceededError`` when spent.

        ``session`` may be a cached copy: its ``max_cost`` is current (updates refresh the
        cache), its spending is not, so the spending is read again when a limit applies."""
        left: float | None = None
        if session.max_cost is not None:
            fresh = await self._store.get_session(session.id)
            spent = fresh.total_cost if fresh is not None else session.total_cost
            if spent >= session.max_cost:
                raise BudgetExceededError(
                    f"the session's budget of {session.max_cost} USD is spent",
                    spent=spent,
                    limit=session.max_cost,
                )
            left = session.max_cost - spent
        limit = self._daily_limit
        if limit is None or user_id is None:
            return None if left is None else TurnBudget(session_left=left)
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        usage = await self._store.get_daily_usage(user_id, day)
        if usage.cost >= limit:
            raise BudgetExceededError(
                f"the daily budget of {limit} USD is spent", spent=usage.cost, limit=limit
            )
        return TurnBudget(session_left=left, user_id=user_id, day=day, daily_limit=limit)

    async def spent(self, budget: TurnBudget, turn_cost: float, step_cost: float) -> bool:
        """After a step: count its cost to the user's day; whether the turn must stop now."""
        over = budget.session_left is not None and turn_cost >= budget.session_left
        if budget.user_id is not None and budget.day is not None and step_cost > 0:
            total = await self._store.add_daily_cost(budget.user_id, budget.day, step_cost)
            over = over or (budget.daily_limit is not None and total >= budget.daily_limit)
        return over
