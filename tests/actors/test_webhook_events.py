"""Webhook events when the store is down: stored once it is back (``DeferredWrites``), and what
waits in memory is bounded (``WEBHOOK_MAX_PENDING``), never a turn blocked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from opencode_api.actors import BusEvent
from opencode_api.actors._webhook_events import WebhookEvents
from opencode_api.runtime import Outbox
from opencode_api.settings import Settings
from opencode_api.store import Session, SqliteStore, StoreError, WebhookDelivery


class FlakyStore:
    """A real store whose ``add_webhook_deliveries`` fails while ``down`` is set."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.down = True
        self.refused = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def add_webhook_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        if self.down:
            self.refused.set()
            raise StoreError("store down (scripted)")
        await self._store.add_webhook_deliveries(deliveries)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "db.sqlite"))
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def turn_end(session_id: str, mid: str) -> BusEvent:
    info = {
        "id": mid,
        "role": "assistant",
        "status": "completed",
        "parent_id": "msg_user",
        "content": "done",
        "finish": "stop",
    }
    return BusEvent("message.updated", {"info": info}, session_id=session_id)


async def test_events_the_store_refused_are_stored_once_it_is_back(store: SqliteStore) -> None:
    session = await store.create_session(Session(id="ses_w", webhook_url="https://h.example/x"))
    flaky = FlakyStore(store)
    bus: Outbox[BusEvent] = Outbox(capacity=64)
    landed = asyncio.Event()
    settings = Settings(_env_file=None, webhook_url="https://all.example/in")
    events = WebhookEvents(settings, flaky, bus, landed.set)  # type: ignore[arg-type]
    events.start()
    try:
        bus.publish(turn_end(session.id, "msg_a"))
        bus.publish(BusEvent("session.status", {"status": "idle"}, session_id=session.id))
        await asyncio.wait_for(flaky.refused.wait(), 10)  # the write now waits for the store
        assert events.pending() == 1 and not landed.is_set()
        flaky.down = False
        await asyncio.wait_for(landed.wait(), 10)
    finally:
        bus.close()
        await events.close()
    stored = await store.list_webhook_deliveries()
    assert sorted(d.url for d in stored) == ["https://all.example/in", "https://h.example/x"]
    assert {d.event for d in stored} == {"turn.completed"} and len({d.id for d in stored}) == 2
    assert stored[0].payload == stored[1].payload


async def test_events_waiting_for_the_store_are_bounded(store: SqliteStore) -> None:
    flaky = FlakyStore(store)
    bus: Outbox[BusEvent] = Outbox(capacity=64)
    settings = Settings(_env_file=None, webhook_url="https://all.example/in", webhook_max_pending=3)
    events = WebhookEvents(settings, flaky, bus, lambda: None)  # type: ignore[arg-type]
    try:
        for i in range(10):  # taken synchronously, as the bus hands them over
            events.take(turn_end("ses_gone", f"msg_{i}"))
        assert events.pending() == 3 and events.dropped == 7
    finally:
        await events.close(timeout=0.1)


async def test_one_event_heard_twice_is_stored_once(store: SqliteStore) -> None:
    """Under ``serve --ray`` every front end hears every shard's bus: ids derive from the event."""
    session = await store.create_session(Session(id="ses_w", webhook_url="https://h.example/x"))
    bus: Outbox[BusEvent] = Outbox(capacity=64)
    settings = Settings(_env_file=None, webhook_url="https://all.example/in")
    events = WebhookEvents(settings, store, bus, lambda: None)
    events.start()
    try:
        bus.publish(turn_end(session.id, "msg_01JABCDEFGHJKMNPQRSTVWXYZ0"))
        bus.publish(turn_end(session.id, "msg_01JABCDEFGHJKMNPQRSTVWXYZ0"))
        bus.close()
    finally:
        await events.close()
    stored = await store.list_webhook_deliveries()
    assert len(stored) == 2  # one per target
    assert all(d.id.startswith("whd_01JABCDEFGHJKMNPQRSTVWXYZ0") for d in stored)
