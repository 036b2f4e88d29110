"""``opencode-api bench``: start the fake provider and the server, drive the load, report.

The fake provider, the server and the baseline run as child processes, so the server's RSS and
CPU are its own; the load client is this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from opencode_api.bench._arguments import build_parser
from opencode_api.bench._driver import LoadConfig, LoadDriver, LoadResult
from opencode_api.bench._figures import abort_histogram, database_kind, expected_ttft
from opencode_api.bench._processes import Child, ProcessStats, free_port, spawn, wait_healthy
from opencode_api.bench._profile import budget, render, take_window
from opencode_api.bench._progress import Progress
from opencode_api.bench._report import ServerFigures, plot, print_table, summarize
from opencode_api.bench._store_meter import StoreMeter

_IDLE_CONCURRENCY = 200
_SETTLE_SECONDS = 1.0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Bench:
    def __init__(self, args: argparse.Namespace, log_dir: Path) -> None:
        self.args = args
        self.log_dir = log_dir
        self.progress = Progress(not args.no_progress)
        self.fake_url: str | None = None
        self.fake: Child | None = None
        self.results: dict[str, LoadResult] = {}
        self.profile_prefix = str(log_dir / "server-profile")
        self.profile: dict[str, dict[str, float]] | None = None

    def server_env(self, port: int) -> dict[str, str]:
        args = self.args
        env = {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "AUTO_TITLE": "true" if args.titles else "false",
            "LLM_FAST_PATH": "auto" if args.llm_path == "fast" else "off",
            "LOG_LEVEL": "WARNING",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "DATABASE_URL": args.database_url or f"sqlite:///{self.log_dir / 'bench.db'}",
        }
        if args.profile:
            env["CPU_PROFILE"] = self.profile_prefix
        if args.ray:
            env["RAY_USAGE_STATS_ENABLED"] = "0"  # Ray would report usage over the network
        if args.model:
            env["DEFAULT_MODEL"] = args.model
        else:
            assert self.fake_url is not None
            env.update(
                OPENAI_API_BASE=self.fake_url,
                OPENAI_API_KEY="sk-bench",
                DEFAULT_MODEL="openai/gpt-4o-mini",
            )
        return env

    async def start_fake(self) -> Child:
        args = self.args
        child, line = await spawn(
            "fake-provider",
            "opencode_api.bench._fake",
            [
                *("--tokens", str(args.tokens), "--token-delay", str(args.token_delay)),
                *("--ttft", str(args.ttft), "--tool-calls", str(args.tool_calls)),
            ],
            log_dir=self.log_dir,
            ready_line=True,
        )
        self.fake_url = line.rsplit(" ", 1)[-1]
        self.fake = child
        return child

    async def start_target(self, kind: str) -> tuple[Child | None, str]:
        if kind == "server" and self.args.url:
            return None, self.args.url.rstrip("/")
        port = free_port()
        if kind == "server":
            module, argv = "opencode_api", ["serve", "--host", "127.0.0.1", "--port", str(port)]
            if self.args.ray:
                argv += ["--ray", "--shards", str(self.args.shards)]
            if self.args.workers > 1:
                argv += ["--workers", str(self.args.workers)]
        else:
            module = "opencode_api.bench._baseline"
            argv = ["--port", str(port), "--llm-path", self.args.llm_path]
        child, _ = await spawn(kind, module, argv, log_dir=self.log_dir, env=self.server_env(port))
        child.stats.tree = kind == "server" and (self.args.ray or self.args.workers > 1)
        url = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(child, url)
        except BaseException:
            await child.stop()
            raise
        return child, url

    async def phase(
        self, driver: LoadDriver, stats: ProcessStats | None, config: LoadConfig, label: str
    ) -> tuple[LoadResult, ServerFigures, dict[str, float]]:
        """One load phase; also the CPU seconds the client and the fake provider spent on it."""
        driver.on_turn = self.progress.start(config.sessions * config.turns, label)
        # RSS from before the sessions exist; CPU from after they are created (turns only).
        rss_before = stats.rss() if stats else None
        marks: dict[str, float] = {}
        by_process: dict[str, float] = {}

        def created() -> None:
            if self.args.profile and label == "server" and stats is not None:
                os.kill(stats.pid, signal.SIGUSR1)  # window 0: start-up, warm-up, creation
            marks["client"] = _cpu_self()
            if self.fake is not None:
                marks["provider"] = self.fake.stats.cpu_seconds()
            if stats is not None:
                marks["server"] = stats.cpu_seconds()
                if stats.tree:
                    by_process.update(stats.cpu_by_process())

        try:
            async with asyncio.TaskGroup() as group:
                sampler = group.create_task(stats.sample()) if stats else None
                if stats:
                    stats.reset_peak()
                try:
                    result = await driver.run(config, on_created=created)
                finally:
                    if sampler is not None:
                        sampler.cancel()
        finally:
            self.progress.close()
        figures = ServerFigures()
        if stats is not None and "server" in marks:
            stats.rss()
            cpu_seconds = stats.cpu_seconds() - marks["server"]
            split = None
            if stats.tree:
                now = stats.cpu_by_process()
                split = {kind: now[kind] - by_process.get(kind, 0.0) for kind in now}
            profiling = self.args.profile and label == "server"
            if profiling:
                turns_window = await take_window(stats.pid, self.profile_prefix, 1)
            tail_cpu = await stats.quiet()
            figures = ServerFigures(
                rss_before=rss_before,
                peak_rss=stats.peak_rss,
                high_water_mark=stats.high_water_mark(),
                cpu_seconds=cpu_seconds,
                tail_cpu_seconds=tail_cpu,
                cpu_by_process=split,
            )
            if profiling:
                tail_window = await take_window(stats.pid, self.profile_prefix, 2)
                ok = sum(1 for turn in result.turns if turn.ok)
                self.profile = {
                    "turns_ms_per_turn": budget(turns_window, cpu_seconds, ok),
                    "tail_ms_per_turn": budget(tail_window, tail_cpu, ok),
                }
        other = {"client": _cpu_self() - marks.get("client", _cpu_self())}
        if self.fake is not None and "provider" in marks:
            other["provider"] = self.fake.stats.cpu_seconds() - marks["provider"]
        return result, figures, other

    async def measure(self, kind: str) -> dict[str, Any]:
        """Every phase against one target (the server, or the baseline)."""
        args = self.args
        child, url = await self.start_target(kind)
        _say(f"[bench] {kind} at {url}" + (f" (pid {child.pid})" if child else ""))
        stats = child.stats if child else None
        if kind == "server" and stats is None and args.server_pid:
            stats = ProcessStats(args.server_pid)
        try:
            async with LoadDriver(url) as driver:
                warm = LoadConfig(sessions=1, turns=1, model=args.model if args.url else None)
                warmed = await driver.run(warm)
                if not warmed.turns or not warmed.turns[0].ok:
                    failure = warmed.turns[0].error if warmed.turns else dict(warmed.create_errors)
                    raise RuntimeError(f"warm-up turn against the {kind} failed: {failure}")
                config = LoadConfig(
                    sessions=args.sessions,
                    turns=args.turns,
                    payload_bytes=args.payload_bytes,
                    model=args.model if args.url else None,
                    turn_timeout=args.turn_timeout,
                    think_time=args.think_time,
                )
                meter = StoreMeter(url, args.database_url) if kind == "server" else None
                if meter is not None:
                    await meter.start()
                result, figures, other_cpu = await self.phase(driver, stats, config, kind)
                self.results[kind] = result
                summary = summarize(
                    result,
                    expected_ttft=expected_ttft(args),
                    server=figures,
                    client_cpu_seconds=other_cpu["client"],
                    provider_cpu_seconds=other_cpu.get("provider"),
                )
                if meter is not None:
                    summary.update(await meter.figures(summary["turns_ok"]))
                if args.abort_test:
                    summary["abort"] = await self.abort_phase(driver, stats, config, kind)
                if kind == "server" and self.profile is not None:
                    summary["profile"] = self.profile
                if args.idle and kind == "server":
                    summary["idle"] = await self.idle_phase(driver, stats)
        finally:
            if child is not None:
                code = await child.stop()
                if code not in (0, None, -15):
                    _say(f"[bench] {kind} exited with {code}; log tail:\n{child.log_tail()}")
        if child is not None and summary["turns_failed"]:
            _say(
                f"[bench] {kind} had failed turns; its log ({child.log_path}):\n{child.log_tail()}"
            )
        return summary

    async def abort_phase(
        self, driver: LoadDriver, stats: ProcessStats | None, config: LoadConfig, kind: str
    ) -> dict[str, Any]:
        abort_config = LoadConfig(
            sessions=config.sessions,
            turns=1,
            payload_bytes=config.payload_bytes,
            model=config.model,
            turn_timeout=config.turn_timeout,
            abort=True,
            abort_every=self.args.abort_every,
            abort_after=self.args.abort_after,
        )
        before = await abort_histogram(driver)
        result, figures, _ = await self.phase(driver, stats, abort_config, f"{kind} abort")
        after = await abort_histogram(driver)
        summary = summarize(result, expected_ttft=None, server=figures)
        abort: dict[str, Any] = summary["abort"]
        if before is not None and after is not None:
            # The server's own clock (opencode_abort_seconds): request to end of stream, before
            # any client reads it; the client-side figures above include the client's loop.
            count = after[1] - before[1]
            abort["server_aborts_timed"] = count
            abort["server_within_50ms"] = (
                round((after[0] - before[0]) / count, 3) if count else None
            )
        abort["turns_failed"] = summary["turns_failed"]
        abort["errors"] = summary["errors"]
        return abort

    async def idle_phase(self, driver: LoadDriver, stats: ProcessStats | None) -> dict[str, Any]:
        """Activate N sessions with a one-token turn each; the RSS they keep, per session."""
        count = self.args.idle
        # A few hundred at a time, on connections closed before the RSS is read: what stays is
        # the sessions' memory, not the peak of 10,000 turns in flight nor 10,000 idle sockets.
        config = LoadConfig(
            sessions=count,
            turns=1,
            max_tokens=1,
            turn_timeout=self.args.turn_timeout,
            concurrency=_IDLE_CONCURRENCY,
        )
        before = stats.rss() if stats else None
        async with LoadDriver(driver.base_url, headers=driver.headers) as idle_driver:
            result, figures, _ = await self.phase(idle_driver, stats, config, "idle activation")
        await asyncio.sleep(_SETTLE_SECONDS)  # the server sees the connections close
        after = stats.rss() if stats else None
        ok = sum(1 for turn in result.turns if turn.ok)
        per = None
        if before is not None and after is not None and ok:
            per = max(0, after - before) // ok
        return {
            "sessions": count,
            "activated": ok,
            "rss_before_bytes": before,
            "rss_after_bytes": after,
            "rss_per_idle_session_bytes": per,
            "activation_seconds": round(result.wall, 3),
            "errors": summarize(result, expected_ttft=None, server=figures)["errors"],
        }

    async def run(self) -> dict[str, Any]:
        args = self.args
        async with contextlib.AsyncExitStack() as stack:
            if not args.model and (not args.url or args.baseline):
                fake = await self.start_fake()
                stack.push_async_callback(fake.stop)
                _say(f"[bench] fake provider at {self.fake_url} (pid {fake.pid})")
            report = await self.measure("server")
            if args.baseline:
                baseline = await self.measure("baseline")
                report["baseline"] = baseline
                ours, theirs = report["turns_per_second"], baseline["turns_per_second"]
                report["baseline_ratio"] = round(ours / theirs, 3) if ours and theirs else None
        report.update(
            llm_path=args.llm_path,
            database=database_kind(args),
            config={
                "tokens": args.tokens,
                "token_delay": args.token_delay,
                "ttft": args.ttft,
                "tool_calls": args.tool_calls,
                "payload_bytes": args.payload_bytes,
                "model": args.model or "openai/gpt-4o-mini (fake provider)",
            },
            machine={"cpus": os.cpu_count(), "python": platform.python_version()},
        )
        return report


async def run(args: argparse.Namespace) -> int:
    """Run the bench as parsed by ``add_parser``/``build_parser``; 0 when no turn failed."""
    if args.sessions < 1 or args.turns < 1:
        _say("bench: --sessions and --turns must be >= 1")
        return 2
    main_task = asyncio.current_task()
    if main_task is not None:
        # SIGTERM unwinds like Ctrl-C: the child processes are stopped, not orphaned.
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    with contextlib.ExitStack() as stack:
        if args.keep_logs:
            log_dir = Path(args.keep_logs)
            os.makedirs(log_dir, exist_ok=True)
        else:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="oc-bench-")))
        bench = _Bench(args, log_dir)
        try:
            report = await bench.run()
        except RuntimeError as exc:
            # A child that would not start, or a warm-up turn that failed: nothing to measure.
            _say(f"bench: {exc}")
            return 1
    if args.plot:
        try:
            plot(args.plot, bench.results)
        except ImportError:
            _say("bench: --plot needs matplotlib (pip install 'opencode-api[bench]')")
    if args.json:
        print(json.dumps(report), flush=True)
    else:
        print_table(report)
        if "profile" in report:
            profile = report["profile"]
            print("\nserver CPU per turn by component (ms; cProfile shares of /proc CPU):")
            print(render(profile["turns_ms_per_turn"], profile["tail_ms_per_turn"]))
    failed = report["turns_failed"] + (report.get("baseline") or {}).get("turns_failed", 0)
    return 0 if failed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import uvloop  # the load client needs its loop to be cheap too
    except ImportError:
        return asyncio.run(run(args))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(args))
