"""Webhook events: turn ends and questions, seen on the runtime's bus, become stored deliveries.

Turns never wait for this: the bus hands an event over without blocking, a small task stores the
deliveries, and what the store refuses is retried by ``DeferredWrites``. Events waiting to be
stored are bounded (``WEBHOOK_MAX_PENDING``); beyond that new ones are dropped and logged.

A turn's end is the bus's ``message.updated`` with the final assistant message (published after
that message is stored): it carries the message, its status and its user message (``parent_id``)
without reading the store back. ``question.asked`` carries the question.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from opencode_api.actors._deferred import DeferredWrites
from opencode_api.actors._events import BusEvent
from opencode_api.actors._ids import new_id
from opencode_api.actors._replies import _REPLY_STATUS
from opencode_api.runtime import Outbox, SubscriberLagged
from opencode_api.settings import Settings
from opencode_api.store import Store, WebhookDelivery, utcnow

log = structlog.get_logger("opencode_api.webhooks")

# The final status of a turn's reply -> its event (API.md: ``done`` with any stop reason is
# completed; ``error`` or an interruption failed).
_TURN_EVENTS = {
    "completed": "turn.completed",
    "aborted": "turn.completed",
    "error": "turn.failed",
    "interrupted": "turn.failed",
}


# How far back the sweep looks for interrupted turns (by their reply's creation).
_SWEEP_WINDOW = timedelta(days=1)


def delivery_id_of(source_id: str, kind: str, url: str) -> str:
    """The same id for the same event to the same URL, wherever it is seen: several front ends
    hearing one shard's bus (``serve --ray``), or a write retried after a lost commit, store it
    once (the store ignores an id it has). Time-sortable like the message or question id it
    derives from (its ULID part), then a digest of the event and the target."""
    ulid = source_id.partition("_")[2]
    if not ulid:
        return new_id("whd")
    digest = hashlib.sha256(f"{kind}\n{url}".encode()).hexdigest()[:12]
    return f"whd_{ulid}{digest}"


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class WebhookEvents:
    """Bus events -> ``WebhookDelivery`` rows, one per target (``WEBHOOK_URL`` and the
    session's own ``webhook_url``). ``stored`` is called after deliveries land."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Outbox[BusEvent],
        stored: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus
        self._stored = stored
        self._queue: deque[tuple[BusEvent, datetime]] = deque()
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()  # the writer waits for events: all taken were handled
        self._idle.set()
        self._writes = DeferredWrites(first_delay=0.5, max_delay=30.0)
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0

    def start(self) -> None:
        # Subscribed now, before any turn of this runtime can end unseen.
        subscription = self._bus.subscribe(None, max_pending=self._settings.outbox_size)
        self._tasks = [
            asyncio.create_task(self._listen(subscription), name="opencode_api.webhook_events"),
            asyncio.create_task(self._store_events(), name="opencode_api.webhook_writes"),
            asyncio.create_task(self._sweep_interrupted(), name="opencode_api.webhook_sweep"),
        ]

    def pending(self) -> int:
        """Events not stored yet (waiting here, or for the store to come back)."""
        return len(self._queue) + len(self._writes)

    async def close(self, timeout: float = 2.0) -> None:
        """Store what is still waiting within ``timeout`` (the bus should be closed by now);
        what is left then is logged and lost."""
        listen, writer, sweep = self._tasks or (None, None, None)
        self._tasks = []
        if sweep is not None:
            sweep.cancel()
            await asyncio.gather(sweep, return_exceptions=True)
        if listen is not None:
            if self._bus.closed:  # the listener ends by itself once it took what is left
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(listen), timeout)
            listen.cancel()
            await asyncio.gather(listen, return_exceptions=True)
        if writer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        await self._writes.close(timeout)
        if self._queue:
            log.error("webhook events not stored at shutdown", count=len(self._queue))
            self._queue.clear()

    # -- the bus ---------------------------------------------------------------------------------
    async def _listen(self, subscription: Any) -> None:
        while True:
            try:
                async for item in subscription:
                    self.take(item.event)
                return  # the bus closed: the runtime stopped
            except SubscriberLagged:
                # Only when this loop could not keep up with the bus (it never awaits).
                log.error("webhook events were missed: the bus outran its listener")
                subscription = self._bus.subscribe(None, max_pending=self._settings.outbox_size)
            finally:
                subscription.close()

    def take(self, event: BusEvent) -> None:
        """Queue a bus event that calls for webhooks; never blocks, never raises."""
        if event.type == "message.updated":
            info = event.properties.get("info") or {}
            if info.get("role") != "assistant" or info.get("status") not in _TURN_EVENTS:
                return
        elif event.type != "question.asked":
            return
        if self.pending() >= self._settings.webhook_max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("webhook events dropped: too many wait for the store", count=self.dropped)
            return
        self._queue.append((event, utcnow()))
        self._idle.clear()
        self._ready.set()

    async def _sweep_interrupted(self) -> None:
        """``turn.failed`` for the turns a dead process left running: nobody publishes their end,
        so the store is asked for the replies marked interrupted (at this process's start-up, or
        later by the lease recovery) every ``TURN_LEASE_TTL``. A reply is taken once per process,
        and stored once whatever the number of processes (the delivery id comes from it)."""
        seen: set[str] = set()
        while True:
            since = utcnow() - _SWEEP_WINDOW
            try:
                replies = await self._store.interrupted_replies(since=since)
            except Exception:  # the store is down: the next sweep tries again
                log.warning("interrupted turns not swept", exc_info=True)
                replies = []
            for reply in replies:
                if reply.id not in seen:
                    seen.add(reply.id)
                    info = reply.model_dump(mode="json")
                    self.take(BusEvent("message.updated", {"info": info}, reply.session_id))
            await asyncio.sleep(self._settings.turn_lease_ttl)

    # -- the store -------------------------------------------------------------------------------
    async def _store_events(self) -> None:
        while True:
            while not self._queue:
                self._idle.set()
                self._ready.clear()
                await self._ready.wait()
            event, at = self._queue.popleft()

            async def write(event: BusEvent = event, at: datetime = at) -> None:
                deliveries = await self._deliveries(event, at)
                if deliveries:
                    await self._store.add_webhook_deliveries(deliveries)
                    self._stored()

            await self._writes.run(f"webhook {event.type}", [write])

    async def _deliveries(self, event: BusEvent, at: datetime) -> list[WebhookDelivery]:
        session_id = event.session_id or str(event.properties.get("session_id") or "")
        session = await self._store.get_session(session_id) if session_id else None
        targets = [self._settings.webhook_url, session.webhook_url if session else None]
        urls = list(dict.fromkeys(url for url in targets if url))
        if not urls:
            return []
        kind, data, source_id = await self._body(event, session_id)
        payload = json.dumps(
            {"type": kind, "timestamp": _iso(at), "data": data},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        user_id = event.user_id
        if user_id is None and session is not None:
            user_id = session.user_id
        return [
            WebhookDelivery(
                id=delivery_id_of(source_id, kind, url),
                event=kind,
                session_id=session_id,
                user_id=user_id,
                url=url,
                payload=payload,
                next_attempt_at=at,
                created_at=at,
            )
            for url in urls
        ]

    async def _body(self, event: BusEvent, session_id: str) -> tuple[str, dict[str, Any], str]:
        """(event type, ``data``, the id of the message or question it is about)."""
        if event.type == "message.updated":
            info = dict(event.properties["info"])
            info["stop_reason"] = info.get("finish")  # as the message routes show a message
            data = {
                "session_id": session_id,
                "user_message_id": info.get("parent_id"),
                "status": _REPLY_STATUS.get(str(info.get("status")), "running"),
                "message": info,
            }
            return _TURN_EVENTS[str(info["status"])], data, str(info.get("id") or "")
        question = event.properties.get("question") or {}
        reply_id = question.get("message_id")
        reply = await self._store.get_message(reply_id) if reply_id else None
        data = {
            "session_id": session_id,
            "user_message_id": reply.parent_id if reply is not None else None,
            # As /reply reports a turn that waits on a question: running, no message yet.
            "status": "running",
            "message": None,
            "question": question,
        }
        return "question.asked", data, str(question.get("id") or "")
