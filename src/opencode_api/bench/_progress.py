"""The progress bar of ``opencode-api bench`` (tqdm, when the ``bench`` extra installed it)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from opencode_api.bench._driver import TurnResult


class Progress:
    """A tqdm bar on stderr (or nothing, also without the ``bench`` extra's tqdm installed);
    ``update`` is the driver's per-turn callback."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None

    def start(self, total: int, label: str) -> Callable[[TurnResult], None]:
        self.close()
        if self.enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return self.update
            self._bar = tqdm(total=total, desc=label, unit="turn", file=sys.stderr, leave=False)
        return self.update

    def update(self, turn: TurnResult) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if not turn.ok:
                self._bar.set_postfix_str(f"last error: {turn.error}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
