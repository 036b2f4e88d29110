"""The SSE pump: heartbeats on a quiet turn stream, and server shutdown ending open streams with
their final frames (the stop path interrupts the wait on the source)."""

from __future__ import annotations

from typing import Any

from opencode_api.http._keys import STREAMS
from opencode_api.testing import FakeLLMServer, Reply
from tests.http.conftest import ClientFactory, read_frame


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
