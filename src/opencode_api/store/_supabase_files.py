"""User messages' files over Supabase's REST API (``opencode_message_files`` of sql/supabase.sql).

PostgREST has no transaction across requests: a fork's files are copied after the fork itself
(a fork whose copy failed holds file parts whose bytes are missing; a turn then tells the model
so instead of failing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opencode_api.store._models import FileData
from opencode_api.store._supabase_rows import _from_ts, _ts

if TYPE_CHECKING:
    from postgrest import AsyncRequestBuilder

_FILES = "opencode_message_files"


class SupabaseFiles:
    """Mixin of ``SupabaseStore``: it supplies the table builder and the request runner."""

    def _table(self, name: str) -> AsyncRequestBuilder:
        raise NotImplementedError

    async def _run(self, builder: Any) -> Any:
        raise NotImplementedError

    async def _session_user(self, session_id: str) -> str | None:
        raise NotImplementedError

    async def put_files(self, files: Sequence[FileData]) -> None:
        if not files:
            return
        users = {sid: await self._session_user(sid) for sid in {f.session_id for f in files}}
        rows = [
            {
                "session_id": f.session_id,
                "id": f.id,
                "user_id": users[f.session_id],
                "mime": f.mime,
                "size": f.size,
                "data": f.data,
                "created_at": _ts(f.created_at),
            }
            for f in files
        ]
        builder = self._table(_FILES).upsert(
            rows, on_conflict="session_id,id", ignore_duplicates=True
        )
        await self._run(builder)

    async def get_files(self, session_id: str, file_ids: Sequence[str]) -> list[FileData]:
        if not file_ids:
            return []
        query = (
            self._table(_FILES)
            .select("session_id,id,mime,size,data,created_at")
            .eq("session_id", session_id)
            .in_("id", list(file_ids))
        )
        return [
            FileData(
                id=row["id"],
                session_id=row["session_id"],
                mime=row["mime"],
                size=int(row["size"]),
                data=row["data"],
                created_at=_from_ts(row["created_at"]),
            )
            for row in (await self._run(query)).data
        ]

    async def _copy_files(self, source_id: str, fork_id: str, user_id: str | None) -> None:
        query = self._table(_FILES).select("*").eq("session_id", source_id)
        rows = (await self._run(query)).data
        for row in rows:
            row["session_id"], row["user_id"] = fork_id, user_id
        if rows:
            await self._run(self._table(_FILES).insert(rows))
