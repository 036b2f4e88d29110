"""Run a fake provider from the command line: ``python -m opencode_api.testing --port 8900``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from opencode_api.testing._anthropic_fake import FakeAnthropicServer
from opencode_api.testing._openai_fake import FakeLLMServer
from opencode_api.testing._server import FakeProviderServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m opencode_api.testing", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--anthropic", action="store_true", help="speak the Anthropic Messages API")
    parser.add_argument("--tokens", type=int, default=50, help="chunks per default reply")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds before the first chunk")
    args = parser.parse_args(argv)
    kind: type[FakeProviderServer] = FakeAnthropicServer if args.anthropic else FakeLLMServer
    server = kind(
        host=args.host,
        port=args.port,
        tokens=args.tokens,
        token_delay=args.token_delay,
        ttft=args.ttft,
    )

    async def run() -> None:
        await server.start()
        print(
            f"fake {'Anthropic' if args.anthropic else 'OpenAI'} provider at {server.base_url}",
            flush=True,
        )
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
