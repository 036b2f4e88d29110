"""Render ``bench_matrix.py`` results (JSON lines) as the Markdown table of BENCHMARKS.md.

python benchmarks/bench_table.py benchmarks/results.jsonl
"""

from __future__ import annotations

import json
import sys
from typing import Any

COLUMNS = (
    ("db", "db"),
    ("LLM path", "llm_path"),
    ("sessions", "sessions"),
    ("ok / failed", None),
    ("wall s", "wall_seconds"),
    ("turns/s", "turns_per_second"),
    ("events/s", "events_per_second"),
    ("TTFT p50 / p99 ms", ("ttft_p50_ms", "ttft_p99_ms")),
    ("overhead TTFT p99 ms", "overhead_ttft_p99_ms"),
    ("turn p50 / p99 ms", ("turn_p50_ms", "turn_p99_ms")),
    ("server CPU ms/turn", "server_cpu_ms_per_turn"),
    ("peak RSS MiB", "server_peak_rss_bytes"),
    ("baseline turns/s", ("baseline", "turns_per_second")),
    ("baseline CPU ms/turn", ("baseline", "server_cpu_ms_per_turn")),
    ("ratio", "baseline_ratio"),
)


def cell(report: dict[str, Any], key: Any) -> str:
    if key is None:
        return f"{report.get('turns_ok')} / {report.get('turns_failed')}"
    if isinstance(key, tuple) and key[0] == "baseline":
        return cell(report.get("baseline") or {}, key[1])
    if isinstance(key, tuple):
        return " / ".join(cell(report, part) for part in key)
    value = report.get(key)
    if value is None:
        return "-"
    if key == "server_peak_rss_bytes":
        return f"{value / 2**20:.0f}"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"
    return str(value)


def main() -> None:
    with open(sys.argv[1]) as results:
        rows = [json.loads(line) for line in results if line.strip()]
    print("| " + " | ".join(title for title, _ in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for report in rows:
        if "turns_ok" not in report:
            print(
                f"| {report.get('db')} | {report.get('llm_path')} | {report.get('sessions')} "
                f"| did not finish: {str(report.get('timed_out') or 'failed')[:80]} |"
            )
            continue
        print("| " + " | ".join(cell(report, key) for _, key in COLUMNS) + " |")


if __name__ == "__main__":
    main()
