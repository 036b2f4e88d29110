"""Turn ownership for the SQL stores: which process runs a turn, and which turns are orphans.

A process claims a lease (``turn_owners``: id, host, pid, heartbeat) and renews it; the turns it
stores as ``queued`` or ``running`` carry its id. Recovery marks ``interrupted`` only the turns of
owners whose lease is gone, so a second process (a worker, another node, a Ray shard) started on
the same database never touches the live turns of the first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from opencode_api.store._models import Message, Owner
from opencode_api.store._rows import MESSAGE_COLUMNS, RowMapping

INTERRUPTED_ERROR: dict[str, object] = {
    "type": "interrupted",
    "message": "the process running this turn stopped before it finished",
}


class TurnOwnership(RowMapping):
    """Mixin of ``SqlStore``: the lease queries, in the shared ``?`` dialect."""

    owner_id: str | None = None

    # Provided by SqlStore.

    def _owner_of(self, status: str) -> str | None:
        """The owner stamped on a message stored with ``status``: only unfinished turns."""
        return self.owner_id if status in ("queued", "running") else None

    async def claim_turns(self, owner: Owner) -> None:
        async with self._single_write() as conn:
            await conn.execute(
                "INSERT INTO turn_owners (id, host, pid, heartbeat_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                owner.id,
                owner.host,
                owner.pid,
                self._ts(owner.heartbeat_at),
            )
        self.owner_id = owner.id

    async def release_turns(self) -> None:
        owner_id, self.owner_id = self.owner_id, None
        if owner_id is not None:
            await self.drop_owners([owner_id])

    async def list_owners(self) -> list[Owner]:
        async with self._read() as conn:
            rows = await conn.fetch("SELECT id, host, pid, heartbeat_at FROM turn_owners")
        return [
            Owner(
                id=r["id"],
                host=r["host"],
                pid=r["pid"],
                heartbeat_at=self._from_ts(r["heartbeat_at"]),
            )
            for r in rows
        ]

    async def drop_owners(self, owner_ids: Sequence[str]) -> None:
        if not owner_ids:
            return
        marks = ", ".join("?" for _ in owner_ids)
        async with self._single_write() as conn:
            await conn.execute(f"DELETE FROM turn_owners WHERE id IN ({marks})", *owner_ids)

    async def mark_interrupted(self, *, live_since: datetime | None = None) -> int:
        error = json.dumps(INTERRUPTED_ERROR, separators=(",", ":"))
        async with self._write() as conn:
            if live_since is None:
                marked: int = await conn.execute(
                    "UPDATE messages SET status = 'interrupted', error = ?, owner = NULL "
                    "WHERE status IN ('running', 'queued')",
                    error,
                )
                await conn.execute("UPDATE sessions SET status = 'idle' WHERE status = 'busy'")
                return marked
            orphans: int = await conn.execute(
                "UPDATE messages SET status = 'interrupted', error = ?, owner = NULL "
                "WHERE status IN ('running', 'queued') AND (owner IS NULL OR owner NOT IN "
                "(SELECT id FROM turn_owners WHERE heartbeat_at > ?))",
                error,
                self._ts(live_since),
            )
            if orphans:
                await conn.execute(
                    "UPDATE sessions SET status = 'idle' WHERE status = 'busy' AND NOT EXISTS "
                    "(SELECT 1 FROM messages m WHERE m.session_id = sessions.id "
                    "AND m.status IN ('running', 'queued'))"
                )
        return orphans

    async def interrupted_replies(self, *, since: datetime, limit: int = 1000) -> list[Message]:
        async with self._read() as conn:
            rows = await conn.fetch(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE status = 'interrupted' "
                "AND role = 'assistant' AND created_at >= ? ORDER BY created_at, id LIMIT ?",
                self._ts(since),
                limit,
            )
        return [self._message(r, []) for r in rows]
