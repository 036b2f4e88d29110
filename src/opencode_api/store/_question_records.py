"""The question tool's records in the SQL stores: ask, look up, list pending, resolve."""

from __future__ import annotations

from opencode_api.store._models import Question, QuestionStatus
from opencode_api.store._rows import RowMapping, dump_json


class QuestionRecords(RowMapping):
    """Mixin of ``SqlStore``."""

    async def create_question(self, question: Question) -> Question:
        async with self._single_write() as conn:
            row = await conn.fetchrow(
                "INSERT INTO questions (id, session_id, message_id, tool_call_id, questions, "
                "created_at, status, answers, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                "COALESCE(?, (SELECT user_id FROM sessions WHERE id = ?))) RETURNING *",
                question.id,
                question.session_id,
                question.message_id,
                question.tool_call_id,
                dump_json([q.model_dump() for q in question.questions]),
                self._ts(question.created_at),
                question.status,
                dump_json(question.answers),
                question.user_id,
                question.session_id,
            )
        assert row is not None  # INSERT ... RETURNING yields its row or raises
        return self._question(row)

    async def get_question(
        self, question_id: str, *, user_id: str | None = None
    ) -> Question | None:
        sql, args = "SELECT * FROM questions WHERE id = ?", [question_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        async with self._point_read() as conn:
            row = await conn.fetchrow(sql, *args)
        return None if row is None else self._question(row)

    async def list_questions(
        self, *, session_id: str | None = None, user_id: str | None = None
    ) -> list[Question]:
        sql, args = "SELECT * FROM questions WHERE status = 'pending'", []
        if session_id is not None:
            sql += " AND session_id = ?"
            args.append(session_id)
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        async with self._read() as conn:
            rows = await conn.fetch(sql + " ORDER BY created_at, id", *args)
        return [self._question(r) for r in rows]

    async def resolve_question(
        self, question_id: str, status: QuestionStatus, answers: list[list[str]] | None = None
    ) -> bool:
        async with self._single_write() as conn:
            changed: int = await conn.execute(
                "UPDATE questions SET status = ?, answers = ? WHERE id = ? AND status = 'pending'",
                status,
                dump_json(answers),
                question_id,
            )
        return changed > 0
