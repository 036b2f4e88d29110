"""``opencode-api bench``: load-test the server with many concurrent sessions against a baseline."""

from opencode_api.bench._cli import add_parser, build_parser, main, run
from opencode_api.bench._driver import LoadConfig, LoadDriver, LoadResult, TurnResult
from opencode_api.bench._report import percentile, summarize

__all__ = [
    "LoadConfig",
    "LoadDriver",
    "LoadResult",
    "TurnResult",
    "add_parser",
    "build_parser",
    "main",
    "percentile",
    "run",
    "summarize",
]
