"""``serve --reload`` (development only): the server in a child process, restarted when a
source file changes."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def run_with_reload(command: list[str]) -> int:
    """Development only: run the server in a child process, restart it when a source changes."""
    root = Path(__file__).resolve().parent  # the package's sources

    def snapshot() -> dict[Path, float]:
        return {path: path.stat().st_mtime for path in root.rglob("*.py")}

    while True:
        before = snapshot()
        child = subprocess.Popen(command)
        try:
            while child.poll() is None:
                time.sleep(1.0)  # polling is plenty for a developer saving a file
                if snapshot() != before:
                    child.terminate()
                    child.wait()
                    break
            else:
                return child.returncode
        except KeyboardInterrupt:
            child.terminate()
            child.wait()
            return 0
