"""The command line: --version, serve --help, the start-up line, and a port that cannot be bound
(``python -m opencode_api serve`` in a subprocess: one line on stderr and status 1)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from opencode_api.__main__ import main, public_url
from opencode_api._version import __version__
from tests.http.conftest import free_port, wait_listening

ENV_VARIABLES = [
    "HOST",
    "PORT",
    "DATABASE_URL",
    "DEFAULT_MODEL",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "OPENAI_API_BASE",
    "OPENCODE_SERVER_PASSWORD",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "WORKERS",
]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"opencode-api {__version__}\n"


def test_serve_help_lists_the_main_environment_variables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    usage, _, rest = capsys.readouterr().out.partition("\n\n")
    assert usage.startswith("usage: opencode-api serve")
    description, _, rest = rest.partition("\n\n")
    assert "/docs" in description and "SIGTERM" in description
    epilog = rest[rest.index("environment") :]
    # The epilog keeps its layout (RawDescriptionHelpFormatter): one variable per line.
    lines = epilog.splitlines()
    for name in ENV_VARIABLES:
        assert any(line.startswith("  ") and name in line for line in lines), name
    assert "sqlite:///./data/opencode.db" in epilog  # the defaults come from Settings
    assert 'README.md, section "Environment variables"' in epilog


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://localhost:7860"),
        ("::", "http://localhost:7860"),
        ("127.0.0.1", "http://127.0.0.1:7860"),
        ("::1", "http://[::1]:7860"),
        ("api.example", "http://api.example:7860"),
    ],
    ids=["every-ipv4-interface", "every-interface", "ipv4-loopback", "ipv6-loopback", "a-name"],
)
def test_public_url(host: str, url: str) -> None:
    assert public_url(host, 7860) == url


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("WORKERS", "WORKER_INDEX", "WORKER_SOCKET_DIR", "HOST", "PORT")
    }
    return {
        **env,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        **extra,
    }


async def run_serve(tmp_path: Path, *args: str, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "opencode_api",
        "serve",
        *args,
        env=server_env(tmp_path, **env),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_a_busy_port_is_one_line_and_status_1(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        process = await run_serve(tmp_path, "--host", "127.0.0.1", "--port", str(port))
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert stderr.decode().splitlines() == [
        f"opencode-api: cannot listen on 127.0.0.1:{port}: address already in use"
        " (set PORT or --port)"
    ]
    # The port is bound before the runtime starts: the database was never opened.
    assert not (tmp_path / "db.sqlite").exists()


async def test_settings_refused_at_start_up_are_one_line_and_status_1(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text('{"mcpServers": {"docs": {"url": "ftp://example.com/mcp"}}}')
    process = await run_serve(
        tmp_path, "--host", "127.0.0.1", "--port", "0", MCP_CONFIG=str(config)
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    lines = [line for line in stderr.decode().splitlines() if not line.startswith("{")]
    assert lines == [
        f"opencode-api: cannot start: MCP_CONFIG {config}: mcpServers.docs.url: Value error, "
        "must be an http:// or https:// URL"
    ]


async def test_a_socket_failing_after_start_up_closes_the_runtime(tmp_path: Path) -> None:
    # A worker whose Unix socket directory is missing fails once the runtime has started.
    missing = tmp_path / "missing"
    process = await run_serve(
        tmp_path,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        WORKERS="2",
        WORKER_INDEX="0",
        WORKER_SOCKET_DIR=str(missing),
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    text = stderr.decode()
    assert process.returncode == 1, text
    assert "Traceback" not in text
    *logs, last = text.splitlines()
    assert last == (
        f"opencode-api: cannot listen on {missing / 'worker-0.sock'}: no such file or directory"
    ), text
    records = [json.loads(line) for line in logs if line.startswith("{")]
    assert "runtime started" in [record["event"] for record in records], text
    assert [record for record in records if record["level"] in ("error", "critical")] == []


class _Recorded:
    """A process whose stderr lines are kept as ``wait_listening`` reads them."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.lines: list[bytes] = []
        self._stderr = process.stderr
        self.stderr = self

    async def readline(self) -> bytes:
        assert self._stderr is not None
        line = await self._stderr.readline()
        self.lines.append(line)
        return line


async def test_the_listening_line_names_the_url_and_the_docs(tmp_path: Path) -> None:
    port = free_port()
    process = await run_serve(tmp_path, "--host", "0.0.0.0", "--port", str(port))
    recorded = _Recorded(process)
    try:
        await wait_listening(recorded)  # type: ignore[arg-type]
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 60)
    line: dict[str, Any] = json.loads(recorded.lines[-1])
    assert line["event"] == "server listening"
    assert line["url"] == f"http://localhost:{port}"
    assert line["docs"] == f"http://localhost:{port}/docs"
    assert process.returncode == 0


def test_ray_needs_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["serve", "--ray", "--port", "0"]) == 2
    assert "--ray needs PostgreSQL" in capsys.readouterr().err


def test_ray_address_alone_does_not_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    from opencode_api.actors import Runtime
    from opencode_api.actors._sharded import runtime_class
    from opencode_api.settings import Settings

    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")  # Ray's variable: only with --ray
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.ray_cluster is None and runtime_class(settings) is Runtime
