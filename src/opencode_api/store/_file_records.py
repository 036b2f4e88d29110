"""The bytes of user messages' files in the SQL stores (API.md, "Richer input and output").

They live in ``message_files``, apart from the message and part rows, so that listing messages
never reads them; a turn reads those of its history once, by id (``get_files``). Deleting messages
deletes the files only they named (``_drop_files_of``); deleting the session deletes all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opencode_api.store._models import FileData
from opencode_api.store._rows import Conn, RowMapping

_COLUMNS = "session_id, id, mime, size, data, created_at"


class FileRecords(RowMapping):
    """Mixin of ``SqlStore``."""

    async def put_files(self, files: Sequence[FileData]) -> None:
        if not files:
            return
        async with self._write() as conn:
            await conn.executemany(
                f"INSERT INTO message_files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (session_id, id) DO NOTHING",
                [
                    (f.session_id, f.id, f.mime, f.size, f.data, self._ts(f.created_at))
                    for f in files
                ],
            )

    async def get_files(self, session_id: str, file_ids: Sequence[str]) -> list[FileData]:
        if not file_ids:
            return []
        async with self._read() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM message_files WHERE session_id = ? "
                f"AND id IN ({self._marks(len(file_ids))})",
                session_id,
                *file_ids,
            )
        return [
            FileData(
                id=r["id"],
                session_id=r["session_id"],
                mime=r["mime"],
                size=int(r["size"]),
                data=r["data"],
                created_at=self._from_ts(r["created_at"]),
            )
            for r in rows
        ]

    async def _drop_files_of(self, conn: Conn, session_id: str, doomed: str, *args: Any) -> None:
        """Delete the files that the parts of the messages about to be deleted name and no other
        message of the session does; ``doomed`` (SQL on messages ``m``, placeholders filled by
        ``args``) picks those messages. Run in their deletion's transaction, before it: their
        parts go with them (ON DELETE CASCADE), and with the parts the record of their files.

        Only files those parts name, never every file no part names: a message's files are
        stored just before the message (two writes), and a sweep in between would take them.
        Any other part naming a file keeps it: a regenerate's new message names the replaced
        one's files by the same ids (it is stored, still queued, before the replaced message is
        deleted); a message a revert hides names its files until it is deleted too.
        """
        fid = self._json_text("p.metadata", "file_id")
        parts = (
            "FROM message_parts p JOIN messages m ON m.id = p.message_id "
            "WHERE m.session_id = ? AND p.type = 'file' AND "
        )
        await conn.execute(
            f"DELETE FROM message_files WHERE session_id = ? AND id IN (SELECT {fid} {parts}"
            f"({doomed})) AND NOT EXISTS (SELECT 1 {parts}NOT ({doomed}) "
            f"AND {fid} = message_files.id)",
            session_id,
            session_id,
            *args,
            session_id,
            *args,
        )
