"""The store's share of a turn, for ``opencode-api bench``: SQL statements and transactions per
turn (the server's ``opencode_store_statements`` and ``opencode_store_transactions`` gauges on
/metrics) and, for a PostgreSQL on this machine, the database server's own CPU per turn (a store
that moves work into the database has not made it free)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp

from opencode_api.bench._processes import postgres_cpu_seconds

_GAUGE = re.compile(rb"^opencode_store_(statements|transactions) (\S+)$", re.MULTILINE)
_LOCAL_HOSTS = ("@127.0.0.1", "@localhost", "@[::1]", "@/")


async def store_counts(url: str) -> dict[str, int]:
    """The server's statement and transaction counts (none from a store that does not count, or
    without /metrics)."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{url}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as response,
        ):
            body = await response.read()
    except (aiohttp.ClientError, TimeoutError):
        return {}
    return {m.group(1).decode(): int(float(m.group(2))) for m in _GAUGE.finditer(body)}


class StoreMeter:
    """Readings before and after a load phase against the server at ``url``."""

    def __init__(self, url: str, database_url: str | None) -> None:
        self._url = url
        local = database_url or ""
        self._postgres_here = local.startswith("postgres") and any(
            host in local for host in _LOCAL_HOSTS
        )
        self._counts: dict[str, int] = {}
        self._postgres_cpu: float | None = None

    async def start(self) -> None:
        self._counts = await store_counts(self._url)
        if self._postgres_here:
            self._postgres_cpu = await asyncio.to_thread(postgres_cpu_seconds)

    async def figures(self, turns: int) -> dict[str, Any]:
        """Per turn since ``start`` (session creation included: one statement per session)."""
        turns = max(turns, 1)
        counts = await store_counts(self._url)
        figures: dict[str, Any] = {
            "store_statements_per_turn": None,
            "store_transactions_per_turn": None,
            "postgres_cpu_ms_per_turn": None,
        }
        for name in ("statements", "transactions"):
            if name in counts and name in self._counts:
                sent = counts[name] - self._counts[name]
                figures[f"store_{name}_per_turn"] = round(sent / turns, 2)
        if self._postgres_cpu is not None:
            spent = await asyncio.to_thread(postgres_cpu_seconds) - self._postgres_cpu
            figures["postgres_cpu_ms_per_turn"] = round(spent * 1000.0 / turns, 3)
        return figures
