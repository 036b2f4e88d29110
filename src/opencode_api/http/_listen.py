"""Serving an app: ``web.run_app``'s lifecycle, with a listening socket that accepts in batches.

uvloop's libuv (1.45 and later, libuv#3696) accepts one connection per event-loop iteration. On a
loaded server an iteration takes milliseconds, so a burst of clients waits in the kernel's accept
queue: measured at 1,000 concurrent sessions, ~800 connections queued and drained at ~80/s, which
made time-to-first-token p99 ~10 s and aborts wait seconds before the server even saw them.
asyncio's own loop accepts up to the backlog per readiness; ``BatchAcceptSite`` does the same on
any loop (uvloop included) and hands each socket to ``loop.connect_accepted_socket``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_server import Server
from yarl import URL

log = structlog.get_logger("opencode_api.http.listen")

# Out of descriptors or memory: the usual reasons accept() fails on a healthy socket.
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_RESUME_AFTER = 1.0


class ListenError(OSError):
    """A site could not bind or listen (port in use, no permission, no such address or host).

    An ``OSError`` with the original ``errno``; its message names the address:
    ``cannot listen on 0.0.0.0:7860: address already in use``.
    """

    def __init__(self, address: str, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.address = address

    def __str__(self) -> str:
        return f"cannot listen on {self.address}: {str(self.strerror).lower()}"


def tcp_address(host: str | None, port: int) -> str:
    """``host:port`` as people write it (``[::1]:7860``); no host is every interface."""
    host = host or "0.0.0.0"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_sockets(host: str | None, port: int, *, reuse_port: bool = False) -> list[socket.socket]:
    """TCP sockets bound, not yet listening, to every address ``host`` resolves to, as asyncio's
    ``create_server`` binds them (``localhost``: 127.0.0.1 and ::1; None: every interface).

    Until they listen, connections to them are refused, as to a closed port. Raises
    ``ListenError`` (nothing left open) when the host does not resolve or an address is taken.
    """
    sockets: list[socket.socket] = []
    seen: set[tuple[int, Any]] = set()
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                # IPv4 gets its own socket when the host has an IPv4 address (asyncio does this).
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:  # socket.gaierror (an unknown host) included
        _close(sockets)
        raise ListenError(tcp_address(host, port), exc) from exc
    except BaseException:
        _close(sockets)
        raise
    return sockets


def listen(sockets: Sequence[socket.socket], *, backlog: int, address: str) -> None:
    """Bound sockets made listening and non-blocking; on failure all are closed (ListenError)."""
    try:
        for sock in sockets:
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError as exc:
        _close(sockets)
        raise ListenError(address, exc) from exc


def listening_sockets(
    host: str | None, port: int, *, backlog: int, reuse_port: bool = False
) -> list[socket.socket]:
    """Non-blocking TCP sockets listening on every address ``host`` resolves to (see
    ``bind_sockets``)."""
    sockets = bind_sockets(host, port, reuse_port=reuse_port)
    listen(sockets, backlog=backlog, address=tcp_address(host, port))
    return sockets


def _close(sockets: Sequence[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


class _Acceptor:
    """What aiohttp keeps as a site's server: the listening sockets, each read by a callback that
    accepts everything pending (up to ``batch``) each time the socket is readable."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sockets: list[socket.socket],
        factory: Server,
        batch: int,
    ) -> None:
        self._loop = loop
        self._factory = factory
        self._batch = max(1, batch)
        self._connecting: set[asyncio.Task[None]] = set()
        self._paused: dict[int, asyncio.TimerHandle] = {}
        self._closed = False
        self.sockets = tuple(sockets)
        for sock in sockets:
            loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(self._batch):
            try:
                conn, _address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while queued
            except OSError as exc:
                # Out of descriptors or memory (or anything else accept() should not say):
                # accepting again at once would spin; try again in a moment.
                log.error(
                    "accept failed, pausing",
                    error=str(exc),
                    resources=exc.errno in _RESOURCE_ERRORS,
                    seconds=_RESUME_AFTER,
                )
                self._loop.remove_reader(sock.fileno())
                self._paused[sock.fileno()] = self._loop.call_later(
                    _RESUME_AFTER, self._listen_again, sock
                )
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._connect(conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except OSError as exc:
            # Reset before the transport existed: nothing was read, nothing to answer.
            log.debug("accepted connection lost", error=str(exc))
            conn.close()

    def _listen_again(self, sock: socket.socket) -> None:
        self._paused.pop(sock.fileno(), None)
        if not self._closed:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def is_serving(self) -> bool:
        return not self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for handle in self._paused.values():
            handle.cancel()
        self._paused.clear()
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()


class BatchAcceptSite(web.BaseSite):
    """``web.TCPSite`` with batched accepts (see the module docstring).

    ``sockets``, from ``bind_sockets``, are the site's to listen on and close (a server binds
    its port before its start-up, so that a taken port fails before anything has started);
    without them the site binds ``host`` and ``port`` when it starts. Failures raise
    ``ListenError``.
    """

    __slots__ = ("_bound", "_bound_port", "_host", "_port", "_reuse_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        *,
        backlog: int = 128,
        reuse_port: bool = False,
        sockets: Sequence[socket.socket] | None = None,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._reuse_port = reuse_port
        self._bound = list(sockets) if sockets else None
        self._bound_port: int | None = self._bound[0].getsockname()[1] if self._bound else None

    @property
    def port(self) -> int:
        return self._bound_port if self._bound_port is not None else self._port

    @property
    def name(self) -> str:
        return str(URL.build(scheme="http", host=self._host or "0.0.0.0", port=self.port))

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        sockets = self._bound or bind_sockets(self._host, self._port, reuse_port=self._reuse_port)
        self._bound = None
        listen(sockets, backlog=self._backlog, address=tcp_address(self._host, self._port))
        self._bound_port = sockets[0].getsockname()[1]
        acceptor = _Acceptor(asyncio.get_running_loop(), sockets, server, self._backlog)
        self._server = acceptor  # type: ignore[assignment]  # aiohttp uses close() and .sockets


SiteFactory = Callable[[web.BaseRunner], web.BaseSite]


def serve_app(
    app: web.Application,
    sites: list[SiteFactory],
    *,
    loop: asyncio.AbstractEventLoop,
    shutdown_timeout: float,
    access_log: Any = None,
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Run ``app`` on ``loop`` until SIGINT/SIGTERM, then shut down as ``web.run_app`` does:
    stop the sites, run the app's cleanup (draining turns), cancel what is left, close the loop.

    A site that cannot listen raises ``ListenError`` once the app's cleanup has run.
    """

    async def main() -> None:
        runner = web.AppRunner(
            app, handle_signals=True, access_log=access_log, shutdown_timeout=shutdown_timeout
        )
        await runner.setup()
        try:
            for make_site in sites:
                site = make_site(runner)
                try:
                    await site.start()
                except ListenError:
                    raise
                except OSError as exc:  # aiohttp's own sites (a Unix socket)
                    raise ListenError(_site_address(site), exc) from exc
            if on_listening is not None:
                on_listening()
            await asyncio.Event().wait()  # until a signal raises GracefulExit
        finally:
            await runner.cleanup()

    asyncio.set_event_loop(loop)
    main_task = loop.create_task(main())
    try:
        loop.run_until_complete(main_task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main_task.done():
                main_task.cancel()  # runs main()'s cleanup
                _run_to_end(loop, main_task)
        finally:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def _site_address(site: web.BaseSite) -> str:
    if isinstance(site, web.UnixSite):
        return site.name.removeprefix("http://unix:").removesuffix(":")  # the socket's path
    return site.name


def _run_to_end(loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
    # The task was cancelled on purpose: its CancelledError is the expected end, not an error.
    with contextlib.suppress(asyncio.CancelledError):
        loop.run_until_complete(task)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
