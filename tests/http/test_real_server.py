"""Against real servers: the replaced service's README client (httpx), and SIGTERM with a turn
in flight (``python -m opencode_api serve`` in a subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from aiohttp.test_utils import TestServer

from opencode_api.http import create_app
from opencode_api.testing import FakeLLMServer, Reply
from tests.http.conftest import close_runtime, free_port, open_runtime, wait_listening


def seed_readme_client(base: str) -> dict[str, Any]:
    """The example of the replaced service's README, unchanged but for the base URL."""
    out: dict[str, Any] = {"lines": []}
    response = httpx.post(f"{base}/session")
    session = response.json()
    session_id = session["id"]
    with httpx.stream(
        "POST",
        f"{base}/session/{session_id}/message",
        json={"content": "Hello, what can you help me with?"},
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                out["lines"].append(line[6:])
    response = httpx.get(
        f"{base}/session/{session_id}/message", params={"limit": 20, "offset": 0, "order": "desc"}
    )
    data = response.json()
    out["total"], out["shown"] = data["total_count"], len(data["messages"])
    response = httpx.get(f"{base}/session/{session_id}/cost")
    cost = response.json()
    out["cost"] = f"{cost['total_cost']:.4f}"
    return out


async def test_seed_readme_client_flow(make_settings: Any, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(text="I can help with many things."))
    settings = make_settings()
    runtime = await open_runtime(settings)
    try:
        async with TestServer(create_app(settings, runtime=runtime)) as server:
            base = str(server.make_url("")).rstrip("/")
            result = await asyncio.to_thread(seed_readme_client, base)
    finally:
        await close_runtime(runtime)
    assert result["lines"][-1] == "[DONE]"
    assert json.loads(result["lines"][0])["type"] == "message_start"
    assert json.loads(result["lines"][-2])["type"] == "done"
    assert result["total"] == 2 and result["shown"] == 2
    assert float(result["cost"]) >= 0


async def test_sigterm_with_a_turn_in_flight(tmp_path: Path, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(text=[f"w{i} " for i in range(400)], token_delay=0.02))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "OPENAI_API_BASE": fake.base_url,
        "OPENAI_API_KEY": "sk-test",
        "SHUTDOWN_GRACE": "0.5",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "opencode_api",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await wait_listening(process)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            sid = (await http.post("/session")).json()["id"]
            frames: list[str] = []
            async with http.stream(
                "POST", f"/session/{sid}/message", json={"content": "long"}
            ) as response:
                lines = response.aiter_lines()
                async for line in lines:
                    if line.startswith("event: text"):
                        break
                process.send_signal(signal.SIGTERM)
                async for line in lines:
                    if line.startswith("data: "):
                        frames.append(line[6:])
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0, (await process.stderr.read()).decode()[-2000:] if process.stderr else ""
    assert frames[-1] == "[DONE]"
    final = json.loads(frames[-2])
    assert final["type"] in ("done", "error")
    if final["type"] == "done":
        assert final["stop_reason"] in ("aborted", "stop")
