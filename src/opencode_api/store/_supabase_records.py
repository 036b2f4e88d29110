"""Questions, compaction state and the daily quota ledger over Supabase's REST API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opencode_api.store._models import (
    CompactionState,
    DailyUsage,
    Message,
    Question,
    QuestionStatus,
    Reservation,
)
from opencode_api.store._rows import new_reservation_id
from opencode_api.store._supabase_rows import (
    _COMPACTION,
    _QUESTIONS,
    _USAGE,
    _message_row,
    _part_row,
    _ts,
)

if TYPE_CHECKING:
    from postgrest import AsyncRequestBuilder


class SupabaseRecords:
    """Mixin of ``SupabaseStore``: it supplies the table builder and the request runners."""

    def _table(self, name: str) -> AsyncRequestBuilder:
        raise NotImplementedError

    async def _run(self, builder: Any) -> Any:
        raise NotImplementedError

    async def _rpc(self, name: str, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    async def _session_user(self, session_id: str) -> str | None:
        raise NotImplementedError

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

    async def add_daily_cost(self, user_id: str, day: str, cost: float) -> float:
        params = {"p_user_id": user_id, "p_day": day, "p_cost": cost}
        return float(await self._rpc("opencode_add_daily_cost", params))
