"""Compaction state in the SQL stores: its status row, and applying a summary in one transaction."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from opencode_api.store._models import CompactionState, Message, utcnow
from opencode_api.store._rows import RowMapping


class CompactionRecords(RowMapping):
    """Mixin of ``SqlStore``."""

    @abstractmethod
    async def _insert_message(self, conn: Any, message: Message) -> None:
        """Insert a message with its parts; the session's counters follow (``SqlStore``)."""

    async def get_compaction_state(self, session_id: str) -> CompactionState:
        async with self._point_read() as conn:
            row = await conn.fetchrow(
                "SELECT status, compaction_count, last_compacted_at, last_error "
                "FROM compaction WHERE session_id = ?",
                session_id,
            )
        if row is None:
            return CompactionState(session_id=session_id)
        return CompactionState(
            session_id=session_id,
            status=row["status"],
            compaction_count=row["compaction_count"],
            last_compacted_at=self._opt_ts(row["last_compacted_at"]),
            last_error=row["last_error"],
        )

    async def set_compaction_state(self, state: CompactionState) -> None:
        async with self._single_write() as conn:
            await conn.execute(
                "INSERT INTO compaction (session_id, status, compaction_count, "
                "last_compacted_at, last_error) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (session_id) DO UPDATE SET status = excluded.status, "
                "compaction_count = excluded.compaction_count, "
                "last_compacted_at = excluded.last_compacted_at, last_error = excluded.last_error",
                state.session_id,
                state.status,
                state.compaction_count,
                None if state.last_compacted_at is None else self._ts(state.last_compacted_at),
                state.last_error,
            )

    async def apply_compaction(
        self, session_id: str, summary: Message, compacted_ids: Sequence[str]
    ) -> None:
        async with self._write() as conn:
            await self._insert_message(conn, summary)
            if compacted_ids:
                await conn.execute(
                    "UPDATE messages SET compacted = TRUE WHERE session_id = ? "
                    f"AND id IN ({self._marks(len(compacted_ids))})",
                    session_id,
                    *compacted_ids,
                )
            await conn.execute(
                "INSERT INTO compaction (session_id, status, compaction_count, "
                "last_compacted_at, last_error) VALUES (?, 'idle', 1, ?, NULL) "
                "ON CONFLICT (session_id) DO UPDATE SET status = 'idle', "
                "compaction_count = compaction.compaction_count + 1, "
                "last_compacted_at = excluded.last_compacted_at, last_error = NULL",
                session_id,
                self._ts(utcnow()),
            )
