"""``QuestionAnswers``: a user's answer to a question, delivered to the turn that waits for it."""

from __future__ import annotations

from typing import Literal

from opencode_api.actors._errors import NotFoundError
from opencode_api.actors._messages import AnswerQuestion
from opencode_api.actors._placement import Placement
from opencode_api.store import Store


class QuestionAnswers:
    """Answers go through the session's actor (its turn is waiting on them); when no actor is
    live (the turn ended, the process restarted) the answer is recorded in the store anyway."""

    def __init__(self, store: Store, placement: Placement, timeout: float) -> None:
        self._store = store
        self._placement = placement
        self._timeout = timeout

    async def answer(
        self,
        question_id: str,
        answers: list[list[str]] | None,
        *,
        rejected: bool,
        user_id: str | None,
    ) -> None:
        question = await self._store.get_question(question_id, user_id=user_id)
        if question is None or question.status != "pending":
            raise NotFoundError("question", question_id)
        ref = self._placement.live(question.session_id)
        handled = False
        if ref is not None:
            message = AnswerQuestion(question_id, answers=answers, rejected=rejected)
            handled = bool(await ref.ask_control(message, timeout=self._timeout))
        if not handled:
            status: Literal["answered", "rejected"] = "rejected" if rejected else "answered"
            if not await self._store.resolve_question(question_id, status, answers):
                raise NotFoundError("question", question_id)
