"""``opencode-api bench``: load-test the server with many concurrent sessions against a baseline."""

from opencode_api.bench._arguments import add_parser, build_parser
from opencode_api.bench._cli import main, run
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
