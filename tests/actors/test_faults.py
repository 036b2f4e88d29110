"""Faults never strand a session: the store goes away under load and comes back, the disk fills,
a second process starts on the same database. Real components: a PostgreSQL cluster of the test's
own, a real SQLite file on a real (small) filesystem, the fake provider over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from opencode_api.actors import Runtime
from opencode_api.store import SqliteStore, StoreError
from opencode_api.testing import FakeLLMServer, Reply
from tests.actors.conftest import make_settings
from tests.pg_fixture import TempPostgres, find_postgres_bin


class Streaming:
    """Set once ``count`` turns have streamed their first text (the outage comes mid-stream)."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.reached = asyncio.Event()

    def seen(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.reached.set()


async def _run_turn(
    runtime: Runtime, session_id: str, text: str, streaming: Streaming | None = None
) -> list[dict[str, Any]]:
    """The turn's events as dicts; a refusal before it starts is one ``refused`` entry."""
    events: list[dict[str, Any]] = []
    try:
        async for event in runtime.send(session_id, text):
            events.append(event.to_dict())
            if streaming is not None and event.type == "text":
                streaming.seen()
                streaming = None
    except StoreError:
        return [{"type": "refused"}]
    return events


def _ended(events: list[dict[str, Any]]) -> bool:
    return events[-1]["type"] in ("done", "error", "refused")


async def _unfinished(runtime: Runtime, session_ids: list[str]) -> list[str]:
    """Messages of these sessions still ``running`` or ``queued`` in the store."""
    left = []
    for session_id in session_ids:
        page = await runtime.list_messages(session_id)
        left += [
            f"{m.role} {m.status} {m.content[:20]!r}"
            for m in page.messages
            if m.status in ("running", "queued")
        ]
    return left


async def _settled(runtime: Runtime, session_ids: list[str]) -> None:
    """No session busy, nothing deferred, nothing unfinished in the store."""
    await asyncio.wait_for(runtime._deps.writes.drained.wait(), 20)
    assert [s for s in session_ids if runtime.status(s) == "busy"] == []
    assert await _unfinished(runtime, session_ids) == []


@pytest.fixture
def cluster() -> Iterator[TempPostgres]:
    if find_postgres_bin() is None:
        pytest.skip("no PostgreSQL server binaries")
    server = TempPostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.postgres
async def test_postgres_stopped_and_restarted_under_load(
    tmp_path: Path, cluster: TempPostgres
) -> None:
    async with FakeLLMServer(tokens=20, token_delay=0.02) as fake:
        settings = make_settings(
            tmp_path, fake, database_url=cluster.url, llm_fast_path="auto", database_pool_size=5
        )
        async with Runtime.open(settings) as runtime:
            sessions = [(await runtime.create_session()).id for _ in range(12)]
            streaming = Streaming(len(sessions))
            first = [
                asyncio.create_task(_run_turn(runtime, sid, "before the outage", streaming))
                for sid in sessions
            ]
            # The outage comes while turns stream; more turns keep arriving during it.
            await streaming.reached.wait()
            await asyncio.to_thread(cluster.pause)
            during = [
                asyncio.create_task(_run_turn(runtime, sid, "during the outage"))
                for sid in sessions
            ]
            outcomes = await asyncio.gather(*first, *during)
            await asyncio.to_thread(cluster.resume)

            # Every stream ended with done or error (or was refused before it began), and the
            # errors a client saw carry no driver text or address.
            assert all(_ended(events) for events in outcomes)
            for events in outcomes:
                if events[-1]["type"] == "error":
                    error = events[-1]["error"]
                    assert error["type"] == "unavailable"
                    assert "127.0.0.1" not in error["message"]
                    assert "Error" not in error["message"]
            assert any(events[-1]["type"] != "done" for events in outcomes)

            await _settled(runtime, sessions)
            again = await asyncio.gather(
                *(_run_turn(runtime, sid, "after the outage") for sid in sessions)
            )
            assert [events[-1]["type"] for events in again] == ["done"] * len(sessions)


@contextlib.contextmanager
def _small_filesystem(path: Path) -> Iterator[bool]:
    """A 2 MB tmpfs at ``path`` when this process may mount one (root on Linux): True; else the
    directory as it is: False (the test then caps the database instead)."""
    path.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 65536)


async def test_sqlite_disk_full_ends_turns_and_recovers(tmp_path: Path) -> None:
    with _small_filesystem(tmp_path / "small") as mounted:
        async with FakeLLMServer(tokens=5) as fake:
            settings = make_settings(
                tmp_path, fake, database_url=f"sqlite:///{tmp_path / 'small' / 'opencode.db'}"
            )
            async with Runtime.open(settings) as runtime:
                assert isinstance(runtime.store, SqliteStore)
                sessions = [(await runtime.create_session()).id for _ in range(3)]
                filler = tmp_path / "small" / "filler"
                writer = runtime.store._loop_writer
                assert writer is not None
                fake.set_default(tokens=40, token_delay=0.01)
                streaming = Streaming(len(sessions))
                turns = [
                    asyncio.create_task(_run_turn(runtime, sid, "x " * 200, streaming))
                    for sid in sessions
                ]
                await streaming.reached.wait()
                if mounted:
                    # Fill the filesystem to the last byte while the replies stream.
                    await asyncio.to_thread(_fill, filler)
                else:
                    # The same SQLITE_FULL, by capping the database at its current size.
                    pages = writer.execute("PRAGMA page_count").fetchone()[0]
                    writer.execute(f"PRAGMA max_page_count = {pages}")
                outcomes = await asyncio.gather(*turns)
                assert all(_ended(events) for events in outcomes)
                errors = [events[-1] for events in outcomes if events[-1]["type"] == "error"]
                assert errors and all(e["error"]["type"] == "unavailable" for e in errors)
                # Space comes back: the ends that waited are written, nothing stays running.
                if mounted:
                    filler.unlink()
                else:
                    writer.execute("PRAGMA max_page_count = 1073741823")
                fake.set_default(tokens=5, token_delay=0.0)
                await _settled(runtime, sessions)
                again = await asyncio.gather(*(_run_turn(runtime, sid, "hi") for sid in sessions))
                assert [events[-1]["type"] for events in again] == ["done"] * len(sessions)


_SECOND_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    from opencode_api.actors import Runtime

    async def main():
        async with Runtime.open(database_url=sys.argv[1], llm_warm_up=False) as rt:
            print("recovered", flush=True)

    asyncio.run(main())
    """
)


async def test_second_process_on_the_same_database_spares_live_turns(
    tmp_path: Path, fake: FakeLLMServer
) -> None:
    settings = make_settings(tmp_path, fake)
    async with Runtime.open(settings) as runtime:
        session = await runtime.create_session()
        queued_behind = await runtime.create_session()
        # A turn that streams until the test lets it go, and a turn queued behind another.
        fake.enqueue(Reply(text="one two three", hang_after=1))
        streaming = runtime.send(session.id, "stay")
        events = streaming.items()
        first = await anext(events)
        assert first.event.type == "message_start"
        fake.enqueue(Reply(text="a", hang_after=0))
        blocker_stream = runtime.send(queued_behind.id, "first")
        blocker_events = blocker_stream.items()
        assert (await anext(blocker_events)).event.type == "message_start"  # running
        queued_stream = runtime.send(queued_behind.id, "second")
        await queued_stream.start()  # stored, queued behind "first"
        blocker = asyncio.create_task(_rest(blocker_events))
        queued = asyncio.create_task(_rest(queued_stream.items()))

        # Another server process starts on the same database and runs its start-up recovery.
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _SECOND_PROCESS,
            settings.resolved_database_url(),
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0 and b"recovered" in out

        statuses = {
            m.content or m.role: m.status
            for sid in (session.id, queued_behind.id)
            for m in (await runtime.list_messages(sid)).messages
        }
        assert "interrupted" not in statuses.values(), statuses
        assert statuses["second"] == "queued"

        # Let everything finish: the live turns end as they would have.
        assert await runtime.abort(session.id)
        assert await runtime.abort(queued_behind.id)
        rest = [item.event.type async for item in events]
        assert rest[-1] == "done"
        outcomes = await asyncio.gather(blocker, queued)
        assert [o[-1]["stop_reason"] for o in outcomes] == ["aborted", "aborted"]


async def _rest(items: AsyncIterator[Any]) -> list[dict[str, Any]]:
    return [item.event.to_dict() async for item in items]
