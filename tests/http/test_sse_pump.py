"""The SSE pump: heartbeats on a quiet turn stream, server shutdown ending open streams with their
final frames (the stop path interrupts the wait on the source), and clients that close their
connection released at once, not at the next heartbeat, under either ``handler_cancellation``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from opencode_api.actors import Runtime
from opencode_api.http import create_app
from opencode_api.http._keys import METRICS, STREAMS
from opencode_api.settings import Settings
from opencode_api.testing import FakeLLMServer, Reply
from tests.http.conftest import ClientFactory, close_runtime, open_runtime, read_frame


async def _session(client: Any) -> str:
    return str((await (await client.post("/session")).json())["id"])


async def _lines_until(response: Any, wanted: bytes) -> list[bytes]:
    lines: list[bytes] = []
    while True:
        line = await response.content.readline()
        if not line:
            raise EOFError(f"stream ended before {wanted!r}; last lines {lines[-4:]!r}")
        lines.append(line)
        if wanted in line:
            return lines


async def test_quiet_turn_stream_heartbeats_then_aborts_cleanly(
    make_client: ClientFactory, fake: FakeLLMServer
) -> None:
    client = await make_client(sse_heartbeat=0.05)
    fake.enqueue(Reply(text="one two three", hang_after=2))  # role chunk, one word, silence
    sid = await _session(client)
    response = await client.post(f"/session/{sid}/message", json={"content": "hi"})
    await _lines_until(response, b"event: text")
    # The model is silent: pings keep the connection alive.
    await _lines_until(response, b": ping")
    await _lines_until(response, b": ping")
    aborted = await client.post(f"/session/{sid}/abort")
    assert (await aborted.json())["cancelled"] is True
    tail = b"".join(await _lines_until(response, b"data: [DONE]"))
    assert b"event: done" in tail and b'"stop_reason":"aborted"' in tail
    # The server timed it, from the abort request to the end of the stream.
    metrics = await (await client.get("/metrics")).text()
    assert "opencode_abort_seconds_count 1.0" in metrics


async def test_shutdown_ends_event_and_session_streams(make_client: ClientFactory) -> None:
    client = await make_client()
    sid = await _session(client)
    events = await client.get("/event")
    await _lines_until(events, b"server.connected")
    stream = await client.get(f"/session/{sid}/stream")
    await _lines_until(stream, b": ping")  # sent once the stream is open

    client.server.app[STREAMS].closing.set()  # what the app's shutdown does first

    tail = b"".join(await _lines_until(events, b"server.shutdown"))
    assert b'"type":"server.shutdown"' in tail
    assert await events.content.read() == b"\n"  # the frame's blank line, then the end
    assert (await read_frame(stream)) == {"data": "[DONE]"}
    assert await stream.content.read() == b""
    # The server still answers: only the streams were ended.
    assert (await client.get("/health")).status == 200


class _Served:
    """The app on a real 127.0.0.1 port (an ``AppRunner``, as ``serve`` runs it), with a middleware
    that tells when the handlers of SSE requests have returned."""

    def __init__(self, app: web.Application, runner: web.AppRunner, runtime: Runtime) -> None:
        self.app = app
        self.runner = runner
        self.runtime = runtime
        self.host, self.port = runner.addresses[0][:2]
        self.finished = 0
        # After a stream, the connection's transport is back with aiohttp's own protocol.
        self.protocol_restored: list[bool] = []
        self._changed = asyncio.Condition()

    async def wait_finished(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.finished >= count)

    async def record(self, request: web.Request) -> None:
        transport = request.transport
        if transport is not None and not transport.is_closing():
            self.protocol_restored.append(transport.get_protocol() is request.protocol)
        async with self._changed:
            self.finished += 1
            self._changed.notify_all()

    def subscribers(self, route: str) -> float:
        value = self.app[METRICS].registry.get_sample_value(
            "opencode_sse_subscribers", {"route": route}
        )
        return float(value or 0.0)

    async def open(self, request: bytes, until: bytes) -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(request)
        await reader.readuntil(until)
        return writer


@pytest.fixture(params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    """Both loops the server runs on (``serve`` takes uvloop when it is installed): the watch on a
    closed connection goes through the transport, which each loop implements its own way."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.EventLoopPolicy()  # type: ignore[no-any-return]
    return asyncio.DefaultEventLoopPolicy()


@pytest.fixture(params=[False, True], ids=["handler_cancellation=False", "=True"])
async def served(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> AsyncIterator[_Served]:
    # Far above any wait below (the writer caps it at 30 s): no heartbeat can end a stream here.
    settings = make_settings(sse_heartbeat=300.0)
    runtime = await open_runtime(settings)
    app = create_app(settings, runtime=runtime)
    holder: list[_Served] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        finally:
            if request.path != "/metrics" and holder:
                await asyncio.shield(holder[0].record(request))

    app.middlewares.append(record)
    runner = web.AppRunner(app, handler_cancellation=request.param, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        holder.append(_Served(app, runner, runtime))
        yield holder[0]
    finally:
        await runner.cleanup()
        await close_runtime(runtime)


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode()


CLIENTS = 50


async def test_closed_event_clients_are_released_at_once(served: _Served) -> None:
    async with asyncio.timeout(20):  # a safety net, below the 30 s heartbeat cap
        writers = await asyncio.gather(
            *(served.open(_get("/event"), b"server.connected") for _ in range(CLIENTS))
        )
        assert served.subscribers("events") == CLIENTS
        assert served.runtime.bus.subscriber_count == CLIENTS
        for writer in writers:
            writer.close()
        await served.wait_finished(CLIENTS)
    assert served.subscribers("events") == 0
    assert served.runtime.bus.subscriber_count == 0


async def test_closed_session_stream_clients_are_released_at_once(served: _Served) -> None:
    session = await served.runtime.create_session(title="watched")
    ref = await served.runtime.supervisor.get_or_activate(session.id)
    async with asyncio.timeout(20):
        writers = await asyncio.gather(
            *(
                served.open(_get(f"/session/{session.id}/stream"), b": ping\n\n")
                for _ in range(CLIENTS)
            )
        )
        assert served.subscribers("session_stream") == CLIENTS
        assert ref.outbox.subscriber_count == CLIENTS
        for writer in writers:
            writer.close()
        await served.wait_finished(CLIENTS)
    assert served.subscribers("session_stream") == 0
    assert ref.outbox.subscriber_count == 0


async def test_a_closed_turn_stream_is_released_and_the_turn_goes_on(
    served: _Served, fake: FakeLLMServer
) -> None:
    fake.enqueue(Reply(text="one two three", hang_after=2))  # then silent until aborted
    session = await served.runtime.create_session(title="turn")
    body = b'{"content": "hi"}'
    request = (
        f"POST /session/{session.id}/message HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    async with asyncio.timeout(20):
        writer = await served.open(request, b"event: text")
        assert served.subscribers("send_message") == 1
        writer.close()
        await served.wait_finished(1)
        assert served.subscribers("send_message") == 0
        # The turn belongs to the session: still running, then aborted by us.
        assert served.runtime.status(session.id) == "busy"
        bus = served.runtime.subscribe_bus()
        try:
            assert await served.runtime.abort(session.id)
            # The abort is delivered at once; the turn's end is stored, then published.
            async for item in bus:
                event = item.event
                ended = event.type == "session.status" and event.properties["status"] == "idle"
                if ended and event.session_id == session.id:
                    break
        finally:
            bus.close()
    page = await served.runtime.list_messages(session.id)
    assert [m.status for m in page.messages if m.role == "assistant"] == ["aborted"]


async def test_a_finished_stream_gives_the_connection_back(
    served: _Served, fake: FakeLLMServer
) -> None:
    """After a turn stream ends, its keep-alive connection serves the next request."""
    fake.enqueue(Reply(text="fine"))
    session = await served.runtime.create_session(title="again")
    body = b'{"content": "hi"}'
    request = (
        f"POST /session/{session.id}/message HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection(served.host, served.port)
    async with asyncio.timeout(20):
        writer.write(request)
        await reader.readuntil(b"data: [DONE]\n\n\r\n0\r\n\r\n")  # the last chunk
        writer.write(_get("/health"))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        await served.wait_finished(2)
    assert served.protocol_restored == [True, True]
    writer.close()


async def test_reattaching_past_what_is_buffered_streams_from_now(
    make_client: ClientFactory, fake: FakeLLMServer
) -> None:
    """``Last-Event-ID: 0`` on a session whose outbox holds nothing yet (its ids start at a clock)
    streams what comes next; it once retried the lagged subscription forever, blocking the loop."""
    client = await make_client()
    sid = await _session(client)
    async with asyncio.timeout(20):  # a safety net only
        stream = await client.get(f"/session/{sid}/stream", headers={"Last-Event-ID": "0"})
        await _lines_until(stream, b": ping")
        assert (await client.get("/health")).status == 200  # the loop is not spinning
        fake.enqueue(Reply(text="after all"))
        turn = await client.post(f"/session/{sid}/message", json={"content": "hi"})
        assert (await turn.text()).rstrip().endswith("data: [DONE]")
        tail = b"".join(await _lines_until(stream, b"event: done"))
        assert b"message_start" in tail and b'"text":"after ' in tail
        stream.close()
