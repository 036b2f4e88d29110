"""Placement: a worker hosts its share of sessions and names the peer hosting the others."""

from __future__ import annotations

import zlib
from pathlib import Path

from opencode_api.actors import Peer, Runtime
from opencode_api.testing import FakeLLMServer
from tests.actors.conftest import make_settings


async def test_one_process_hosts_every_session(runtime: Runtime) -> None:
    session = await runtime.create_session()
    assert await runtime.route(session_id=session.id) is None
    assert runtime.peers() == []


async def test_a_worker_routes_other_workers_sessions_and_their_questions(
    tmp_path: Path, fake: FakeLLMServer
) -> None:
    settings = make_settings(
        tmp_path, fake, workers=3, worker_index=1, worker_socket_dir=str(tmp_path)
    )
    async with Runtime.open(settings) as runtime:
        assert runtime.peers() == [
            Peer("0", str(tmp_path / "worker-0.sock")),
            Peer("2", str(tmp_path / "worker-2.sock")),
        ]
        homes: dict[int, Peer | None] = {}
        while len(homes) < 3:
            session = await runtime.create_session()
            owner = zlib.crc32(session.id.encode()) % 3
            homes[owner] = await runtime.route(session_id=session.id)
        assert homes == {
            0: Peer("0", str(tmp_path / "worker-0.sock")),
            1: None,
            2: Peer("2", str(tmp_path / "worker-2.sock")),
        }
        # A question nobody asked belongs to no session: served here (and answered 404 here).
        assert await runtime.route(question_id="que_missing") is None
