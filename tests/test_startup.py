"""What a new user meets first: ``serve`` answers ``/health``, and turns, titles and compaction on
an ``openai/`` model never import LiteLLM (2 s and ~200 MB), while ``LLM_FAST_PATH=off`` does.

The server is the real ``python -m opencode_api serve``, started through a wrapper that, when the
process exits after SIGTERM, writes the names of the heavy modules it had imported to a file.
Times are measured by ``benchmarks/startup_bench.py``, not asserted here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from opencode_api.testing import FakeLLMServer, Reply
from tests.http.conftest import free_port, wait_listening

# Runs the CLI's module as ``python -m opencode_api`` would; at exit, reports what was imported.
WRAPPER = """
import atexit, json, os, runpy, sys

def report():
    heavy = ("litellm", "openai", "tiktoken", "ray", "mcp", "jsonschema")
    names = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
    with open(os.environ["STARTUP_TEST_REPORT"], "w") as out:
        json.dump(names, out)

atexit.register(report)
sys.argv[0] = "opencode_api"
runpy.run_module("opencode_api", run_name="__main__", alter_sys=True)
"""


async def _drain(stream: asyncio.StreamReader, into: list[bytes]) -> None:
    # The server logs to a pipe: keep reading so it never blocks on a full one.
    while line := await stream.readline():
        into.append(line)


@pytest.mark.parametrize(("fast_path", "imports_litellm"), [("auto", False), ("off", True)])
async def test_serve_without_litellm(fast_path: str, imports_litellm: bool, tmp_path: Path) -> None:
    report = tmp_path / "imported.json"
    port = free_port()
    async with FakeLLMServer() as fake:
        fake.enqueue(Reply(text="Hello there"), Reply(text="A title"), Reply(text="A summary"))
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "OPENAI_API_BASE": fake.base_url,
            "OPENAI_API_KEY": "sk-test",
            "DEFAULT_MODEL": "openai/gpt-4o-mini",
            "LLM_FAST_PATH": fast_path,
            "AUTO_TITLE": "false",
            "COMPACTION_KEEP_MESSAGES": "1",
            "LOG_LEVEL": "INFO",
            "STARTUP_TEST_REPORT": str(report),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRAPPER,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        logs: list[bytes] = []
        drain: asyncio.Task[None] | None = None
        try:
            await wait_listening(process)
            assert process.stderr is not None
            drain = asyncio.create_task(_drain(process.stderr, logs))
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession(base, timeout=aiohttp.ClientTimeout(60)) as http:
                async with http.get("/health") as response:
                    assert response.status == 200
                async with http.post("/session", json={}) as response:
                    session = (await response.json())["id"]
                async with http.post(f"/session/{session}/message", json={"content": "hi"}) as r:
                    assert r.status == 200
                    assert "event: done" in await r.text()
                async with http.post(f"/session/{session}/generate-title", json={}) as response:
                    assert (await response.json())["title"] == "A title"
                async with http.post(f"/session/{session}/compact", json={}) as response:
                    assert (await response.json())["compaction_count"] == 1
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            if drain is not None:
                await drain
        assert code == 0, b"".join(logs).decode(errors="replace")[-3000:]
    imported = json.loads(report.read_text())
    assert ("litellm" in imported) is imports_litellm, imported
    assert "ray" not in imported  # only --ray imports Ray
    assert "mcp" not in imported  # only MCP_CONFIG imports the MCP SDK
    if not imports_litellm:
        assert imported == [], imported
    assert len(fake.requests) == 3 and not fake.requests[1].get("stream")
