"""Run ``opencode-api bench`` over a matrix (sessions x database x LLM path) and collect the JSON.

Each cell is a separate ``python -m opencode_api.bench --json`` run (its own fake provider and
server processes); PostgreSQL cells get a fresh database on a throwaway cluster. Results are
appended, one JSON object a line, to ``--out`` (default ``benchmarks/results.jsonl``).

    python benchmarks/bench_matrix.py --sessions 1 100 1000 --db sqlite postgres \
        --llm-path fast litellm --baseline [--extra --abort-test]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tests.pg_fixture import TempPostgres, create_database, drop_database


def run_cell(
    sessions: int, db: str, llm_path: str, args: argparse.Namespace, pg_url: str | None
) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "opencode_api.bench", "--json", "--no-progress",
        "--sessions", str(sessions), "--turns", str(args.turns),
        "--tokens", str(args.tokens), "--token-delay", str(args.token_delay),
        "--llm-path", llm_path, *args.extra,
    ]  # fmt: skip
    if args.baseline:
        command.append("--baseline")
    database_url = None
    if db == "postgres":
        assert pg_url is not None
        database_url = asyncio.run(create_database(pg_url))
        command += ["--database-url", database_url]
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"sessions": sessions, "db": db, "llm_path": llm_path, "timed_out": args.timeout}
    finally:
        if database_url is not None and pg_url is not None:
            asyncio.run(drop_database(pg_url, database_url))
    elapsed = time.monotonic() - started
    if not done.stdout.strip():
        return {"sessions": sessions, "db": db, "llm_path": llm_path, "failed": done.stderr[-3000:]}
    report: dict[str, Any] = json.loads(done.stdout)
    report.update(db=db, run_seconds=round(elapsed, 1), exit_code=done.returncode)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--db", nargs="+", choices=("sqlite", "postgres"), default=["sqlite"])
    parser.add_argument("--llm-path", nargs="+", choices=("fast", "litellm"), default=["fast"])
    parser.add_argument("--turns", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--token-delay", type=float, default=0.02)
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per cell")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results.jsonl"))
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more bench flags")
    args = parser.parse_args()
    server: TempPostgres | None = None
    pg_url = None
    if "postgres" in args.db:
        server = TempPostgres()
        pg_url = server.start()
    try:
        for db in args.db:
            for llm_path in args.llm_path:
                for sessions in args.sessions:
                    report = run_cell(sessions, db, llm_path, args, pg_url)
                    with open(args.out, "a") as out:
                        out.write(json.dumps(report) + "\n")
                    print(
                        f"{db:8} {llm_path:7} {sessions:6} sessions: "
                        f"{report.get('turns_ok')} ok, {report.get('turns_failed')} failed, "
                        f"{report.get('turns_per_second')} turns/s, "
                        f"ttft p99 {report.get('ttft_p99_ms')} ms, "
                        f"ratio {report.get('baseline_ratio')}",
                        flush=True,
                    )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
