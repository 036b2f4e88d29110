"""Store benchmark: one session with many messages (append rate, page reads at small and large
offsets) and many sessions appending at once, for SQLite and PostgreSQL. Prints one JSON object.

    python benchmarks/store_bench.py [--messages 100000] [--sessions 1000] [--per-session 5]
        [--backends sqlite,postgres] [--postgres-url URL]

Without --postgres-url (or TEST_POSTGRES_URL) a throwaway cluster is started from the local
PostgreSQL binaries (tests/pg_fixture.py's TempPostgres) and removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tests.pg_fixture import TempPostgres, create_database

from opencode_api.store import Message, Part, Session, Store, open_store

PAGE = 50


def message(session_id: str, i: int) -> Message:
    mid = f"msg_{session_id}_{i:07d}"
    return Message(
        id=mid,
        session_id=session_id,
        role="user" if i % 2 == 0 else "assistant",
        content=f"message {i} " + "x" * 200,
        parts=[Part(id=f"prt_{mid}", message_id=mid, session_id=session_id, type="text",
                    content=f"message {i}")],
    )  # fmt: skip


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


async def timed_reads(store: Store, session_id: str, offset: int, repeat: int) -> dict[str, Any]:
    times = []
    total = 0
    for _ in range(repeat):
        t = time.perf_counter()
        page = await store.list_messages(session_id, limit=PAGE, offset=offset)
        times.append(time.perf_counter() - t)
        assert page is not None and len(page.messages) == PAGE
        total = page.total_count
    return {"offset": offset, "limit": PAGE, "median_ms": ms(statistics.median(times)),
            "min_ms": ms(min(times)), "total_count": total}  # fmt: skip


async def one_big_session(store: Store, n: int) -> dict[str, Any]:
    session = await store.create_session(Session(id="ses_big"))
    t = time.perf_counter()
    for i in range(n):
        await store.append_message(message(session.id, i))
    elapsed = time.perf_counter() - t
    far = max(0, min(90_000, n - PAGE))
    return {
        "messages": n,
        "append_seconds": round(elapsed, 2),
        "appends_per_second": round(n / elapsed),
        "page_at_offset_0": await timed_reads(store, session.id, 0, 20),
        f"page_at_offset_{far}": await timed_reads(store, session.id, far, 20),
    }


async def many_sessions(store: Store, sessions: int, per_session: int) -> dict[str, Any]:
    ids = [f"ses_c{i:05d}" for i in range(sessions)]
    await asyncio.gather(*(store.create_session(Session(id=s)) for s in ids))
    latencies: list[float] = []

    async def chat(session_id: str) -> None:
        for i in range(per_session):
            t = time.perf_counter()
            await store.append_message(message(session_id, i))
            latencies.append(time.perf_counter() - t)

    t = time.perf_counter()
    await asyncio.gather(*(chat(s) for s in ids))
    elapsed = time.perf_counter() - t
    counts = await asyncio.gather(*(store.list_messages(s, limit=1) for s in ids))
    lost = sum(per_session - (p.total_count if p else 0) for p in counts)
    latencies.sort()
    return {
        "sessions": sessions,
        "messages_per_session": per_session,
        "seconds": round(elapsed, 2),
        "appends_per_second": round(sessions * per_session / elapsed),
        "append_p50_ms": ms(latencies[len(latencies) // 2]),
        "append_p99_ms": ms(latencies[int(len(latencies) * 0.99)]),
        "lost_messages": lost,
    }


async def run_backend(url: str, args: argparse.Namespace, **options: Any) -> dict[str, Any]:
    store = open_store(url, **options)
    await store.open()
    try:
        return {
            "one_session": await one_big_session(store, args.messages),
            "concurrent_sessions": await many_sessions(store, args.sessions, args.per_session),
        }
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--per-session", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL"))
    args = parser.parse_args()
    result: dict[str, Any] = {"config": {k: v for k, v in vars(args).items()
                                         if k != "postgres_url"}}  # fmt: skip
    backends = args.backends.split(",")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            result["sqlite"] = await run_backend(f"sqlite:///{tmp}/bench.db", args)
    if "postgres" in backends:
        server = None
        server_url = args.postgres_url
        if not server_url:
            server = TempPostgres()
            server_url = await asyncio.to_thread(server.start)
        try:
            db_url = await create_database(server_url)
            result["postgres"] = await run_backend(db_url, args, max_size=20)
        finally:
            if server is not None:
                await asyncio.to_thread(server.stop)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
