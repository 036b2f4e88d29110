"""A client that stops reading an SSE stream costs only its own subscription.

The slow clients are raw sockets with a tiny receive buffer that never read after the headers;
a turn of ~1 MiB of frames is streamed to a fast client at the same time.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from aiohttp import web

from opencode_api.http._sse import ClientGone, SSEWriter, json_frame
from opencode_api.testing import FakeLLMServer, Reply
from tests.http.conftest import ClientFactory, parse_sse, read_frame

CHUNK = "x" * 999 + " "
CHUNKS = 1200  # ~1.2 MB of text frames: more than the socket and aiohttp buffers can absorb


class _StalledReader:
    """An HTTP/1.1 GET whose client reads the response head and then stops reading."""

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        self.host, self.port, self.path, self.headers = host, port, path, headers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, until: bytes) -> None:
        """Send the request and read up to ``until`` (the server is streaming by then)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (self.host, self.port))
        self.reader, self.writer = await asyncio.open_connection(sock=sock, limit=4096)
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        head = await self.reader.readuntil(until)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]

    async def drain_rest(self) -> bytes:
        """Everything the server still sends, until it closes or the turn's ``done`` arrives."""
        assert self.reader is not None
        received = b""
        while b"event: done" not in received:
            try:
                chunk = await self.reader.read(65536)
            except ConnectionError:
                break  # dropped by the server (write timeout): also fine
            if not chunk:
                break
            received += chunk
        return received

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def test_slow_subscribers_do_not_stall_the_turn_or_fast_clients(
    make_client: ClientFactory, fake: FakeLLMServer
) -> None:
    client = await make_client(sse_write_timeout=0.5)
    fake.enqueue(Reply(text=[CHUNK] * CHUNKS, token_delay=0.0))
    sid = (await (await client.post("/session")).json())["id"]
    host, port = client.server.host, client.server.port
    assert port is not None

    stalled_bus = _StalledReader(host, port, "/event", {})
    await stalled_bus.open(until=b"server.connected")
    async with asyncio.timeout(60):  # a safety net only: nothing below waits on time
        fast = await client.post(f"/session/{sid}/message", json={"content": "flood"})
        start = await read_frame(fast)
        assert start["event"] == "message_start"
        # Re-attach from the first event: this subscriber wants the whole ~1.2 MB turn.
        stalled_turn = _StalledReader(
            host, port, f"/session/{sid}/stream", {"Last-Event-ID": start["id"]}
        )
        await stalled_turn.open(until=b": ping\n\n")

        frames = parse_sse((await fast.content.read()).decode())
        assert frames[-1] == {"data": "[DONE]"}
        done = json.loads(next(f for f in frames if f.get("event") == "done")["data"])
        assert done["stop_reason"] == "stop"
        text = "".join(json.loads(f["data"])["text"] for f in frames if f.get("event") == "text")
        assert text == CHUNK * CHUNKS

        # The turn was stored, and the server still answers others while both readers stall.
        page = await (await client.get(f"/session/{sid}/message?order=desc&limit=1")).json()
        assert page["messages"][0]["content"] == CHUNK * CHUNKS
        assert page["messages"][0]["finish"] == "stop"
        assert (await client.get("/health")).status == 200
        async with client.get(f"/event?session_id={sid}") as other:
            assert "server.connected" in (await read_frame(other))["data"]

        # The stalled turn reader was dropped (write timeout) or catches up to done now.
        rest = await stalled_turn.drain_rest()
        assert len(rest) < CHUNKS * len(CHUNK) or b"event: done" in rest
    stalled_turn.close()
    stalled_bus.close()


async def test_slow_reader_then_reads_gets_a_consistent_stream(
    make_client: ClientFactory, fake: FakeLLMServer
) -> None:
    """A subscriber that pauses and resumes sees increasing ids and no duplicates."""
    client = await make_client()
    fake.enqueue(Reply(text=[f"w{i} " for i in range(300)], token_delay=0.0))
    sid = (await (await client.post("/session")).json())["id"]
    fast = await client.post(f"/session/{sid}/message", json={"content": "go"})
    start = await read_frame(fast)
    async with client.get(
        f"/session/{sid}/stream", headers={"Last-Event-ID": start["id"]}
    ) as paused:
        await fast.read()  # the turn ends while the re-attached client has not read anything
        received: list[dict[str, Any]] = []
        while not received or received[-1].get("event") != "done":
            received.append(await read_frame(paused))
    ids = [int(f["id"]) for f in received]
    assert ids == sorted(set(ids)) and ids[0] == int(start["id"]) + 1
    text = "".join(json.loads(f["data"])["text"] for f in received if f.get("event") == "text")
    assert text == "".join(f"w{i} " for i in range(300))


async def test_a_stalled_write_drops_only_that_subscriber(aiohttp_server: Any) -> None:
    """The write-timeout path itself: a client that stops reading gets ``ClientGone``."""
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler(request: web.Request) -> web.StreamResponse:
        sock = request.transport.get_extra_info("socket") if request.transport else None
        assert sock is not None
        # A small kernel buffer so that the stall shows after kilobytes, not megabytes.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        writer = SSEWriter(request, heartbeat=5.0, write_timeout=0.2)
        await writer.prepare()
        frame = json_frame({"type": "text", "text": CHUNK})
        try:
            for _ in range(100_000):  # ~100 MB: far more than any buffer
                await writer.send(frame)
            outcome.set_result("sent everything")
        except ClientGone as exc:
            outcome.set_result(str(exc))
        return writer.response

    app = web.Application()
    app.router.add_get("/flood", handler)
    server = await aiohttp_server(app)
    stalled = _StalledReader(server.host, server.port, "/flood", {})
    await stalled.open(until=b": ping\n\n")
    async with asyncio.timeout(30):  # a safety net only
        assert await outcome == "write timed out"
    stalled.close()
