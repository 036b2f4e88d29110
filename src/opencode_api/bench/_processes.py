"""The bench's child processes (fake provider, server, baseline); their RSS and CPU from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProcessStats:
    """RSS and CPU time of one process, read from ``/proc`` (Linux; zeros elsewhere)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = 0
        # Count the process's descendants too (serve --ray: its local Ray's processes, shards).
        self.tree = False

    def _status(self, key: str) -> int:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024  # the kernel reports kB
        return 0

    def rss(self) -> int:
        value = self._status("VmRSS:")
        self.peak_rss = max(self.peak_rss, value)
        return value

    def high_water_mark(self) -> int:
        """``VmHWM``: the largest RSS of the process's whole life (start-up included)."""
        return self._status("VmHWM:")

    def cpu_seconds(self) -> float:
        own = _cpu_of(self.pid, children=self.tree)
        if not self.tree:
            return own
        return own + sum(_cpu_of(pid, children=True) for pid in _descendants(self.pid))

    def cpu_by_process(self) -> dict[str, float]:
        """With ``tree``: CPU seconds by kind of process. ``server`` is the root (a front end, or
        the workers' supervisor); ``shards`` Ray's worker processes (titled ``ray::...``: the
        shard actors); ``workers`` other opencode-api processes; ``ray`` the rest (GCS, raylet,
        Ray's agents)."""
        spent = {"server": _cpu_of(self.pid, children=True)}
        if self.tree:
            for pid in _descendants(self.pid):
                kind = _kind(pid)
                spent[kind] = spent.get(kind, 0.0) + _cpu_of(pid, children=True)
        return spent

    async def quiet(
        self, *, interval: float = 0.25, idle_share: float = 0.02, limit: float = 30.0
    ) -> float:
        """Wait until the process is quiet (under ``idle_share`` of a core over ``interval``),
        at most ``limit`` seconds; the CPU seconds it spent meanwhile (the tail of a load:
        background titles, deferred writes, collections)."""
        start = previous = self.cpu_seconds()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            await asyncio.sleep(interval)
            now = self.cpu_seconds()
            if now - previous < idle_share * interval:
                break
            previous = now
        return self.cpu_seconds() - start

    async def sample(self, interval: float = 0.1) -> None:
        """Track the peak RSS until cancelled (run it as a task owned by the caller)."""
        while True:
            self.rss()
            await asyncio.sleep(interval)

    def reset_peak(self) -> None:
        self.peak_rss = 0
        self.rss()


class Child:
    """A child process with its output in a log file; ``stop()`` sends SIGTERM, then SIGKILL."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path
        self.stats = ProcessStats(process.pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, grace: float = 20.0) -> int | None:
        if self.process.returncode is not None:
            return self.process.returncode
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            return await self.process.wait()


async def spawn(
    name: str,
    module: str,
    args: list[str],
    *,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    ready_line: bool = False,
) -> tuple[Child, str]:
    """Start ``python -m module args``; with ``ready_line`` wait for (and return) its first line."""
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            stdout=asyncio.subprocess.PIPE if ready_line else log,
            stderr=log,
            env=full_env,
        )
    child = Child(name, process, log_path)
    if not ready_line:
        return child, ""
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 60)
    except TimeoutError:
        await child.stop()
        raise RuntimeError(f"{name} did not start within 60 s:\n{child.log_tail()}") from None
    if not line:
        await child.stop()
        raise RuntimeError(f"{name} exited at start-up:\n{child.log_tail()}")
    return child, line.decode().strip()


async def wait_healthy(child: Child | None, url: str, timeout: float = 90.0) -> None:
    """Poll ``GET {url}/health`` until it answers 200 (a server gives no readiness line)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if child is not None and child.process.returncode is not None:
                raise RuntimeError(f"{child.name} exited at start-up:\n{child.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{url}/health") as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                tail = child.log_tail() if child is not None else ""
                raise RuntimeError(f"{url} not healthy after {timeout:.0f} s\n{tail}")
            await asyncio.sleep(0.1)


def postgres_cpu_seconds() -> float:
    """CPU seconds of this machine's PostgreSQL processes: the live ones, and the backends that
    exited (their postmaster's reaped-children time). For a database on this machine only."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
            parent = Path(f"/proc/{fields[1]}/comm").read_text().strip()
            if parent != "postgres":  # the postmaster: its children that exited count too
                total += (int(fields[13]) + int(fields[14])) / _CLOCK_TICKS
        except (OSError, ValueError, IndexError):
            continue
    return total


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces: fields are counted after its closing paren.
    return stat[stat.rindex(")") + 2 :].split()


def _cpu_of(pid: int, *, children: bool = False) -> float:
    """utime + stime (and, with ``children``, the CPU of its children that exited)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _CLOCK_TICKS


def _kind(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "ray"
    if argv[0].startswith(b"ray::"):
        return "shards"
    if any(b"opencode_api" in arg or b"opencode-api" in arg for arg in argv):
        return "workers"
    return "ray"


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            parents[int(entry.name)] = int(fields[1])
    found: list[int] = []
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        found.extend(frontier)
    return found
