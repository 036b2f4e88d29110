"""Benchmark of opencode_api.runtime against a bare ``asyncio.Queue`` + task actor; prints one JSON.

Each side runs in a fresh child process (so RSS deltas are not blurred by memory freed earlier):
memory per idle actor (RSS delta over 10,000 actors), time to activate 10,000 actors, tell
throughput through one actor and across 1,000 actors, and control-lane latency while the handler
is busy. ``ratios`` is runtime / baseline for every key (for throughput, below 1 is slower).

    python benchmarks/runtime_bench.py
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

ACTORS = 10_000
TELLS = 200_000
FANOUT_ACTORS = 1_000
CONTROL_SAMPLES = 2_000

KEYS = (
    "idle_actor_bytes",
    "activate_10k_seconds",
    "tells_per_second",
    "tells_per_second_1k_actors",
    "control_latency_p50_ms",
    "control_latency_p99_ms",
)
HIGHER_IS_BETTER = {"tells_per_second", "tells_per_second_1k_actors"}


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- the runtime ------------------------------------------------------------------------------


async def bench_runtime() -> dict[str, float]:
    from opencode_api.runtime import Actor, Supervisor

    class Counter(Actor):
        count = 0

        async def receive(self, message: Any) -> Any:
            if isinstance(message, tuple):  # "busy": a long turn awaiting something
                entered, release = message
                entered.set()
                await release.wait()
            self.count += 1
            return self.count

        async def receive_control(self, message: Any) -> Any:
            return time.perf_counter() - message

    async def factory(actor_id: str) -> Actor:
        return Counter()

    result: dict[str, float] = {}
    async with Supervisor(factory, mailbox_size=TELLS + 1) as supervisor:
        gc.collect()
        before = rss_bytes()
        started = time.perf_counter()
        refs = [await supervisor.get_or_activate(f"actor-{i}") for i in range(ACTORS)]
        result["activate_10k_seconds"] = time.perf_counter() - started
        gc.collect()
        result["idle_actor_bytes"] = (rss_bytes() - before) / ACTORS

        one = refs[0]
        started = time.perf_counter()
        for i in range(TELLS):
            one.tell(i)
        await one.ask("done")
        result["tells_per_second"] = TELLS / (time.perf_counter() - started)

        fanout = refs[:FANOUT_ACTORS]
        started = time.perf_counter()
        for _ in range(TELLS // FANOUT_ACTORS):
            for ref in fanout:
                ref.tell(0)
        await asyncio.gather(*(ref.ask("done") for ref in fanout))
        result["tells_per_second_1k_actors"] = TELLS / (time.perf_counter() - started)

        busy = refs[1]
        entered, release = asyncio.Event(), asyncio.Event()
        turn = asyncio.ensure_future(busy.ask((entered, release)))
        await entered.wait()
        samples = [await busy.ask_control(time.perf_counter()) for _ in range(CONTROL_SAMPLES)]
        release.set()
        await turn
    result["control_latency_p50_ms"] = percentile(samples, 0.50) * 1000
    result["control_latency_p99_ms"] = percentile(samples, 0.99) * 1000
    return result


# -- the bare baseline: one asyncio.Queue and one task per actor ------------------------------


class BareActor:
    def __init__(self, mailbox_size: int) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(mailbox_size)
        self.count = 0
        self.task = asyncio.create_task(self.run())
        self.control: asyncio.Queue[Any] | None = None
        self.control_task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            message, answer = await self.queue.get()
            if isinstance(message, tuple):
                entered, release = message
                entered.set()
                await release.wait()
            self.count += 1
            if answer is not None:
                answer.set_result(self.count)

    async def run_control(self) -> None:
        assert self.control is not None
        while True:
            sent, answer = await self.control.get()
            answer.set_result(time.perf_counter() - sent)

    def tell(self, message: Any) -> None:
        self.queue.put_nowait((message, None))

    async def ask(self, message: Any) -> Any:
        answer = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((message, answer))
        return await answer

    async def ask_control(self, sent: float) -> Any:
        if self.control is None:  # only the latency run gets a control lane
            self.control = asyncio.Queue()
            self.control_task = asyncio.create_task(self.run_control())
        answer = asyncio.get_running_loop().create_future()
        self.control.put_nowait((sent, answer))
        return await answer

    def cancel(self) -> list[asyncio.Task[None]]:
        tasks = [task for task in (self.task, self.control_task) if task is not None]
        for task in tasks:
            task.cancel()
        return tasks


async def bench_baseline() -> dict[str, float]:
    result: dict[str, float] = {}
    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    actors = []
    for _ in range(ACTORS):
        actors.append(BareActor(TELLS + 1))
    await asyncio.sleep(0)  # let every task start and park on its queue
    result["activate_10k_seconds"] = time.perf_counter() - started
    gc.collect()
    result["idle_actor_bytes"] = (rss_bytes() - before) / ACTORS

    one = actors[0]
    started = time.perf_counter()
    for i in range(TELLS):
        one.tell(i)
    await one.ask("done")
    result["tells_per_second"] = TELLS / (time.perf_counter() - started)

    fanout = actors[:FANOUT_ACTORS]
    started = time.perf_counter()
    for _ in range(TELLS // FANOUT_ACTORS):
        for actor in fanout:
            actor.tell(0)
    await asyncio.gather(*(actor.ask("done") for actor in fanout))
    result["tells_per_second_1k_actors"] = TELLS / (time.perf_counter() - started)

    busy = actors[1]
    entered, release = asyncio.Event(), asyncio.Event()
    turn = asyncio.ensure_future(busy.ask((entered, release)))
    await entered.wait()
    samples = [await busy.ask_control(time.perf_counter()) for _ in range(CONTROL_SAMPLES)]
    release.set()
    await turn
    result["control_latency_p50_ms"] = percentile(samples, 0.50) * 1000
    result["control_latency_p99_ms"] = percentile(samples, 0.99) * 1000
    tasks = [task for actor in actors for task in actor.cancel()]
    await asyncio.gather(*tasks, return_exceptions=True)
    return result


# -- driver -----------------------------------------------------------------------------------


def run_child(side: str) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", side], check=True, capture_output=True, text=True
    )
    figures: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        bench = bench_runtime if sys.argv[2] == "runtime" else bench_baseline
        print(json.dumps(asyncio.run(bench())))
        return
    runtime = run_child("runtime")
    baseline = run_child("baseline")
    ratios = {key: runtime[key] / baseline[key] for key in KEYS if baseline[key]}
    within_3x = {
        key: (1 / ratio if key in HIGHER_IS_BETTER else ratio) <= 3.0
        for key, ratio in ratios.items()
    }
    report: dict[str, Any] = {
        **{key: round(runtime[key], 4) for key in KEYS},
        "baseline": {key: round(baseline[key], 4) for key in KEYS},
        "ratios": {key: round(value, 3) for key, value in ratios.items()},
        "within_3x_of_baseline": within_3x,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
