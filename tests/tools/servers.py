"""Local servers the tool tests talk to: pages to fetch, an SSRF target that counts connections."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

HTML_PAGE = """<!doctype html><html><head><title>Doc</title>
<style>.secret { color: red }</style><script>stealCookies()</script></head>
<body><h1>Welcome</h1><noscript>enable javascript</noscript>
<p>Hello <b>world</b>, this   is   a <a href="/docs">link</a>.</p>
<ul><li>first</li><li>second</li></ul></body></html>"""
SIX_MB = 6 * 1024 * 1024


async def _html(request: web.Request) -> web.Response:
    return web.Response(text=HTML_PAGE, content_type="text/html")


async def _text(request: web.Request) -> web.Response:
    return web.Response(text="just plain text\n  with spacing", content_type="text/plain")


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * SIX_MB, content_type="text/plain")


async def _big_stream(request: web.Request) -> web.StreamResponse:
    # Chunked: no Content-Length, so only counting while reading can refuse it.
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    chunk = b"y" * 65536
    try:
        for _ in range(SIX_MB // len(chunk)):
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client hung up after its limit: expected
    return response


async def _slow(request: web.Request) -> web.Response:
    await asyncio.Event().wait()  # never answers; cancelled when the client or server goes
    raise AssertionError("unreachable")


async def _redirect(request: web.Request) -> web.Response:
    hops = int(request.match_info["hops"])
    location = f"/redirect/{hops - 1}" if hops > 1 else "/text"
    raise web.HTTPFound(location)


async def _loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def _to(request: web.Request) -> web.Response:
    # A redirect to wherever the test says (?url=...): used to point at a private address.
    raise web.HTTPFound(request.query["url"])


async def _missing(request: web.Request) -> web.Response:
    raise web.HTTPNotFound()


async def _image(request: web.Request) -> web.Response:
    return web.Response(body=b"\x89PNG\r\n\x1a\n" + bytes(64), content_type="image/png")


async def _octets(request: web.Request) -> web.Response:
    return web.Response(body=b"readable after all", content_type="application/octet-stream")


async def _latin1(request: web.Request) -> web.Response:
    return web.Response(body="café".encode("latin-1"), content_type="text/plain", charset="latin-1")


def pages_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/html", _html)
    app.router.add_get("/text", _text)
    app.router.add_get("/big", _big)
    app.router.add_get("/big-stream", _big_stream)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/redirect/{hops}", _redirect)
    app.router.add_get("/loop", _loop)
    app.router.add_get("/to", _to)
    app.router.add_get("/missing", _missing)
    app.router.add_get("/image", _image)
    app.router.add_get("/latin1", _latin1)
    app.router.add_get("/octets", _octets)
    return app


class CountingTarget:
    """A minimal HTTP server that counts every TCP connection it accepts (on 127.0.0.1 and,
    when the machine has IPv6 loopback, on [::1] at the same port)."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._servers: list[asyncio.Server] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n"
                b"Connection: close\r\n\r\ninternal-data!"
            )
            await writer.drain()
        writer.close()

    async def start(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._servers.append(server)
        with contextlib.suppress(OSError):
            self._servers.append(await asyncio.start_server(self._handle, "::1", self.port))

    async def close(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
