"""Small readings and derivations of ``opencode-api bench``: what the fake delays on purpose, the
database's kind, and the server's abort histogram from /metrics."""

from __future__ import annotations

import argparse

import aiohttp

from opencode_api.bench._driver import LoadDriver


async def abort_histogram(driver: LoadDriver) -> tuple[float, float] | None:
    """(aborts within 50 ms, aborts) from the server's /metrics; None when it has none."""
    try:
        async with driver.http.get(f"{driver.base_url}/metrics") as response:
            if response.status != 200:
                return None
            text = await response.text()
    except (OSError, aiohttp.ClientError):
        return None
    within = total = None
    for line in text.splitlines():
        if line.startswith('opencode_abort_seconds_bucket{le="0.05"}'):
            within = float(line.rsplit(" ", 1)[1])
        elif line.startswith("opencode_abort_seconds_count"):
            total = float(line.rsplit(" ", 1)[1])
    return None if within is None or total is None else (within, total)


def expected_ttft(args: argparse.Namespace) -> float | None:
    """What the fake spends on purpose before the first text chunk reaches the server."""
    if args.model:
        return None
    # Frame 0 (the role chunk) comes after `ttft`; every later frame after `token_delay`.
    expected = float(args.ttft + args.token_delay)
    if args.tool_calls:
        # Approximate: a tool step first (role, 3 frames per call, finish, usage, [DONE]).
        expected += args.ttft + args.token_delay * (3 * args.tool_calls + 3)
    return expected


def database_kind(args: argparse.Namespace) -> str:
    if args.url:
        return "external server"
    url = args.database_url or "sqlite"
    return url.split(":", 1)[0]
