"""Webhooks (API.md, "Webhooks") against a real local receiver that verifies every signature with
the ``standardwebhooks`` library: turn ends and questions delivered, retries with backoff, the
SSRF policy on targets, ``GET /webhook/delivery``, and no delivery lost to a kill -9."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks import Webhook

from opencode_api.http._keys import RUNTIME
from opencode_api.store import WebhookDelivery
from opencode_api.testing import FakeLLMServer, Reply, ToolCall
from tests.http.conftest import ClientFactory, free_port, wait_listening

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
QUESTIONS = {
    "questions": [
        {
            "question": "Which color?",
            "header": "Color",
            "options": [{"label": "Red", "description": "warm"}],
        }
    ]
}


class Receiver:
    """A webhook receiver: verifies each request, answers with the scripted statuses (then
    ``default``), and lets tests wait for what it received."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []  # every request, verified, with the status answered
        self.unverified = 0
        self.statuses: deque[int] = deque()
        self.default = 200
        self.hold: asyncio.Event | None = None  # while set, requests wait for it (a slow receiver)
        self.inflight = self.most_inflight = 0
        self._changed = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        try:
            payload = Webhook(SECRET).verify(body, dict(request.headers))
        except Exception:
            self.unverified += 1
            return web.Response(status=400)
        if self.hold is not None:
            self.inflight += 1
            self.most_inflight = max(self.most_inflight, self.inflight)
            try:
                async with self._changed:
                    self._changed.notify_all()
                await self.hold.wait()  # cancelled when the sender gives up on this request
            finally:
                self.inflight -= 1
        status = self.statuses.popleft() if self.statuses else self.default
        async with self._changed:
            self.seen.append(
                {
                    "id": request.headers["webhook-id"],
                    "path": request.path,
                    "body": body,
                    "payload": payload,
                    "status": status,
                }
            )
            self._changed.notify_all()
        return web.Response(status=status)

    def delivered(self) -> dict[str, dict[str, Any]]:
        """webhook-id -> payload, of the requests answered with a 2xx."""
        return {r["id"]: r["payload"] for r in self.seen if 200 <= r["status"] < 300}

    async def wait(self, done: Callable[[], bool], timeout: float = 30) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(done), timeout)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.server.start_server()
    try:
        yield hook
    finally:
        if hook.hold is not None:
            # Requests still held would keep the server's close waiting (up to its 60 s
            # shutdown timeout): answer them first.
            hook.hold.set()
        await hook.server.close()
    assert hook.unverified == 0, "a request did not pass the library's verifier"


def webhook_settings(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "webhook_secret": SECRET,
        "webhook_allow_private": True,  # the receiver is on 127.0.0.1
        "webhook_retry_base_delay": 0.05,
        "webhook_retry_max_delay": 0.2,
        "webhook_poll_interval": 0.2,
        "webhook_timeout": 2.0,
    }
    values.update(overrides)
    return values


async def run_turn(client: Any, sid: str, content: str = "hi") -> None:
    response = await client.post(f"/session/{sid}/message", json={"content": content})
    assert response.status == 200
    await response.read()


async def deliveries(client: Any, **query: str) -> list[dict[str, Any]]:
    response = await client.get("/webhook/delivery", params=query)
    assert response.status == 200
    result: list[dict[str, Any]] = await response.json()
    return result


async def until_stored(client: Any, done: Callable[[list[dict[str, Any]]], bool]) -> None:
    """Until ``GET /webhook/delivery`` shows ``done``: asked again each time the sender stored
    another attempt's outcome (it is written right after the receiver answered)."""
    webhooks = client.server.app[RUNTIME].webhooks
    assert webhooks is not None
    async with asyncio.timeout(20):
        while True:
            seen = webhooks.sender.stored
            if done(await deliveries(client)):
                return
            await webhooks.sender.wait_stored(seen)


async def test_a_finished_turn_is_delivered_signed_to_the_session_and_server_targets(
    make_client: ClientFactory, fake: FakeLLMServer, receiver: Receiver
) -> None:
    server_url = str(receiver.server.make_url("/all"))
    client = await make_client(**webhook_settings(webhook_url=server_url))
    fake.enqueue(Reply(text="all done"))
    created = await client.post("/session", json={"webhook_url": receiver.url})
    sid = (await created.json())["id"]
    await run_turn(client, sid)
    await receiver.wait(lambda: len(receiver.delivered()) == 2)

    by_path = {r["path"]: r for r in receiver.seen}
    assert set(by_path) == {"/hook", "/all"}
    assert by_path["/hook"]["id"] != by_path["/all"]["id"]  # one delivery per target
    assert by_path["/hook"]["body"] == by_path["/all"]["body"]
    body = by_path["/hook"]["payload"]
    assert body["type"] == "turn.completed"
    assert body["timestamp"].endswith("Z")
    data = body["data"]
    assert data["session_id"] == sid and data["status"] == "done"
    assert data["message"]["content"] == "all done"
    assert data["message"]["stop_reason"] == "stop"
    user_mid = data["user_message_id"]
    reply = await (await client.get(f"/session/{sid}/message/{user_mid}/reply")).json()
    assert reply["status"] == data["status"]
    assert reply["message"]["id"] == data["message"]["id"]

    await until_stored(client, lambda ds: [d["status"] for d in ds] == ["delivered"] * 2)
    listed = await deliveries(client, session_id=sid, status="delivered")
    assert {d["id"] for d in listed} == {by_path["/hook"]["id"], by_path["/all"]["id"]}
    first = listed[0]
    assert first["event"] == "turn.completed" and first["session_id"] == sid
    assert first["attempts"] == 1 and first["last_status_code"] == 200
    assert first["last_error"] is None and first["next_attempt_at"] is None
    assert await deliveries(client, status="failed") == []
    spec = await (await client.get("/openapi.json")).json()
    assert "/webhook/delivery" in spec["paths"]


async def test_a_failed_turn_is_turn_failed(
    make_client: ClientFactory, fake: FakeLLMServer, receiver: Receiver
) -> None:
    client = await make_client(**webhook_settings())
    fake.enqueue(Reply.error(400, "context too long"))
    sid = (await (await client.post("/session", json={"webhook_url": receiver.url})).json())["id"]
    await run_turn(client, sid)
    await receiver.wait(lambda: len(receiver.delivered()) == 1)
    (body,) = receiver.delivered().values()
    assert body["type"] == "turn.failed"
    assert body["data"]["status"] == "error"
    assert body["data"]["message"]["error"]["type"] == "provider_error"


async def test_a_question_is_delivered_while_the_turn_waits(
    make_client: ClientFactory, fake: FakeLLMServer, receiver: Receiver
) -> None:
    client = await make_client(**webhook_settings())
    fake.enqueue(Reply(tool_calls=[ToolCall("question", QUESTIONS, id="q1")]), Reply(text="ok"))
    sid = (await (await client.post("/session", json={"webhook_url": receiver.url})).json())["id"]
    turn = await client.post(f"/session/{sid}/message?stream=false", json={"content": "ask"})
    user_mid = (await turn.json())["user_message_id"]
    await receiver.wait(lambda: len(receiver.delivered()) == 1)
    (asked,) = receiver.delivered().values()
    assert asked["type"] == "question.asked"
    assert asked["data"]["user_message_id"] == user_mid and asked["data"]["status"] == "running"
    question = asked["data"]["question"]
    assert question["questions"][0]["question"] == "Which color?"
    answered = await client.post(f"/question/{question['id']}/reply", json={"answers": [["Red"]]})
    assert answered.status == 200
    await receiver.wait(lambda: len(receiver.delivered()) == 2)
    types = sorted(p["type"] for p in receiver.delivered().values())
    assert types == ["question.asked", "turn.completed"]


async def test_a_receiver_answering_500_gets_the_same_delivery_again(
    make_client: ClientFactory, fake: FakeLLMServer, receiver: Receiver
) -> None:
    receiver.statuses.extend([500, 503])
    client = await make_client(**webhook_settings())
    fake.enqueue(Reply(text="retried"))
    sid = (await (await client.post("/session", json={"webhook_url": receiver.url})).json())["id"]
    await run_turn(client, sid)
    await receiver.wait(lambda: len(receiver.delivered()) == 1)
    assert [r["status"] for r in receiver.seen] == [500, 503, 200]
    assert len({r["id"] for r in receiver.seen}) == 1  # duplicates carry the same webhook-id
    assert len({r["body"] for r in receiver.seen}) == 1
    await until_stored(client, lambda ds: ds[0]["status"] == "delivered")
    (stored,) = await deliveries(client)
    assert stored["attempts"] == 3 and stored["last_status_code"] == 200


async def test_a_delivery_fails_after_its_last_attempt(
    make_client: ClientFactory, fake: FakeLLMServer, receiver: Receiver
) -> None:
    receiver.default = 500
    client = await make_client(**webhook_settings(webhook_max_attempts=3))
    fake.enqueue(Reply(text="nobody listens"))
    sid = (await (await client.post("/session", json={"webhook_url": receiver.url})).json())["id"]
    await run_turn(client, sid)
    await until_stored(client, lambda ds: bool(ds) and ds[0]["status"] == "failed")
    (stored,) = await deliveries(client, status="failed")
    assert stored["attempts"] == 3 and stored["last_status_code"] == 500
    assert stored["last_error"] == "HTTP 500" and stored["next_attempt_at"] is None
    assert len(receiver.seen) == 3


async def test_a_receiver_that_never_answers_blocks_no_turn_and_holds_few_requests(
    make_client: ClientFactory, fake: FakeLLMServer, receiver: Receiver
) -> None:
    receiver.hold = asyncio.Event()  # never set: every request hangs until the sender gives up
    client = await make_client(**webhook_settings(webhook_timeout=0.5, webhook_concurrency=2))
    fake.enqueue(*(Reply(text=f"turn {i}") for i in range(6)))
    sid = (await (await client.post("/session", json={"webhook_url": receiver.url})).json())["id"]
    for i in range(6):  # each turn ends at once, whatever the receiver does
        await asyncio.wait_for(run_turn(client, sid, f"message {i}"), 20)
    await receiver.wait(lambda: receiver.most_inflight == 2)
    await until_stored(client, lambda ds: len(ds) == 6 and all(d["attempts"] >= 1 for d in ds[-2:]))
    assert receiver.most_inflight == 2  # WEBHOOK_CONCURRENCY bounds what a slow receiver holds
    timed_out = [d for d in await deliveries(client) if d["attempts"] >= 1]
    assert timed_out and all(d["last_error"] == "timed out after 0.5 s" for d in timed_out)
    assert all(d["status"] == "pending" for d in timed_out)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://2130706433/hook",
        "ftp://hooks.example.com/x",
        "not a url",
    ],
    ids=[
        "loopback",
        "localhost",
        "private",
        "link-local",
        "ipv6-loopback",
        "decimal-ip",
        "ftp",
        "garbage",
    ],
)
async def test_a_private_or_bad_webhook_url_is_refused(
    make_client: ClientFactory, url: str
) -> None:
    client = await make_client(webhook_secret=SECRET)
    created = await client.post("/session", json={"webhook_url": url})
    assert created.status == 422
    error = (await created.json())["error"]
    assert error["type"] == "invalid_request" and error.get("field") == "webhook_url"
    sid = (await (await client.post("/session")).json())["id"]
    patched = await client.patch(f"/session/{sid}", json={"webhook_url": url})
    assert patched.status == 422
    assert (await (await client.get(f"/session/{sid}")).json())["webhook_url"] is None


async def test_private_targets_are_accepted_when_allowed(make_client: ClientFactory) -> None:
    client = await make_client(webhook_secret=SECRET, webhook_allow_private=True)
    created = await client.post("/session", json={"webhook_url": "http://127.0.0.1:9/hook"})
    assert created.status == 200
    assert (await created.json())["webhook_url"] == "http://127.0.0.1:9/hook"


async def test_a_name_resolving_to_a_private_address_is_refused_at_send_time(
    make_client: ClientFactory, receiver: Receiver
) -> None:
    client = await make_client(**webhook_settings(webhook_allow_private=False))
    runtime = client.app[RUNTIME]
    port = receiver.server.port
    # As if stored before the name pointed here (DNS rebinding): the sender vets the address.
    await runtime.store.add_webhook_deliveries(
        [
            WebhookDelivery(
                id="whd_rebound",
                event="turn.completed",
                session_id="ses_x",
                url=f"http://localhost:{port}/hook",
                payload="{}",
            )
        ]
    )
    await until_stored(client, lambda ds: bool(ds) and ds[0]["attempts"] > 0)
    ds = await deliveries(client)
    assert "public address" in (ds[0]["last_error"] or "")
    assert ds[0]["last_status_code"] is None
    assert receiver.seen == []


async def test_users_see_only_their_sessions_deliveries(
    make_client: ClientFactory, fake: FakeLLMServer, receiver: Receiver
) -> None:
    from tests.http.conftest import JWT_SECRET, bearer, hs256_token

    client = await make_client(
        **webhook_settings(supabase_jwt_secret=JWT_SECRET, auth_required=True)
    )
    alice, bob = bearer(hs256_token("alice")), bearer(hs256_token("bob"))
    fake.enqueue(Reply(text="for alice"))
    created = await client.post("/session", json={"webhook_url": receiver.url}, headers=alice)
    sid = (await created.json())["id"]
    response = await client.post(f"/session/{sid}/message", json={"content": "x"}, headers=alice)
    await response.read()
    await receiver.wait(lambda: len(receiver.delivered()) == 1)
    mine = await (await client.get("/webhook/delivery", headers=alice)).json()
    assert [d["session_id"] for d in mine] == [sid]
    theirs = await client.get("/webhook/delivery", params={"session_id": sid}, headers=bob)
    assert theirs.status == 200 and await theirs.json() == []


def test_webhook_url_without_a_secret_refuses_to_start() -> None:
    from opencode_api.actors import WebhookConfigError
    from opencode_api.actors._webhooks import webhook_signer
    from opencode_api.settings import Settings

    with pytest.raises(WebhookConfigError, match="WEBHOOK_SECRET is not"):
        webhook_signer(Settings(_env_file=None, webhook_url="https://hooks.example.com/x"))
    with pytest.raises(WebhookConfigError, match="whsec_") as bad:
        webhook_signer(Settings(_env_file=None, webhook_secret="whsec_!!!not-base64"))
    assert "not-base64" not in str(bad.value)
    assert webhook_signer(Settings(_env_file=None)) is None


async def test_every_delivery_arrives_after_a_kill_9_while_they_were_pending(
    tmp_path: Path, fake: FakeLLMServer, receiver: Receiver
) -> None:
    receiver.default = 500  # the receiver is down: deliveries stay pending, retried
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "OPENAI_API_BASE": fake.base_url,
        "OPENAI_API_KEY": "sk-test",
        "LOG_FORMAT": "json",
        "AUTO_TITLE": "false",  # titles would take the scripted replies
        "WEBHOOK_URL": receiver.url,
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_RETRY_BASE_DELAY": "0.05",
        "WEBHOOK_RETRY_MAX_DELAY": "0.2",
        "WEBHOOK_MAX_ATTEMPTS": "1000",
        "WEBHOOK_TIMEOUT": "1",
        "WEBHOOK_POLL_INTERVAL": "0.2",
    }
    fake.enqueue(Reply(text="one"), Reply(text="two"), Reply(text="three"))
    port = free_port()
    drains: list[asyncio.Task[None]] = []

    def serve() -> Awaitable[asyncio.subprocess.Process]:
        return _serve(tmp_path, port, env, drains)

    first = await serve()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for content in ("a", "b", "c"):
                sid = (await http.post("/session")).json()["id"]
                response = await http.post(f"/session/{sid}/message", json={"content": content})
                assert response.status_code == 200
        # Every delivery was stored and tried at least once; none got through.
        await receiver.wait(lambda: len({r["id"] for r in receiver.seen}) == 3)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    assert receiver.delivered() == {}
    pending = {r["id"] for r in receiver.seen}

    receiver.default = 200  # the receiver is back; so is the server, on the same database
    second = await serve()
    try:
        await receiver.wait(lambda: set(receiver.delivered()) == pending, timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 30)
    texts = sorted(p["data"]["message"]["content"] for p in receiver.delivered().values())
    assert texts == ["one", "three", "two"]
    # Every request of one delivery carried the same body: duplicates are only same-id resends.
    for delivery_id in pending:
        assert len({r["body"] for r in receiver.seen if r["id"] == delivery_id}) == 1
    assert all(json.loads(r["body"])["type"] == "turn.completed" for r in receiver.seen)
    await asyncio.gather(*drains)


async def test_a_turn_cut_by_a_kill_9_is_turn_failed_after_the_restart(
    tmp_path: Path, fake: FakeLLMServer, receiver: Receiver
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "OPENAI_API_BASE": fake.base_url,
        "OPENAI_API_KEY": "sk-test",
        "LOG_FORMAT": "json",
        "AUTO_TITLE": "false",
        "WEBHOOK_URL": receiver.url,
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_POLL_INTERVAL": "0.2",
    }
    asked = asyncio.Event()
    fake.enqueue(Reply(text="never finished", received=asked, hold=asyncio.Event()))
    port = free_port()
    drains: list[asyncio.Task[None]] = []

    def serve() -> Awaitable[asyncio.subprocess.Process]:
        return _serve(tmp_path, port, env, drains)

    first = await serve()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            sid = (await http.post("/session")).json()["id"]
            accepted = await http.post(
                f"/session/{sid}/message?stream=false", json={"content": "x"}
            )
            user_message_id = accepted.json()["user_message_id"]
            await asyncio.wait_for(asked.wait(), 30)  # the turn runs, held by the provider
        first.send_signal(signal.SIGKILL)
        await first.wait()
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    assert receiver.seen == []  # nobody heard the turn end: the process died inside it

    second = await serve()  # marks the turn interrupted; its webhook follows
    try:
        await receiver.wait(lambda: len(receiver.delivered()) == 1, timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 30)
    (body,) = receiver.delivered().values()
    assert body["type"] == "turn.failed"
    data = body["data"]
    assert (data["session_id"], data["user_message_id"], data["status"]) == (
        sid,
        user_message_id,
        "interrupted",
    )
    assert data["message"]["error"]["type"] == "interrupted"
    await asyncio.gather(*drains)


async def _serve(
    tmp_path: Path, port: int, env: dict[str, str], drains: list[asyncio.Task[None]]
) -> asyncio.subprocess.Process:
    """``opencode-api serve`` in a child process on ``port``, listening; its stderr drained."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "opencode_api", "serve", "--host", "127.0.0.1"),
        *("--port", str(port)),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    await wait_listening(process)
    assert process.stderr is not None
    drains.append(asyncio.create_task(_drain(process.stderr)))
    return process


async def _drain(stream: asyncio.StreamReader) -> None:
    """Keep reading the server's log so a full pipe never blocks it."""
    while await stream.readline():
        pass
