"""The command line: ``opencode-api serve [--host --port --reload]`` (the default command) and
``opencode-api bench`` (load testing, see BENCHMARKS.md); ``opencode-api --version``.

Also ``python -m opencode_api``. Subcommands are argparse subparsers so others can be added.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opencode_api._version import __version__
from opencode_api.errors import OpenCodeError

if TYPE_CHECKING:
    from opencode_api.http import ListenError

_SERVE_DESCRIPTION = """\
Run the HTTP API server until SIGTERM or SIGINT (Ctrl-C), which give running turns
SHUTDOWN_GRACE seconds to finish. Swagger UI is at /docs, ReDoc at /redoc, the OpenAPI
document at /openapi.json."""

# What a remedy for a failed bind looks like, by errno.
_LISTEN_HINTS = {
    errno.EADDRINUSE: "set PORT or --port",
    errno.EACCES: "ports below 1024 need privileges: set PORT or --port",
    errno.EADDRNOTAVAIL: "not an address of this machine: set HOST or --host",
}


def _serve_epilog() -> str:
    from opencode_api.settings import Settings

    fields = Settings.model_fields
    database = Settings.model_construct().resolved_database_url()
    return f"""\
environment (also read from .env; --host and --port override HOST and PORT):
  HOST, PORT                 interface and port (default {fields["host"].default}, \
{fields["port"].default})
  DATABASE_URL               sqlite:///path or postgresql://...
                             (default {database})
  DEFAULT_MODEL              LiteLLM model string (default {fields["default_model"].default})
  OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY
                             provider API keys
  OPENAI_API_BASE            an OpenAI-compatible endpoint (proxy, local model)
  OPENCODE_SERVER_PASSWORD   HTTP Basic password for every route but /health
  LOG_LEVEL, LOG_FORMAT      default {fields["log_level"].default} and \
{fields["log_format"].default} (or console)
  WORKERS                    processes sharing the port (default \
{fields["workers"].default})

Every variable: README.md, section "Environment variables"."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opencode-api",
        description="An actor-based LLM agent API server (REST and SSE).",
        epilog="The environment variables: opencode-api serve --help.",
    )
    parser.add_argument("--version", action="version", version=f"opencode-api {__version__}")
    # `serve` is the default command, so its options are accepted without it too.
    _serve_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the HTTP server (the default)",
        description=_SERVE_DESCRIPTION,
        epilog=_serve_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _serve_arguments(serve)
    from opencode_api.bench import add_parser as add_bench_parser

    add_bench_parser(sub)
    return parser


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="interface to bind (HOST, default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="port (PORT, default 7860)")
    parser.add_argument(
        "--reload", action="store_true", help="restart when a source file changes (development)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes sharing the port, one core each (WORKERS, default 1)",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="shard sessions over Ray actors: a cluster's address, 'auto' for the local one, "
        "none for RAY_ADDRESS (needs PostgreSQL and the ray extra)",
    )
    parser.add_argument("--shards", type=int, default=None, help="Ray shards (SHARDS, default 16)")
    parser.add_argument(
        "--shard-namespace", default=None, help="Ray namespace of the shards (SHARD_NAMESPACE)"
    )


def serve(
    host: str | None,
    port: int | None,
    *,
    reload: bool = False,
    workers: int | None = None,
    ray: dict[str, Any] | None = None,
) -> int:
    """Run the server until SIGTERM/SIGINT; returns the exit status (0 after a clean drain)."""
    # (LiteLLM's price map is never fetched: opencode_api/__init__.py sees to it.)
    if reload:
        from opencode_api._reload import run_with_reload

        return run_with_reload([sys.executable, "-m", "opencode_api", "serve", *_args(host, port)])
    from opencode_api.settings import Settings

    settings = Settings()
    if ray:
        settings = settings.model_copy(update=ray)
    if settings.ray_cluster is not None:
        if settings.resolved_database_url().startswith("sqlite"):
            print(
                "opencode-api: --ray needs PostgreSQL (DATABASE_URL=postgresql://...): shards "
                "on other nodes cannot share a SQLite file",
                file=sys.stderr,
            )
            return 2
        workers = 1  # one front end per process; the shards carry the sessions
    count = workers if workers is not None else settings.workers
    if count > 1 and settings.worker_socket_dir is None:
        return _run_workers(host, port, count)

    from opencode_api._logging import configure_logging
    from opencode_api.http import ListenError, bind_sockets

    if host is not None:
        settings = settings.model_copy(update={"host": host})
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    configure_logging(settings.log_level, settings.log_format)
    # The port is bound before anything starts: a taken port fails at once, before the runtime
    # opens the database (where it would mark the running turns of the server holding the port
    # as interrupted) and before seconds of start-up. Bound, not listening: until the app is
    # ready, connections are refused as before.
    try:
        bound = bind_sockets(settings.host, settings.port, reuse_port=settings.workers > 1)
    except ListenError as exc:
        return _cannot_listen(exc)
    try:
        _serve_on(settings, bound)
    except ListenError as exc:  # a site failed after start-up; the app's cleanup has run
        return _cannot_listen(exc)
    except OpenCodeError as exc:  # settings the runtime refused at start-up (MCP, webhooks...)
        print(f"opencode-api: cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        for sock in bound:
            sock.close()  # a no-op for those the site has closed
    return 0


def _serve_on(settings: Any, bound: list[socket.socket]) -> None:
    """Serve the app on the bound TCP sockets (and a worker's Unix socket) until a signal."""
    from aiohttp import web

    from opencode_api.http import create_app

    loop = _new_loop()
    app = create_app(settings)
    unix_socket: str | None = None
    if settings.workers > 1 and settings.worker_socket_dir is not None:
        from opencode_api.actors import socket_path

        unix_socket = str(socket_path(settings.worker_socket_dir, settings.worker_index))
    from opencode_api.http import BatchAcceptSite, SiteFactory, serve_app

    # Workers share the public port (the kernel spreads connections) and each has its own Unix
    # socket, where the others forward requests about the sessions it owns. A deep accept queue
    # (aiohttp's default is 128) and batched accepts keep bursts of thousands of clients from
    # being dropped or left waiting in the kernel (see opencode_api.http._listen).
    sites: list[SiteFactory] = [
        lambda runner: BatchAcceptSite(
            runner,
            settings.host,
            settings.port,
            backlog=settings.listen_backlog,
            reuse_port=settings.workers > 1,
            sockets=bound,
        )
    ]
    if unix_socket is not None:
        unix_path = unix_socket
        sites.append(
            lambda runner: web.UnixSite(runner, unix_path, backlog=settings.listen_backlog)
        )
    port = bound[0].getsockname()[1]  # with PORT=0, the one the system chose
    serve_app(
        app,
        sites,
        loop=loop,
        shutdown_timeout=settings.shutdown_grace + 5.0,
        access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
        # The readiness line, once every site listens (supervisors and tests wait for it).
        on_listening=lambda: _listening(settings, port),
    )


def _cannot_listen(exc: ListenError) -> int:
    """One line on stderr, not a traceback: the address, the reason, and what to change."""
    unknown_host = isinstance(exc.__cause__, socket.gaierror)
    hint = "set HOST or --host" if unknown_host else _LISTEN_HINTS.get(exc.errno or 0)
    print(f"opencode-api: {exc}" + (f" ({hint})" if hint else ""), file=sys.stderr)
    return 1


def public_url(host: str, port: int) -> str:
    """The server's URL for a browser on this machine: ``localhost`` for every interface."""
    from yarl import URL

    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    return str(URL.build(scheme="http", host=host, port=port))


def _listening(settings: Any, port: int) -> None:
    import structlog

    from opencode_api._heap import settle_heap

    settle_heap()
    if settings.cpu_profile:
        from opencode_api._profiling import WindowProfiler

        WindowProfiler(settings.cpu_profile).start()

    url = public_url(settings.host, port)
    structlog.get_logger("opencode_api.server").info(
        "server listening",
        url=url,
        docs=f"{url}/docs",
        host=settings.host,
        port=port,
        worker=settings.worker_index if settings.workers > 1 else None,
    )


def _run_workers(host: str | None, port: int | None, count: int) -> int:
    """Start ``count`` worker processes and supervise them until SIGTERM/SIGINT."""
    import signal
    import tempfile

    from opencode_api.http import ListenError, bind_sockets
    from opencode_api.settings import Settings

    settings = Settings()
    # A port another server holds fails here, in one line rather than one per worker, and
    # before that server's running turns are marked below.
    try:
        probe = bind_sockets(
            settings.host if host is None else host, settings.port if port is None else port
        )
    except ListenError as exc:
        return _cannot_listen(exc)
    for sock in probe:
        sock.close()
    # Turns left running by a dead server are marked once, here, before any worker serves:
    # a worker starting later must not mark the live turns of one already serving.
    asyncio.run(_mark_interrupted(settings))
    socket_dir = tempfile.mkdtemp(prefix="opencode-workers-")
    env = {
        **os.environ,
        "WORKERS": str(count),
        "WORKER_SOCKET_DIR": socket_dir,
        "MARK_INTERRUPTED_ON_START": "false",
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "opencode_api", "serve", *_args(host, port)],
            env={**env, "WORKER_INDEX": str(index)},
            # Their own process group: a terminal's Ctrl-C reaches them once, through forward().
            start_new_session=True,
        )
        for index in range(count)
    ]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    for leftover in Path(socket_dir).glob("*"):
        leftover.unlink(missing_ok=True)
    Path(socket_dir).rmdir()
    return max(codes, key=abs)


async def _mark_interrupted(settings: Any) -> None:
    from opencode_api.store import open_store_for

    store = open_store_for(settings)
    await store.open()
    try:
        await store.mark_interrupted()
    finally:
        await store.close()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _args(host: str | None, port: int | None) -> list[str]:
    args: list[str] = []
    if host is not None:
        args += ["--host", host]
    if port is not None:
        args += ["--port", str(port)]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in (None, "serve"):
        ray = {
            key: value
            for key, value in (
                ("ray_cluster", args.ray),
                ("shards", args.shards),
                ("shard_namespace", args.shard_namespace),
            )
            if value is not None
        }
        return serve(args.host, args.port, reload=args.reload, workers=args.workers, ray=ray)
    if args.command == "bench":
        from opencode_api.bench import main as bench_main

        words = list(argv if argv is not None else sys.argv[1:])
        return bench_main(words[words.index("bench") + 1 :])
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
