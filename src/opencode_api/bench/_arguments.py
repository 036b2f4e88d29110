"""The command line of ``opencode-api bench`` (also ``python -m opencode_api.bench``)."""

from __future__ import annotations

import argparse
from typing import Any

DESCRIPTION = "Load-test the server: N concurrent sessions x T turns over HTTP/SSE, and a baseline."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--sessions", type=int, default=100, help="concurrent sessions (default 100)")
    add("--turns", type=int, default=1, help="turns per session, one after another (default 1)")
    add(
        "--think-time", type=float, default=0.0, metavar="S",
        help="users who think: sessions start over S seconds and pause ~S between turns "
        "(steady load instead of one burst; default 0)",
    )  # fmt: skip
    add("--tokens", type=int, default=50, help="fake: text chunks per reply (default 50)")
    add("--token-delay", type=float, default=0.02, help="fake: seconds between chunks (0.02)")
    add("--ttft", type=float, default=0.0, help="fake: seconds before the first chunk (0)")
    add("--tool-calls", type=int, default=0, help="fake: todoread calls before the text reply")
    add("--payload-bytes", type=int, default=0, help="size of each user message (default short)")
    add("--model", default=None, help="a real provider's model (LiteLLM name): no fake provider")
    add("--url", default=None, help="target a running server instead of starting one")
    add("--server-pid", type=int, default=None, help="with --url: the server's pid, for RSS/CPU")
    add("--database-url", default=None, help="the server's DATABASE_URL (default: temp SQLite)")
    add(
        "--llm-path", choices=("fast", "litellm"), default="fast",
        help="fast: LLM_FAST_PATH=auto; litellm: LLM_FAST_PATH=off (also the baseline's client)",
    )  # fmt: skip
    add(
        "--ray", action="store_true",
        help="the server shards sessions over Ray (serve --ray: a local Ray it starts; needs "
        "--database-url postgresql://...); its CPU counts every Ray process",
    )  # fmt: skip
    add("--shards", type=int, default=2, help="with --ray: shards (default 2)")
    add(
        "--workers", type=int, default=1,
        help="serve --workers N (default 1); the server's CPU counts every worker",
    )  # fmt: skip
    add("--baseline", action="store_true", help="also measure a bare SSE proxy, report the ratio")
    add("--abort-test", action="store_true", help="also abort N busy turns mid-stream, time it")
    add(
        "--abort-every", type=int, default=1, metavar="K",
        help="with --abort-test: abort one session's turn in K, the others stream on (default 1)",
    )  # fmt: skip
    add(
        "--abort-after", type=float, default=0.0, metavar="S",
        help="with --abort-test: abort S seconds into the stream (default 0: at the first text)",
    )  # fmt: skip
    add(
        "--titles", action="store_true",
        help="the server titles new sessions as it does by default (AUTO_TITLE=true)",
    )  # fmt: skip
    add(
        "--profile", action="store_true",
        help="profile the server (cProfile): CPU per turn by component, turns and tail",
    )  # fmt: skip
    add("--idle", type=int, default=0, metavar="N", help="also activate N idle sessions: RSS each")
    add("--turn-timeout", type=float, default=300.0, help="seconds before a turn counts as hung")
    add("--json", action="store_true", help="one JSON object on stdout instead of the table")
    add("--plot", default=None, metavar="FILE.png", help="latency distributions (matplotlib)")
    add("--no-progress", action="store_true", help="no progress bar on stderr")
    add("--keep-logs", default=None, metavar="DIR", help="write child process logs to DIR")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bench`` on an argparse subparsers object (``parser.add_subparsers()``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="load-test the server (fake provider, baseline)", description=DESCRIPTION
    )
    add_arguments(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m opencode_api.bench", description=DESCRIPTION)
    add_arguments(parser)
    return parser
