"""The shape of the source tree: no module over 400 lines (one concept per module)."""

from __future__ import annotations

from pathlib import Path

import opencode_api

MAX_LINES = 400
SOURCE = Path(opencode_api.__file__).parent


def test_no_source_module_is_over_400_lines() -> None:
    sizes = {
        str(path.relative_to(SOURCE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in SOURCE.rglob("*.py")
    }
    assert len(sizes) > 50  # the tree was found
    over = {name: lines for name, lines in sorted(sizes.items()) if lines > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them by concept): {over}"
