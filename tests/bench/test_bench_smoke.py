"""``python -m opencode_api.bench`` end to end: fake provider and server as child processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from opencode_api.bench import percentile
from opencode_api.bench._driver import LoadDriver

REQUIRED_KEYS = {
    "sessions",
    "turns_ok",
    "turns_failed",
    "turns_per_second",
    "events_per_second",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "overhead_ttft_p99_ms",
    "server_peak_rss_bytes",
    "rss_per_session_bytes",
    "turn_p50_ms",
    "turn_p90_ms",
    "turn_p99_ms",
    "server_cpu_seconds",
    "errors",
}


def _bench_json(*arguments: str, timeout: float = 60) -> dict[str, Any]:
    """``python -m opencode_api.bench ARGUMENTS --json`` in a subprocess: its report."""
    command = [sys.executable, "-m", "opencode_api.bench", *arguments, "--json", "--no-progress"]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_bench_json_against_a_real_server() -> None:
    report = _bench_json(
        "--sessions", "5", "--turns", "1", "--tokens", "5", "--token-delay", "0", "--idle", "30",
        "--abort-test", "--abort-every", "2", "--think-time", "0.05",
    )  # fmt: skip
    assert not REQUIRED_KEYS - report.keys()
    assert report["sessions"] == 5
    assert report["turns_ok"] == 5
    assert report["turns_failed"] == 0
    assert report["errors"] == {}
    # Read from the server's /metrics: a SQLite turn is a dozen or so statements, well above 1.
    assert 5 < report["store_statements_per_turn"] < 40
    abort = report["abort"]  # sessions 0, 2 and 4 of 5 (their replies may finish first)
    assert (abort["busy_sessions"], abort["aborts_requested"]) == (5, 3)
    assert abort["aborted"] + abort["completed_before_abort"] == 3
    assert abort["server_aborts_timed"] == abort["aborted"]  # read from the server's /metrics
    idle = report["idle"]
    assert (idle["sessions"], idle["activated"], idle["errors"]) == (30, 30, {})
    assert idle["rss_per_idle_session_bytes"] is not None
    # Per turn: message_start, step_start, step_finish, done and at least one text event (with
    # no token delay the five chunks arrive together and the server merges them into one).
    assert report["events"] >= 5 * 5
    assert report["server_peak_rss_bytes"] > 0


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 50, None), ([3.0], 99, 3.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.5), ([1.0, 5.0], 100, 5.0)],
    ids=["empty", "single", "median-interpolated", "max"],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


async def test_driver_gate_bounds_the_sessions_running_at_once() -> None:
    gate = asyncio.Semaphore(3)
    running, peak = 0, 0
    three_in = asyncio.Event()
    release = asyncio.Event()

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 3:
            three_in.set()
        await release.wait()
        running -= 1

    tasks = [asyncio.create_task(LoadDriver._gated(gate, work())) for _ in range(10)]
    await three_in.wait()
    assert (running, peak) == (3, 3)
    release.set()
    await asyncio.gather(*tasks)
    assert (running, peak) == (0, 3)


def test_bench_profile_splits_the_servers_cpu_by_component() -> None:
    report = _bench_json(
        "--sessions", "20", "--tokens", "5", "--token-delay", "0", "--titles", "--profile",
        timeout=120,
    )  # fmt: skip
    assert report["turns_ok"] == 20
    assert report["server_tail_cpu_seconds"] is not None
    assert report["server_cpu_ms_per_turn_all_in"] >= report["server_cpu_ms_per_turn"]
    during = report["profile"]["turns_ms_per_turn"]
    # The turns' CPU, split: our own packages, the HTTP stack and the store all show up, and the
    # components add up to the CPU measured from /proc (GC is inside the other rows).
    assert {"store", "llm client", "http routes and SSE", "aiohttp"} <= during.keys()
    parts = sum(v for k, v in during.items() if not k.startswith("garbage collection"))
    assert parts == pytest.approx(report["server_cpu_ms_per_turn"], rel=0.02)
    assert "tail_ms_per_turn" in report["profile"]
