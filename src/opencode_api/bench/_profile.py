"""``bench --profile``: the server's CPU split by component, per turn, during turns and in the tail.

The server runs with ``CPU_PROFILE`` (see ``opencode_api._profiling``); the bench signals it when
the turns end and again when it is quiet, reads the two windows and splits the CPU it measured
from /proc (not the profiler's inflated clock) by each component's share of the profile's own
time. Functions are put in a component by the file they live in.
"""

from __future__ import annotations

import asyncio
import os
import pstats
import signal
from dataclasses import dataclass
from pathlib import Path

# (component, substrings of a function's file name), first match wins.
_COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("store", ("opencode_api/store/", "sqlite3", "aiosqlite", "asyncpg")),
    ("llm client", ("opencode_api/llm/",)),
    ("LiteLLM/openai/httpx", ("litellm", "/openai/", "httpx", "httpcore")),
    ("agent loop and actors", ("opencode_api/actors/",)),
    ("runtime (mailbox, outbox)", ("opencode_api/runtime/",)),
    ("tools", ("opencode_api/tools/",)),
    ("http routes and SSE", ("opencode_api/http/",)),
    ("aiohttp", ("aiohttp", "multidict", "yarl")),
    ("json and pydantic", ("json", "pydantic", "orjson")),
    ("logging", ("structlog", "logging")),
    ("event loop", ("asyncio", "uvloop", "selectors")),
)


@dataclass(frozen=True, slots=True)
class Window:
    """One profiled window: seconds of profile time per component, and GC seconds."""

    components: dict[str, float]
    gc_seconds: float


def component_of(filename: str) -> str:
    if filename == "~":
        return "C functions called from C"
    for name, needles in _COMPONENTS:
        if any(needle in filename for needle in needles):
            return name
    return "other Python"


def read_window(prefix: str, index: int) -> Window:
    stats = pstats.Stats(f"{prefix}.{index}.pstats")
    components: dict[str, float] = {}
    entries = stats.stats.items()  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, callers) in entries:
        if filename == "~" and callers:
            # A C function (json.dumps, socket.send, ...) counts for whoever called it: pstats
            # keeps the time per caller.
            for (caller_file, _l, _n), edge in callers.items():
                key = component_of(caller_file)
                components[key] = components.get(key, 0.0) + edge[2]
            continue
        key = component_of(filename)
        components[key] = components.get(key, 0.0) + tottime
    gc_seconds = float(Path(f"{prefix}.{index}.gc").read_text() or 0)
    return Window(components, gc_seconds)


async def take_window(pid: int, prefix: str, index: int, timeout: float = 30.0) -> Window:
    """Ask the server for window ``index`` and read it once written."""
    os.kill(pid, signal.SIGUSR1)
    path = Path(f"{prefix}.{index}.pstats")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(path.exists):
        if loop.time() > deadline:
            raise TimeoutError(f"the server wrote no profile to {path}")
        await asyncio.sleep(0.05)
    return await asyncio.to_thread(read_window, prefix, index)


def budget(window: Window, cpu_seconds: float, turns: int) -> dict[str, float]:
    """Milliseconds of measured CPU per turn for each component (largest first), and GC."""
    total = sum(window.components.values()) or 1.0
    scale = cpu_seconds * 1000.0 / max(turns, 1) / total
    rows = {name: round(seconds * scale, 3) for name, seconds in window.components.items()}
    ordered = dict(sorted(rows.items(), key=lambda item: -item[1]))
    ordered["garbage collection (inside the rows above)"] = round(
        min(window.gc_seconds, total) * scale, 3
    )
    return ordered


def render(turns: dict[str, float], tail: dict[str, float]) -> str:
    names = list(dict.fromkeys([*turns, *tail]))
    lines = [f"{'component':<45} {'turns ms':>9} {'tail ms':>9}"]
    for name in names:
        lines.append(f"{name:<45} {turns.get(name, 0.0):>9.3f} {tail.get(name, 0.0):>9.3f}")
    return "\n".join(lines)
