"""The bytes of user messages' files in the SQL stores (API.md, "Richer input and output").

They live in ``message_files``, apart from the message and part rows, so that listing messages
never reads them; a turn reads those of its history once, by id (``get_files``).
"""

from __future__ import annotations

from collections.abc import Sequence

from opencode_api.store._models import FileData
from opencode_api.store._rows import RowMapping

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
