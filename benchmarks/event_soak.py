"""Event-stream soak: rounds of SSE clients that connect to ``GET /event`` and hang up, against a
real ``opencode-api serve`` process. After each round: the subscriber gauge from ``/metrics`` (back
to 0 once every client left, and how long that took) and the server's RSS. Prints a table, or one
JSON object with ``--json``.

    python benchmarks/event_soak.py [--rounds 5] [--clients 2000] [--connect-concurrency 500]
        [--settle 5] [--heartbeat 300] [--json]

The server gets a temporary SQLite database and ``SSE_HEARTBEAT`` (default 300 s, capped at 30 s by
the server): a gauge back at 0 within milliseconds was not the heartbeat's doing. Each round waits
at most ``--settle`` seconds for the gauge to reach 0, then goes on: subscribers the server did not
release pile up from round to round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import socket
import sys
import tempfile
import time
from collections import deque
from typing import Any

_GAUGE = re.compile(rb'^opencode_sse_subscribers\{route="events"\} ([0-9.e+]+)$', re.M)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit(wanted: int) -> int:
    """The soft descriptor limit raised towards ``wanted`` (the server inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


class Server:
    """``python -m opencode_api serve`` on a free port, until ``stop``."""

    def __init__(self, heartbeat: float) -> None:
        self.heartbeat = heartbeat
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.tail: deque[str] = deque(maxlen=20)
        self._stderr: asyncio.Task[None] | None = None
        self._directory = tempfile.TemporaryDirectory(prefix="event-soak-")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=f"sqlite:///{self._directory.name}/soak.db",
            SSE_HEARTBEAT=str(self.heartbeat),
            LOG_LEVEL="INFO",  # the readiness line is at INFO
            LITELLM_LOCAL_MODEL_COST_MAP="True",
        )
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "opencode_api", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        listening = asyncio.Event()
        self._stderr = asyncio.create_task(self._read_stderr(listening))
        waiting = asyncio.create_task(listening.wait())
        exited = asyncio.create_task(self.process.wait())
        await asyncio.wait({waiting, exited}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        exited.cancel()
        if not listening.is_set():
            raise RuntimeError("the server did not start:\n" + "\n".join(self.tail))

    async def _read_stderr(self, listening: asyncio.Event) -> None:
        # Always drained: a full pipe would block the server's logging.
        assert self.process is not None and self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            if "server listening" in line:
                listening.set()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._stderr is not None:
            self._stderr.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stderr
        self._directory.cleanup()

    async def gauge(self) -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
            body = await reader.read()
        finally:
            writer.close()
        found = _GAUGE.search(body)
        return float(found.group(1)) if found else 0.0


async def connect(port: int, gate: asyncio.Semaphore) -> asyncio.StreamWriter:
    """One ``GET /event`` client, returned once ``server.connected`` arrived."""
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /event HTTP/1.1\r\nHost: soak\r\nAccept: text/event-stream\r\n\r\n")
        await reader.readuntil(b"server.connected")
        return writer


async def soak_round(
    server: Server, clients: int, gate: asyncio.Semaphore, settle: float
) -> dict[str, Any]:
    started = time.perf_counter()
    writers = await asyncio.gather(*(connect(server.port, gate) for _ in range(clients)))
    connected_s = time.perf_counter() - started
    connected = await server.gauge()
    rss_connected = rss_mib(server.pid)
    closed = time.perf_counter()
    for writer in writers:
        writer.close()
    # Poll the gauge: this measures the server, not a wait in the test suite.
    gauge = await server.gauge()
    while gauge > 0 and time.perf_counter() - closed < settle:
        await asyncio.sleep(0.005)
        gauge = await server.gauge()
    released_ms = (time.perf_counter() - closed) * 1000
    return {
        "clients": clients,
        "connect_s": round(connected_s, 2),
        "gauge_connected": connected,
        "rss_connected_mib": rss_connected,
        "gauge_after": gauge,
        "released_ms": round(released_ms, 1),
        "rss_after_mib": rss_mib(server.pid),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    limit = raise_fd_limit(2 * args.clients + 1024)
    server = Server(args.heartbeat)
    await server.start()
    try:
        gate = asyncio.Semaphore(args.connect_concurrency)
        result: dict[str, Any] = {
            "rounds": args.rounds,
            "clients": args.clients,
            "heartbeat_s": args.heartbeat,
            "settle_s": args.settle,
            "fd_limit": limit,
            "rss_start_mib": rss_mib(server.pid),
            "by_round": [],
        }
        for index in range(args.rounds):
            row = await soak_round(server, args.clients, gate, args.settle)
            row["round"] = index + 1
            result["by_round"].append(row)
            if not args.json:
                print(_row(row), flush=True)
        return result
    finally:
        await server.stop()


_COLUMNS = (
    ("round", "round"),
    ("clients", "clients"),
    ("connect s", "connect_s"),
    ("gauge open", "gauge_connected"),
    ("RSS open MiB", "rss_connected_mib"),
    ("gauge after", "gauge_after"),
    ("released ms", "released_ms"),
    ("RSS after MiB", "rss_after_mib"),
)


def _row(row: dict[str, Any]) -> str:
    return "| " + " | ".join(str(row[key]) for _, key in _COLUMNS) + " |"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument(
        "--connect-concurrency", type=int, default=500, help="clients connecting at once"
    )
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds to wait for the gauge to reach 0"
    )
    parser.add_argument("--heartbeat", type=float, default=300.0, help="SSE_HEARTBEAT, seconds")
    parser.add_argument("--json", action="store_true", help="one JSON object, no table")
    return parser


if __name__ == "__main__":
    arguments = _parser().parse_args()
    if not arguments.json:
        print("| " + " | ".join(title for title, _ in _COLUMNS) + " |")
        print("|" + "---|" * len(_COLUMNS))
    outcome = asyncio.run(main(arguments))
    if arguments.json:
        print(json.dumps(outcome, indent=2))
    else:
        start, limit = outcome["rss_start_mib"], outcome["fd_limit"]
        print(f"RSS at start: {start} MiB; descriptor limit {limit}")
