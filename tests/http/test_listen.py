"""The listening site: every pending connection accepted per readiness, served, and closed."""

from __future__ import annotations

import asyncio
import errno
import socket

import aiohttp
import pytest
from aiohttp import web

from opencode_api.http._listen import BatchAcceptSite, _Acceptor, listening_sockets


class _Counting(asyncio.Protocol):
    made = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        type(self).made += 1


async def test_one_readiness_accepts_the_whole_queue() -> None:
    loop = asyncio.get_running_loop()
    [sock] = listening_sockets("127.0.0.1", 0, backlog=128)
    port = sock.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    _Counting.made = 0
    acceptor = _Acceptor(loop, [sock], _Counting, batch=128)  # type: ignore[arg-type]
    try:
        acceptor._accept(sock)  # what the loop calls once the socket is readable
        pending = list(acceptor._connecting)
        assert len(pending) == 50  # uvloop's own listener would have taken one
        await asyncio.gather(*pending)
        assert _Counting.made == 50
    finally:
        acceptor.close()
        for client in clients:
            client.close()
    assert not acceptor.is_serving()


async def test_site_serves_a_burst_and_stops() -> None:
    app = web.Application()

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = BatchAcceptSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    assert site.port != 0 and site.name == f"http://127.0.0.1:{site.port}"
    url = f"http://127.0.0.1:{site.port}/"
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def get() -> int:
            async with http.get(url) as response:
                return response.status

        assert await asyncio.gather(*(get() for _ in range(300))) == [200] * 300
        await runner.cleanup()
        with pytest.raises(aiohttp.ClientConnectorError):
            await get()  # the listening socket is closed


def test_localhost_listens_on_each_of_its_addresses() -> None:
    sockets = listening_sockets("localhost", 0, backlog=8)
    try:
        families = {sock.family for sock in sockets}
        assert socket.AF_INET in families  # 127.0.0.1 is served even where ::1 comes first
        assert len({(sock.family, sock.getsockname()[0]) for sock in sockets}) == len(sockets)
    finally:
        for sock in sockets:
            sock.close()


class _FailsOnce(socket.socket):
    """A listening socket whose first accept() fails as when the process is out of descriptors."""

    failed = False

    def accept(self) -> tuple[socket.socket, object]:
        if not self.failed:
            self.failed = True
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


async def test_accept_failure_pauses_then_resumes() -> None:
    loop = asyncio.get_running_loop()
    sock = _FailsOnce(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    client = socket.create_connection(("127.0.0.1", sock.getsockname()[1]))
    _Counting.made = 0
    acceptor = _Acceptor(loop, [sock], _Counting, batch=8)  # type: ignore[arg-type]
    try:
        acceptor._accept(sock)  # EMFILE: stop reading the socket for a while, not spin
        assert sock.fileno() in acceptor._paused and not acceptor._connecting
        acceptor._paused.pop(sock.fileno()).cancel()
        acceptor._listen_again(sock)  # what the timer does
        acceptor._accept(sock)
        await asyncio.gather(*acceptor._connecting)
        assert _Counting.made == 1
    finally:
        acceptor.close()
        client.close()
