"""Forks and reverts in the SQL stores (API.md, "Branching and editing").

A fork copies a session's visible messages with one ``INSERT ... SELECT`` for the messages and one
for their parts, whatever their number. A copy's id is its original's first 30 characters (a
prefix and a ULID) followed by the fork's tag, so ids stay unique and as sortable as before.

A revert flags the messages it hides (``messages.reverted``): lists, forks and the model's history
skip them; ``commit_revert`` (the next turn) deletes them for good, and the files only they
named.
"""

from __future__ import annotations

from typing import Any

from opencode_api.store._file_records import FileRecords
from opencode_api.store._models import Session, utcnow
from opencode_api.store._rows import SESSION_COLUMNS, Conn

# What stays of an id in a copy: "msg_" and a 26-character ULID (a copy's tag is dropped).
ID_STEM = 30
# Messages still queued or running are a turn's, never history a revert hides or deletes.
_FINISHED = "status NOT IN ('queued', 'running')"


def fork_tag(fork_id: str) -> str:
    """The suffix a fork's copies carry: the end of the fork's id (random, unique per fork)."""
    return "_" + fork_id[-10:]


class BranchRecords(FileRecords):
    """Mixin of ``SqlStore``."""

    async def fork_session(
        self, source_id: str, fork: Session, *, upto: str | None = None
    ) -> Session | None:
        tag = fork_tag(fork.id)
        async with self._write() as conn:
            sql, args = "SELECT id FROM sessions WHERE id = ?", [source_id]
            if fork.user_id is not None:
                sql += " AND user_id = ?"
                args.append(fork.user_id)
            if await conn.fetchrow(sql, *args) is None:
                return None
            where, cut = "session_id = ? AND reverted = FALSE", [source_id]
            if upto is not None:
                row = await conn.fetchrow(
                    "SELECT created_at FROM messages WHERE id = ? AND " + where, upto, source_id
                )
                if row is None:
                    return None
                where += " AND (created_at < ? OR (created_at = ? AND id <= ?))"
                cut += [row["created_at"], row["created_at"], upto]
            values = self._session_args(fork)
            await conn.execute(
                f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({self._marks(len(values))})",
                *values,
            )
            copied = await conn.execute(
                "INSERT INTO messages (id, session_id, role, created_at, content, provider_id, "
                "model_id, usage, cost, priced, finish, error, status, parent_id, compacted, "
                "summary, step_count) "
                f"SELECT substr(id, 1, {ID_STEM}) || ?, ?, role, created_at, content, provider_id, "
                "model_id, usage, cost, priced, finish, error, "
                "CASE WHEN status IN ('queued', 'running') THEN 'interrupted' ELSE status END, "
                f"CASE WHEN parent_id IS NULL THEN NULL ELSE substr(parent_id, 1, {ID_STEM}) || ? "
                "END, compacted, summary, step_count "
                f"FROM messages WHERE {where}",
                tag,
                fork.id,
                tag,
                *cut,
            )
            await conn.execute(
                "INSERT INTO message_parts (id, message_id, session_id, type, content, "
                "tool_call_id, tool_name, tool_args, tool_output, tool_status, metadata, "
                "created_at) "
                f"SELECT substr(id, 1, {ID_STEM}) || ?, substr(message_id, 1, {ID_STEM}) || ?, ?, "
                "type, content, tool_call_id, tool_name, tool_args, tool_output, tool_status, "
                "metadata, created_at FROM message_parts WHERE message_id IN "
                f"(SELECT id FROM messages WHERE {where})",
                tag,
                tag,
                fork.id,
                *cut,
            )
            await self._copy_session_state(conn, source_id, fork.id)
            await conn.execute(
                "UPDATE sessions SET message_count = ? WHERE id = ?", copied, fork.id
            )
        return fork.model_copy(update={"message_count": copied})

    async def _copy_session_state(self, conn: Conn, source_id: str, fork_id: str) -> None:
        """Todos, files and the compaction record (the fork's model sees the same summary; its
        copied file parts name their files by the same ids)."""
        await conn.execute(
            "INSERT INTO message_files (session_id, id, mime, size, data, created_at) "
            "SELECT ?, id, mime, size, data, created_at FROM message_files WHERE session_id = ?",
            fork_id,
            source_id,
        )
        await conn.execute(
            "INSERT INTO todos (session_id, todos) SELECT ?, todos FROM todos WHERE session_id = ?",
            fork_id,
            source_id,
        )
        await conn.execute(
            "INSERT INTO compaction (session_id, status, compaction_count, last_compacted_at, "
            "last_error) SELECT ?, 'idle', compaction_count, last_compacted_at, NULL "
            "FROM compaction WHERE session_id = ?",
            fork_id,
            source_id,
        )

    async def revert_session(self, session_id: str, message_id: str | None) -> Session | None:
        now = self._ts(utcnow())
        async with self._write() as conn:
            if message_id is None:
                await conn.execute(
                    "UPDATE messages SET reverted = FALSE WHERE session_id = ? AND reverted",
                    session_id,
                )
            else:
                row = await conn.fetchrow(
                    "SELECT created_at FROM messages WHERE id = ? AND session_id = ?",
                    message_id,
                    session_id,
                )
                if row is None:
                    return None
                at = row["created_at"]
                # One statement flags and unflags: a second revert may move the point either way.
                await conn.execute(
                    "UPDATE messages SET reverted = "
                    "(created_at > ? OR (created_at = ? AND id >= ?)) "
                    f"WHERE session_id = ? AND {_FINISHED}",
                    at,
                    at,
                    message_id,
                    session_id,
                )
            found = await conn.fetchrow(
                "UPDATE sessions SET revert_message_id = ?, updated_at = ? WHERE id = ? "
                f"RETURNING {SESSION_COLUMNS}",
                message_id,
                now,
                session_id,
            )
        return None if found is None else self._session(found)

    async def commit_revert(self, session_id: str, from_message_id: str | None = None) -> int:
        async with self._write() as conn:
            if from_message_id is not None:
                await self._flag_from(conn, session_id, from_message_id)
            await self._drop_files_of(conn, session_id, "m.reverted")
            deleted = await conn.execute(
                "DELETE FROM messages WHERE session_id = ? AND reverted", session_id
            )
            await conn.execute(
                "UPDATE sessions SET revert_message_id = NULL, "
                "message_count = message_count - ?, updated_at = ? WHERE id = ?",
                deleted,
                self._ts(utcnow()),
                session_id,
            )
        return deleted

    async def _flag_from(self, conn: Any, session_id: str, message_id: str) -> None:
        row = await conn.fetchrow(
            "SELECT created_at FROM messages WHERE id = ? AND session_id = ?",
            message_id,
            session_id,
        )
        if row is None:
            return
        at = row["created_at"]
        await conn.execute(
            "UPDATE messages SET reverted = TRUE WHERE session_id = ? AND "
            f"(created_at > ? OR (created_at = ? AND id >= ?)) AND {_FINISHED}",
            session_id,
            at,
            at,
            message_id,
        )
