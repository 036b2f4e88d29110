"""The baseline: a minimal aiohttp SSE proxy from the provider to the client, nothing else.

Same routes and frames as the real server where the bench looks (``POST /session``,
``POST /session/{id}/message``, ``POST /session/{id}/abort``, ``GET /health``), the same LLM client
as the server (``FastLLMClient`` or ``LiteLLMClient``), but no actors, store or agent loop: the
practical limit of this stack on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
from typing import Any

from aiohttp import web

from opencode_api.http import BatchAcceptSite, serve_app
from opencode_api.llm import (
    FastLLMClient,
    LiteLLMClient,
    LLMClient,
    LLMRequest,
    StreamFinish,
    TextDelta,
)
from opencode_api.settings import Settings

_CLIENT: web.AppKey[LLMClient] = web.AppKey("client", LLMClient)  # type: ignore[type-abstract]
_SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
_RUNNING: web.AppKey[dict[str, asyncio.Task[str]]] = web.AppKey("running", dict)
_IDS = itertools.count()


def _frame(seq: int, event: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps({"type": event, **data}, separators=(",", ":"))
    return f"id: {seq}\nevent: {event}\ndata: {payload}\n\n".encode()


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": "baseline"})


async def _create_session(request: web.Request) -> web.Response:
    return web.json_response({"id": f"ses_baseline{next(_IDS)}"})


async def _abort(request: web.Request) -> web.Response:
    task = request.app[_RUNNING].get(request.match_info["id"])
    cancelled = task is not None and not task.done()
    if task is not None:
        task.cancel()
    return web.json_response({"cancelled": cancelled})


async def _message(request: web.Request) -> web.StreamResponse:
    session_id = request.match_info["id"]
    body = await request.json()
    settings = request.app[_SETTINGS]
    llm = LLMRequest(
        model=body.get("model_id") or settings.default_model,
        messages=[{"role": "user", "content": body["content"]}],
        max_tokens=body.get("max_tokens"),
    )
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    seq = itertools.count(1)
    base = {"session_id": session_id, "message_id": "msg_baseline"}

    async def pump() -> str:
        stream = request.app[_CLIENT].stream(llm)
        finish = "stop"
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    await response.write(_frame(next(seq), "text", {**base, "text": event.text}))
                elif isinstance(event, StreamFinish):
                    finish = event.reason
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        return finish

    # The stream runs in its own task so an abort can cancel it and the handler still ends the
    # response with `done` (as the real server does).
    task = asyncio.create_task(pump())
    request.app[_RUNNING][session_id] = task
    try:
        stop_reason = await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            task.cancel()
            raise
        stop_reason = "aborted"
    finally:
        if request.app[_RUNNING].get(session_id) is task:
            del request.app[_RUNNING][session_id]
    await response.write(_frame(next(seq), "done", {**base, "stop_reason": stop_reason}))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def create_baseline_app(settings: Settings, llm_path: str) -> web.Application:
    """The baseline app; ``llm_path`` is ``fast`` (FastLLMClient) or ``litellm`` (LiteLLMClient)."""
    app = web.Application(client_max_size=settings.client_max_size)
    client: LLMClient = FastLLMClient(settings) if llm_path == "fast" else LiteLLMClient(settings)
    app[_CLIENT] = client
    app[_SETTINGS] = settings
    app[_RUNNING] = {}
    app.router.add_get("/health", _health)
    app.router.add_post("/session", _create_session)
    app.router.add_post("/session/{id}/message", _message)
    app.router.add_post("/session/{id}/abort", _abort)

    async def close_client(app: web.Application) -> None:
        await client.aclose()

    app.on_cleanup.append(close_client)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m opencode_api.bench._baseline")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--llm-path", choices=("fast", "litellm"), default="fast")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.llm_path == "litellm":
        from opencode_api.llm import warm_up

        # Seconds of import and tokenizer loading: before serving, so the bench measures serving.
        warm_up()
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop  # the server runs on uvloop when installed: same loop, fair comparison
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    # The server's own listening (batched accepts, same backlog): the same front door.
    serve_app(
        create_baseline_app(settings, args.llm_path),
        [
            lambda runner: BatchAcceptSite(
                runner, args.host, args.port, backlog=settings.listen_backlog
            )
        ],
        loop=loop,
        shutdown_timeout=5.0,
    )


if __name__ == "__main__":
    main()
