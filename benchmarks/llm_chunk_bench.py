"""CPU cost per streamed chunk of each LLM client path, against the local fake provider.

The fake runs in a child process, so this process's CPU time is the client's alone. Prints one
JSON object: microseconds of CPU per chunk for each route, and the fast path's ratio to parsing
the same SSE lines with ``json.loads`` alone.

    python benchmarks/llm_chunk_bench.py [--tokens 200] [--replies 20] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import aiohttp

from opencode_api.llm._fast_client import FastLLMClient
from opencode_api.llm._litellm_client import LiteLLMClient, import_litellm
from opencode_api.llm._protocol import LLMRequest
from opencode_api.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_fake(tokens: int, anthropic: bool) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "opencode_api.testing",
        "--port",
        str(port),
        "--tokens",
        str(tokens),
    ]
    if anthropic:
        args.append("--anthropic")
    process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    # The fake prints its address once it listens: readiness without polling.
    line = await process.stdout.readline()
    if not line:
        raise RuntimeError("the fake provider did not start")
    base = f"http://127.0.0.1:{port}"
    return process, (base if anthropic else f"{base}/v1")


async def measure(
    run_one: Callable[[], Awaitable[int]], replies: int, concurrency: int
) -> dict[str, float]:
    await run_one()  # warm-up: imports, pools, caches
    chunks = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    remaining = replies
    while remaining > 0:
        batch = min(concurrency, remaining)
        chunks += sum(await asyncio.gather(*(run_one() for _ in range(batch))))
        remaining -= batch
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "us_per_chunk": round(cpu / chunks * 1e6, 2),
        "chunks": chunks,
        "wall_s": round(wall, 3),
    }


def client_runner(
    client: FastLLMClient | LiteLLMClient, model: str, base: str
) -> Callable[[], Awaitable[int]]:
    async def run_one() -> int:
        request = LLMRequest(
            model=model, messages=[{"role": "user", "content": "go"}], api_base=base, api_key="k"
        )
        count = 0
        stream = client.stream(request)
        try:
            async for _ in stream:
                count += 1
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        return count

    return run_one


def json_runner(session: aiohttp.ClientSession, base: str) -> Callable[[], Awaitable[int]]:
    async def run_one() -> int:
        body = {
            "model": "m",
            "messages": [],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        count = 0
        async with session.post(f"{base}/chat/completions", json=body) as response:
            async for line in response.content:
                if line.startswith(b"data:"):
                    data = line[5:].strip()
                    if data != b"[DONE]":
                        json.loads(data)
                        count += 1
        return count

    return run_one


async def parse_only(session: aiohttp.ClientSession, base: str, replies: int) -> dict[str, float]:
    """``json.loads`` over one reply's captured data lines, no I/O: the floor."""
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    async with session.post(f"{base}/chat/completions", json=body) as response:
        lines = [line[5:].strip() async for line in response.content if line.startswith(b"data:")]
    lines = [line for line in lines if line != b"[DONE]"]
    cpu0 = time.process_time()
    for _ in range(replies):
        for line in lines:
            json.loads(line)
    cpu = time.process_time() - cpu0
    return {
        "us_per_chunk": round(cpu / (replies * len(lines)) * 1e6, 2),
        "chunks": replies * len(lines),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    import_litellm()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    openai_fake, openai_base = await start_fake(args.tokens, anthropic=False)
    anthropic_fake, anthropic_base = await start_fake(args.tokens, anthropic=True)
    fast = FastLLMClient(settings)
    lite = LiteLLMClient(settings)
    results: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession() as session:
            routes: dict[str, Callable[[], Awaitable[int]]] = {
                "json_loads_lines": json_runner(session, openai_base),
                "fast_openai": client_runner(fast, "openai/fake-model", openai_base),
                "fast_anthropic": client_runner(fast, "anthropic/claude-haiku-4-5", anthropic_base),
                "litellm_openai": client_runner(lite, "openai/fake-model", openai_base),
                "litellm_hosted_vllm": client_runner(lite, "hosted_vllm/fake-model", openai_base),
                "litellm_anthropic": client_runner(
                    lite, "anthropic/claude-haiku-4-5", anthropic_base
                ),
            }
            results["json_loads_no_io"] = await parse_only(session, openai_base, args.replies)
            for name, run_one in routes.items():
                try:
                    results[name] = await measure(run_one, args.replies, args.concurrency)
                except Exception as exc:  # a route that fails is reported, not fatal
                    results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        await fast.aclose()
        for process in (openai_fake, anthropic_fake):
            process.terminate()
            await process.wait()
    base = results["json_loads_lines"].get("us_per_chunk")
    ratios = {
        name: round(value["us_per_chunk"] / base, 2)
        for name, value in results.items()
        if base and "us_per_chunk" in value
    }
    return {
        "tokens_per_reply": args.tokens,
        "replies": args.replies,
        "concurrency": args.concurrency,
        "routes": results,
        "ratio_to_json_loads": ratios,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--replies", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=10)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
