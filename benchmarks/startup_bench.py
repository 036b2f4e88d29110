"""Start-up time to a served ``/health``, and the idle memory of a real server process.

Each run spawns ``python -m opencode_api serve`` on a free port with a fresh SQLite database and
measures the time from the spawn to the first ``200`` of ``GET /health``, the CPU time the
server used until then (what start-up costs whatever else the machine runs), the resident memory
then, and the resident memory after one turn (plus its automatic title) against the fake
provider (``python -m opencode_api.testing``, reached through ``OPENAI_API_BASE``) and a few
seconds idle (``VmRSS`` of ``/proc/PID/status``). Prints min/median/max of each as one JSON object.

    python benchmarks/startup_bench.py [--runs 5] [--idle 5] [--fast-path auto|off]
        [--model openai/gpt-4o-mini] [--src DIR]

``--src`` runs another checkout's ``src`` directory (``git archive`` of an older commit) with
this one's interpreter: the before/after comparison of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far: start-up cost independent of machine load."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request(
    port: int, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 60
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def fake_provider() -> Iterator[str]:
    """The fake OpenAI provider in a child process; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "opencode_api.testing", "--port", str(port), "--tokens", "50"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once it listens
        if "provider at" not in line:
            raise RuntimeError(f"the fake provider did not start: {line!r}")
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        process.wait(10)


def wait_for_health(port: int, process: subprocess.Popen[bytes], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            status, _ = request(port, "GET", "/health", timeout=5)
        except OSError:
            time.sleep(0.005)  # not listening yet
            continue
        if status == 200:
            return
        time.sleep(0.005)
    raise RuntimeError("no 200 from /health in time")


def one_run(args: argparse.Namespace, provider: str) -> dict[str, float]:
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="startup-bench-")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir}/bench.db",
        "OPENAI_API_BASE": provider,
        "OPENAI_API_KEY": "sk-bench",
        "DEFAULT_MODEL": args.model,
        "LLM_FAST_PATH": args.fast_path,
        "LOG_LEVEL": "WARNING",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    if args.src:
        env["PYTHONPATH"] = os.path.abspath(args.src)
    command = [sys.executable, "-m", "opencode_api", "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    started = time.perf_counter()
    server = subprocess.Popen(
        command, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_health(port, server)
        health = time.perf_counter() - started
        cpu = cpu_seconds(server.pid)
        at_health = rss_mb(server.pid)
        status, body = request(port, "POST", "/session", {})
        assert status in (200, 201), (status, body)
        session = json.loads(body)["id"]
        status, body = request(port, "POST", f"/session/{session}/message", {"content": "hi"})
        assert status == 200 and b"event: done" in body, (status, body[-300:])
        # The automatic title is generated after the turn: wait until the session has it.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            _, body = request(port, "GET", f"/session/{session}")
            if json.loads(body).get("title"):
                break
            time.sleep(0.05)
        time.sleep(args.idle)
        idle = rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "health_seconds": health,
        "cpu_seconds_at_health": cpu,
        "rss_at_health_mb": at_health,
        "idle_rss_mb": idle,
    }


def summary(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before measuring")
    parser.add_argument("--fast-path", choices=("auto", "off"), default="auto")
    parser.add_argument("--model", default="openai/gpt-4o-mini")
    parser.add_argument("--src", help="the src directory of another checkout to run")
    args = parser.parse_args()
    runs = []
    with fake_provider() as provider:
        for _ in range(args.runs):
            runs.append(one_run(args, provider))
    result: dict[str, Any] = {
        "runs": args.runs,
        "fast_path": args.fast_path,
        "model": args.model,
        "src": args.src or "this checkout",
    }
    result["load_average"] = round(os.getloadavg()[0], 2)
    for key in ("health_seconds", "cpu_seconds_at_health", "rss_at_health_mb", "idle_rss_mb"):
        result[key] = summary([run[key] for run in runs])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
