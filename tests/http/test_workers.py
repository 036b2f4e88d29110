"""``serve --workers 2``: two processes share the port; each session lives in its owner."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import httpx

from opencode_api.testing import FakeLLMServer
from tests.http.conftest import free_port, wait_listening


async def _turn(base: str, sid: str) -> tuple[list[str], str | None]:
    # A new client each time: a new connection, which the kernel may give to either worker.
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        frames: list[str] = []
        async with http.stream("POST", f"/session/{sid}/message", json={"content": "hi"}) as r:
            forwarded_to = r.headers.get("X-Opencode-Worker")
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    frames.append(line[6:])
        return frames, forwarded_to


async def test_two_workers_share_sessions(tmp_path: Path, fake: FakeLLMServer) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "OPENAI_API_BASE": fake.base_url,
        "OPENAI_API_KEY": "sk-test",
        "AUTO_TITLE": "false",
        "SHUTDOWN_GRACE": "1",
        "LOG_LEVEL": "INFO",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "opencode_api",
        "serve",
        "--workers",
        "2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: a failed test kills the workers too
    )
    try:
        await wait_listening(process, 2)
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            sessions = [(await http.post("/session")).json()["id"] for _ in range(8)]
            owners = {sid: zlib.crc32(sid.encode()) % 2 for sid in sessions}

            async with http.stream("GET", "/event") as bus:
                lines = bus.aiter_lines()
                assert (await anext(lines)).startswith(":")  # the first ping

                forwarded: set[str] = set()
                for attempt in range(40):  # until some requests landed on the other worker
                    sid = sessions[attempt % len(sessions)]
                    frames, forwarded_to = await _turn(base, sid)
                    assert frames[-1] == "[DONE]"
                    assert json.loads(frames[-2])["type"] == "done"
                    if forwarded_to is not None:
                        assert int(forwarded_to) == owners[sid]
                        forwarded.add(sid)
                    if attempt >= len(sessions) and forwarded:
                        break
                assert forwarded, "no request was ever forwarded to the owning worker"

                # The merged bus shows events of sessions owned by both workers.
                seen_owners: set[int] = set()
                async for line in lines:
                    if not line.startswith("data: "):
                        continue
                    data = json.loads(line[6:])
                    sid = data.get("properties", {}).get("session_id")
                    if data["type"] == "message.created" and sid in owners:
                        seen_owners.add(owners[sid])
                    if seen_owners == {0, 1}:
                        break

            # Every turn is stored once, in order, whichever worker served it.
            for sid in sessions:
                page = (await http.get(f"/session/{sid}/message")).json()
                roles = [m["role"] for m in page["messages"]]
                assert roles == ["user", "assistant"] * (len(roles) // 2)
                assert all(m["status"] == "completed" for m in page["messages"])
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    assert code == 0, (await process.stderr.read()).decode()[-2000:] if process.stderr else ""
