"""The Supabase REST backend's tables and its rows as JSON (PostgREST speaks JSON, not SQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opencode_api.store._models import Message, Part, Session

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


def _session_row(s: Session) -> dict[str, Any]:
    row = s.model_dump(mode="json", exclude={"revert"})
    row["revert_message_id"] = None if s.revert is None else s.revert.message_id
    row["created_at"] = _ts(s.created_at)
    row["updated_at"] = _ts(s.updated_at)
    return row


def _session_from(row: dict[str, Any]) -> Session:
    revert = row.get("revert_message_id")
    row = {k: v for k, v in row.items() if k != "revert_message_id"}
    return Session.model_validate(
        {**row, "revert": None if revert is None else {"message_id": revert}}
    )


def _part_from(row: dict[str, Any]) -> Part:
    row = {k: v for k, v in row.items() if k != "user_id"}
    return Part.model_validate(row)


def _message_from(row: dict[str, Any], parts: list[Part]) -> Message:
    row = {k: v for k, v in row.items() if k not in ("user_id", "step_count", "reverted")}
    return Message.model_validate({**row, "parts": parts})
