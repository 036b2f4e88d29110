"""Log lines: one JSON object per line, whoever logged it, with secrets masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from opencode_api._logging import configure_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    try:
        yield out
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_library_lines_are_trimmed_and_masked(stream: io.StringIO) -> None:
    # LiteLLM starts some messages with a newline; the JSON event must not.
    message = "\nLiteLLM completion() model= gpt-4o-mini key=sk-abcdefgh123\n"
    logging.getLogger("LiteLLM").info(message)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["event"].startswith("LiteLLM completion()")
    assert "sk-abcdefgh123" not in lines[0]
