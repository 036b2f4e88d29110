"""The load client: N concurrent sessions x T turns over real HTTP and SSE, timed per turn.

SSE is scanned in bytes rather than parsed frame by frame: the client shares the machine with the
server, and only the first ``text`` frame, ``done``/``error`` and ``[DONE]`` matter to the timing.
"""

from __future__ import annotations

import asyncio
import errno
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

_EVENT = b"\nevent: "
_TEXT = b"\nevent: text\n"
_DONE_FRAME = b"data: [DONE]"


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """What one load phase sends."""

    sessions: int
    turns: int = 1
    payload_bytes: int = 0
    model: str | None = None
    max_tokens: int | None = None
    turn_timeout: float = 300.0
    abort: bool = False
    # With abort: abort the turns of one session in ``abort_every``; the others keep streaming.
    abort_every: int = 1
    # ... at the first text frame this many seconds after the turn's first one (0: at once).
    abort_after: float = 0.0
    # Sessions created at once (creating thousands at the same instant only measures the backlog).
    create_concurrency: int = 200
    # Sessions running their turns at once (None: all of them, the load test's burst).
    concurrency: int | None = None
    # Users who think: each session starts at a random moment within ``think_time`` seconds and
    # waits an exponential pause of that mean between its turns (0: every turn at once).
    think_time: float = 0.0


@dataclass(slots=True)
class TurnResult:
    ok: bool
    started: float
    ttft: float | None = None
    duration: float = 0.0
    events: int = 0
    error: str | None = None
    stop_reason: str | None = None
    abort_latency: float | None = None
    abort_requested: bool = False
    abort_answered: float | None = None  # seconds from sending the abort to its response


@dataclass(slots=True)
class LoadResult:
    config: LoadConfig
    turns: list[TurnResult] = field(default_factory=list)
    wall: float = 0.0
    create_errors: Counter[str] = field(default_factory=Counter)
    created: int = 0


def _message(content_size: int, config: LoadConfig, index: int) -> dict[str, Any]:
    text = f"bench turn {index}"
    if content_size > len(text):
        text += " " + "x" * (content_size - len(text) - 1)
    body: dict[str, Any] = {"content": text}
    if config.model is not None:
        body["model_id"] = config.model
    if config.max_tokens is not None:
        body["max_tokens"] = config.max_tokens
    return body


def _frame_data(block: bytes, marker: bytes) -> dict[str, Any]:
    """The JSON ``data:`` of the frame whose ``event:`` line is ``marker`` in ``block``."""
    start = block.find(b"\ndata: ", block.find(marker) + 1)
    end = block.find(b"\n", start + 7)
    try:
        value = json.loads(block[start + 7 : end if end >= 0 else None])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _client_error(exc: BaseException) -> str:
    """``client:<class>`` plus the errno name when there is one (ECONNRESET, ETIMEDOUT...)."""
    kind = f"client:{type(exc).__name__}"
    code = getattr(exc, "errno", None)
    if isinstance(code, int):
        kind += f":{errno.errorcode.get(code, code)}"
    return kind


async def _error_kind(response: aiohttp.ClientResponse) -> str:
    try:
        body = await response.json(content_type=None)
        kind = str(body["error"]["type"])
    except (ValueError, KeyError, TypeError, aiohttp.ClientError):
        kind = "unknown"
    return f"http_{response.status}:{kind}"


class LoadDriver:
    """Drives one target (``base_url``) with a shared, unlimited connection pool."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        on_turn: Callable[[TurnResult], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = headers or {}
        self.on_turn = on_turn
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> LoadDriver:
        # limit=0: one connection per concurrent stream; the default 100 would queue the load
        # in the client and measure the pool instead of the server.
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=False)
        self._http = aiohttp.ClientSession(
            connector=connector,
            headers=self.headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=60),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("Cannot use LoadDriver outside 'async with'")
        return self._http

    async def create_session(self) -> str:
        async with self.http.post(f"{self.base_url}/session", json={}) as response:
            if response.status >= 300:
                raise SessionCreateError(await _error_kind(response))
            body = await response.json()
        return str(body["id"])

    async def create_sessions(self, count: int, result: LoadResult) -> list[str]:
        gate = asyncio.Semaphore(result.config.create_concurrency)
        ids: list[str | None] = [None] * count

        async def one(index: int) -> None:
            async with gate:
                try:
                    ids[index] = await self.create_session()
                except SessionCreateError as exc:
                    result.create_errors[str(exc)] += 1
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    result.create_errors[f"create:{type(exc).__name__}"] += 1

        async with asyncio.TaskGroup() as group:
            for index in range(count):
                group.create_task(one(index))
        created = [session_id for session_id in ids if session_id is not None]
        result.created = len(created)
        return created

    async def run(
        self, config: LoadConfig, *, on_created: Callable[[], None] | None = None
    ) -> LoadResult:
        """Create the sessions, then (after ``on_created``) run every session's turns at once."""
        result = LoadResult(config)
        session_ids = await self.create_sessions(config.sessions, result)
        if on_created is not None:
            on_created()
        start = time.perf_counter()
        gate = asyncio.Semaphore(config.concurrency) if config.concurrency else None
        async with asyncio.TaskGroup() as group:
            for index, session_id in enumerate(session_ids):
                abort = config.abort and index % max(1, config.abort_every) == 0
                work = self._session(session_id, config, result, abort=abort)
                group.create_task(self._gated(gate, work))
        result.wall = time.perf_counter() - start
        return result

    @staticmethod
    async def _gated(gate: asyncio.Semaphore | None, work: Coroutine[Any, Any, None]) -> None:
        if gate is None:
            await work
            return
        async with gate:
            await work

    async def _session(
        self, session_id: str, config: LoadConfig, result: LoadResult, *, abort: bool
    ) -> None:
        think = config.think_time
        if think > 0:
            await asyncio.sleep(random.uniform(0.0, think))  # users arrive over the first pause
        for index in range(config.turns):
            if index and think > 0:
                await asyncio.sleep(random.expovariate(1.0 / think))
            turn = await self.turn(
                session_id,
                _message(config.payload_bytes, config, index),
                timeout=config.turn_timeout,
                abort=abort,
                abort_after=config.abort_after,
            )
            result.turns.append(turn)
            if self.on_turn is not None:
                self.on_turn(turn)

    async def turn(
        self,
        session_id: str,
        body: dict[str, Any],
        *,
        timeout: float,
        abort: bool = False,
        abort_after: float = 0.0,
    ) -> TurnResult:
        """One turn; never raises for a failed turn (the failure is in the result)."""
        turn = TurnResult(ok=False, started=time.perf_counter(), abort_requested=abort)
        try:
            async with asyncio.timeout(timeout):
                try:
                    # The group owns the abort request sent while the stream is read.
                    async with asyncio.TaskGroup() as group:
                        await self._stream_turn(session_id, body, turn, group, abort, abort_after)
                except* (aiohttp.ClientError, OSError) as failures:
                    turn.error = _client_error(failures.exceptions[0])
        except TimeoutError:
            turn.error = "timeout"
        turn.duration = time.perf_counter() - turn.started
        if turn.error is None:
            turn.ok = True
        return turn

    async def _stream_turn(
        self,
        session_id: str,
        body: dict[str, Any],
        turn: TurnResult,
        group: asyncio.TaskGroup,
        abort: bool,
        abort_after: float,
    ) -> None:
        url = f"{self.base_url}/session/{session_id}/message"
        abort_sent: float | None = None
        async with self.http.post(url, json=body) as response:
            if response.status >= 300:
                turn.error = await _error_kind(response)
                return
            pending = b"\n"  # a leading newline makes the first frame's `event:` line match too
            finished = False
            async for chunk in response.content.iter_any():
                block = pending + chunk
                cut = block.rfind(b"\n\n")
                if cut < 0:
                    pending = block
                    continue
                complete, pending = block[: cut + 2], block[cut + 1 :]
                turn.events += complete.count(_EVENT)
                if _TEXT in complete:
                    now = time.perf_counter()
                    if turn.ttft is None:
                        turn.ttft = now - turn.started
                    streamed = now - turn.started - turn.ttft
                    if abort and abort_sent is None and streamed >= abort_after:
                        abort_sent = now
                        group.create_task(self._abort(session_id, turn, now))
                if b"\nevent: error\n" in complete:
                    error = _frame_data(complete, b"\nevent: error\n").get("error") or {}
                    turn.error = f"event:{error.get('type', 'unknown')}"
                if b"\nevent: done\n" in complete:
                    done = _frame_data(complete, b"\nevent: done\n")
                    turn.stop_reason = str(done.get("stop_reason"))
                if _DONE_FRAME in complete:
                    finished = True
                    break
            if abort_sent is not None:
                turn.abort_latency = time.perf_counter() - abort_sent
        expected = ("stop", "aborted") if abort else ("stop",)
        if turn.error is None:
            if not finished:
                turn.error = "stream_ended_without_[DONE]"
            elif turn.stop_reason not in expected:
                turn.error = f"stop_reason:{turn.stop_reason}"
            elif turn.ttft is None and not abort:
                turn.error = "no_text"

    async def _abort(self, session_id: str, turn: TurnResult, sent: float) -> None:
        async with self.http.post(f"{self.base_url}/session/{session_id}/abort") as response:
            await response.read()
            turn.abort_answered = time.perf_counter() - sent
            if response.status >= 300:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message="abort failed"
                )


class SessionCreateError(Exception):
    """``POST /session`` answered an error status."""
