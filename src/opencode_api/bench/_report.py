"""Turning timed turns into the bench's figures: the JSON summary, the table and the plot."""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from opencode_api.bench._driver import LoadResult


@dataclass(frozen=True, slots=True)
class ServerFigures:
    """What was read from the server's /proc entry around one load phase (None: not measured)."""

    rss_before: int | None = None
    peak_rss: int | None = None
    high_water_mark: int | None = None
    cpu_seconds: float | None = None
    # CPU after the last turn ended, until the server was quiet (background titles, writes, GC).
    tail_cpu_seconds: float | None = None
    # Under --ray or --workers: cpu_seconds split by kind of process (ProcessStats.cpu_by_process).
    cpu_by_process: dict[str, float] | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` (0-100) percentile by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 2)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _overhead(measured: float | None, expected: float | None) -> float | None:
    """Measured TTFT minus what the fake provider spends on purpose before the first token."""
    return None if measured is None or expected is None else _ms(measured - expected)


def summarize(
    result: LoadResult,
    *,
    expected_ttft: float | None,
    server: ServerFigures,
    client_cpu_seconds: float | None = None,
    provider_cpu_seconds: float | None = None,
) -> dict[str, Any]:
    """The figures of one load phase (the keys are the bench's JSON contract)."""
    turns = result.turns
    ok = [turn for turn in turns if turn.ok]
    ttfts = [turn.ttft for turn in ok if turn.ttft is not None]
    durations = [turn.duration for turn in ok]
    events = sum(turn.events for turn in turns)
    errors: Counter[str] = Counter(result.create_errors)
    for turn in turns:
        if turn.error is not None:
            errors[turn.error] += 1
    not_run = (result.config.sessions - result.created) * result.config.turns
    wall = result.wall
    ttft_p50, ttft_p99 = percentile(ttfts, 50), percentile(ttfts, 99)
    rss_per_session: int | None = None
    if server.peak_rss is not None and server.rss_before is not None and result.created:
        rss_per_session = max(0, server.peak_rss - server.rss_before) // result.created
    cpu_per_turn = all_in = None
    if server.cpu_seconds is not None and ok:
        cpu_per_turn = round(server.cpu_seconds * 1000.0 / len(ok), 3)
        all_in = round((server.cpu_seconds + (server.tail_cpu_seconds or 0.0)) * 1000 / len(ok), 3)
    summary: dict[str, Any] = {
        "sessions": result.config.sessions,
        "turns_per_session": result.config.turns,
        "turns_ok": len(ok),
        "turns_failed": len(turns) - len(ok) + not_run,
        "wall_seconds": round(wall, 3),
        "turns_per_second": round(len(ok) / wall, 2) if wall > 0 else None,
        "events": events,
        "events_per_second": round(events / wall, 1) if wall > 0 else None,
        "ttft_p50_ms": _ms(ttft_p50),
        "ttft_p90_ms": _ms(percentile(ttfts, 90)),
        "ttft_p99_ms": _ms(ttft_p99),
        "expected_ttft_ms": _ms(expected_ttft),
        "overhead_ttft_p50_ms": _overhead(ttft_p50, expected_ttft),
        "overhead_ttft_p99_ms": _overhead(ttft_p99, expected_ttft),
        "turn_p50_ms": _ms(percentile(durations, 50)),
        "turn_p90_ms": _ms(percentile(durations, 90)),
        "turn_p99_ms": _ms(percentile(durations, 99)),
        "server_rss_before_bytes": server.rss_before,
        "server_peak_rss_bytes": server.peak_rss,
        "server_vmhwm_bytes": server.high_water_mark,
        "rss_per_session_bytes": rss_per_session,
        "server_cpu_seconds": _round(server.cpu_seconds),
        "server_cpu_ms_per_turn": cpu_per_turn,
        "server_tail_cpu_seconds": _round(server.tail_cpu_seconds),
        "server_cpu_ms_per_turn_all_in": all_in,
        "server_cpu_ms_per_turn_by_process": (
            {kind: round(cpu * 1000.0 / len(ok), 3) for kind, cpu in server.cpu_by_process.items()}
            if server.cpu_by_process and ok
            else None
        ),
        "client_cpu_seconds": _round(client_cpu_seconds),
        # The fake provider's CPU: when it nears the wall time, the fake (not the server) limits.
        "provider_cpu_seconds": _round(provider_cpu_seconds),
        "errors": dict(errors.most_common()),
    }
    if result.config.abort:
        targeted = [t for t in turns if t.abort_requested]
        latencies = [t.abort_latency for t in targeted if t.abort_latency is not None]
        answered = [t.abort_answered for t in targeted if t.abort_answered is not None]
        summary["abort"] = {
            "busy_sessions": len(turns),
            "aborts_requested": len(targeted),
            "aborted": sum(1 for t in targeted if t.stop_reason == "aborted"),
            "completed_before_abort": sum(1 for t in targeted if t.stop_reason == "stop"),
            "abort_to_end_p50_ms": _ms(percentile(latencies, 50)),
            "abort_to_end_p99_ms": _ms(percentile(latencies, 99)),
            "abort_to_end_max_ms": _ms(max(latencies) if latencies else None),
            "abort_response_p50_ms": _ms(percentile(answered, 50)),
            "abort_response_p99_ms": _ms(percentile(answered, 99)),
        }
    return summary


_TABLE_ROWS = (
    ("sessions", "sessions"),
    ("turns ok / failed", None),
    ("wall (s)", "wall_seconds"),
    ("turns/s", "turns_per_second"),
    ("events/s", "events_per_second"),
    ("TTFT p50 / p99 (ms)", ("ttft_p50_ms", "ttft_p99_ms")),
    ("overhead TTFT p50 / p99 (ms)", ("overhead_ttft_p50_ms", "overhead_ttft_p99_ms")),
    ("turn p50 / p90 / p99 (ms)", ("turn_p50_ms", "turn_p90_ms", "turn_p99_ms")),
    ("server CPU (s) / per turn (ms)", ("server_cpu_seconds", "server_cpu_ms_per_turn")),
    (
        "tail CPU (s) / all-in per turn (ms)",
        ("server_tail_cpu_seconds", "server_cpu_ms_per_turn_all_in"),
    ),
    ("CPU ms per turn by process", "server_cpu_ms_per_turn_by_process"),
    (
        "store statements / transactions / PostgreSQL CPU ms per turn",
        ("store_statements_per_turn", "store_transactions_per_turn", "postgres_cpu_ms_per_turn"),
    ),
    ("fake provider / client CPU (s)", ("provider_cpu_seconds", "client_cpu_seconds")),
    ("server peak RSS (MiB)", "server_peak_rss_bytes"),
    ("RSS per session (KiB)", "rss_per_session_bytes"),
    ("errors", "errors"),
)


def _cell(summary: dict[str, Any] | None, key: Any) -> str:
    if summary is None:
        return ""
    if key is None:
        return f"{summary['turns_ok']} / {summary['turns_failed']}"
    if isinstance(key, tuple):
        return " / ".join(_cell(summary, part) for part in key)
    value = summary.get(key)
    if value is None:
        return "-"
    if key == "server_peak_rss_bytes":
        return f"{value / 2**20:.1f}"
    if key == "rss_per_session_bytes":
        return f"{value / 1024:.1f}"
    if key == "errors":
        return ", ".join(f"{kind}: {count}" for kind, count in value.items()) or "none"
    if key == "server_cpu_ms_per_turn_by_process":
        return ", ".join(f"{kind} {ms}" for kind, ms in value.items())
    return str(value)


def table_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, ours, baseline) rows, extras (abort, idle, ratio) appended."""
    baseline = report.get("baseline")
    rows = [(label, _cell(report, key), _cell(baseline, key)) for label, key in _TABLE_ROWS]
    if "baseline_ratio" in report:
        rows.append(("turns/s ratio to baseline", str(report["baseline_ratio"]), ""))
    abort = report.get("abort")
    if abort:
        rows.append(
            (
                "abort -> end of stream p50 / p99 (ms)",
                f"{abort['abort_to_end_p50_ms']} / {abort['abort_to_end_p99_ms']}",
                "",
            )
        )
        rows.append(
            (
                "aborted / finished first",
                f"{abort['aborted']} / {abort['completed_before_abort']}",
                "",
            )
        )
    idle = report.get("idle")
    if idle:
        per = idle.get("rss_per_idle_session_bytes")
        rows.append(
            (
                f"idle sessions ({idle['sessions']}): RSS each (KiB)",
                "-" if per is None else f"{per / 1024:.1f}",
                "",
            )
        )
    return rows


def print_table(report: dict[str, Any], file: TextIO = sys.stdout) -> None:
    """The report as a table: rich when installed, else plain text."""
    rows = table_rows(report)
    title = (
        f"opencode-api bench: {report.get('sessions')} sessions x "
        f"{report.get('turns_per_session')} turns, llm path {report.get('llm_path')}, "
        f"{report.get('database')}"
    )
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(len(row[0]) for row in rows)
        print(title, file=file)
        print(f"{'':{width}}  {'ours':>28}  {'baseline':>28}", file=file)
        for label, ours, base in rows:
            print(f"{label:{width}}  {ours:>28}  {base:>28}", file=file)
        return
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("opencode-api", justify="right")
    table.add_column("baseline", justify="right")
    for row in rows:
        table.add_row(*row)
    Console(file=file, width=110).print(table)


def plot(path: str, series: dict[str, LoadResult]) -> None:
    """TTFT and turn-time distributions (empirical CDFs) of each phase to a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, result in series.items():
        for axis, values in (
            (left, sorted(t.ttft * 1000 for t in result.turns if t.ok and t.ttft is not None)),
            (right, sorted(t.duration * 1000 for t in result.turns if t.ok)),
        ):
            if values:
                fractions = [(index + 1) / len(values) for index in range(len(values))]
                axis.plot(values, fractions, label=name)
    left.set_title("time to first token")
    right.set_title("turn time")
    for axis in (left, right):
        axis.set_xlabel("ms")
        axis.set_ylabel("fraction of turns")
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
