"""The bench's fake provider: the OpenAI fake of ``opencode_api.testing`` plus per-request shaping.

Stateless on purpose (thousands of sessions share it): a request that offers tools and does not
end with a tool result gets ``tool_calls`` todoread calls; anything else gets the text reply,
cut to the request's ``max_tokens`` (so one-token activation turns stay cheap).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from opencode_api.testing import FakeLLMServer, Reply, ToolCall, default_reply

# Linux caps it at net.core.somaxconn (4096 here).


class BenchFakeServer(FakeLLMServer):
    """``FakeLLMServer`` whose reply depends only on the request body (see the module docstring)."""

    def __init__(self, *, tool_calls: int = 0, tokens: int = 50, **kwargs: Any) -> None:
        super().__init__(tokens=tokens, **kwargs)
        self.tool_calls = tool_calls
        self.tokens = tokens
        self._ids = itertools.count()
        self._short: dict[int, Reply] = {}

    def stream_frames(self, body: dict[str, Any], reply: Reply) -> list[bytes]:
        if reply is self.default_reply:
            reply = self._reply_for(body)
        return super().stream_frames(body, reply)

    def _reply_for(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages") or [{}]
        if self.tool_calls and body.get("tools") and messages[-1].get("role") != "tool":
            # Unique ids: the same id in two turns of one session would be one call to a store.
            calls = [
                ToolCall("todoread", {}, id=f"call_bench_{next(self._ids)}")
                for _ in range(self.tool_calls)
            ]
            return Reply(tool_calls=calls)
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and 0 < limit < self.tokens:
            if limit not in self._short:
                self._short[limit] = default_reply(limit)
            return self._short[limit]
        return self.default_reply


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m opencode_api.bench._fake", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--ttft", type=float, default=0.0)
    parser.add_argument("--tool-calls", type=int, default=0)
    args = parser.parse_args(argv)
    server = BenchFakeServer(
        host=args.host,
        port=args.port,
        tokens=args.tokens,
        token_delay=args.token_delay,
        ttft=args.ttft,
        tool_calls=args.tool_calls,
    )

    async def run() -> None:
        await server.start()
        # The parent reads this line: readiness (and the port chosen) without polling.
        print(f"fake provider at {server.base_url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()

    # uvloop when installed: the fake is the load's infrastructure and must not be its limit.
    new_loop: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    with contextlib.suppress(ImportError):
        import uvloop

        new_loop = uvloop.new_event_loop
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(run())


if __name__ == "__main__":
    main()
