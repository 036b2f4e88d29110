"""The webhook sender: claims due deliveries from the store, POSTs them signed, and records how
each attempt went (delivered on 2xx; otherwise retried with exponential backoff and jitter, and
``failed`` after ``WEBHOOK_MAX_ATTEMPTS``).

At most ``WEBHOOK_CONCURRENCY`` requests are in flight, each bounded by ``WEBHOOK_TIMEOUT`` and
never reading the receiver's body, so a slow or dead receiver costs a few slots, not memory.
Signatures follow Standard Webhooks (the ``standardwebhooks`` package); neither the secret nor a
signature is ever logged, and a URL is logged by its host only (its path may hold a token).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import uuid
from datetime import datetime, timedelta

import aiohttp
import structlog
from standardwebhooks import Webhook
from yarl import URL

from opencode_api.actors._webhook_targets import blocked_error, refused, webhook_connector
from opencode_api.settings import Settings
from opencode_api.store import Store, StoreError, WebhookDelivery, utcnow

log = structlog.get_logger("opencode_api.webhooks")

# A claim outlives one attempt (its request and the write of its outcome) by this much.
_LEASE_MARGIN = 5.0


def backoff(attempts: int, settings: Settings) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: base * 2**(n-1), capped,
    +-20% jitter so receivers coming back are not hit by every sender at once."""
    delay: float = settings.webhook_retry_base_delay * 2.0 ** max(attempts - 1, 0)
    return min(delay, settings.webhook_retry_max_delay) * random.uniform(0.8, 1.2)


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class WebhookSender:
    """Sends the store's due deliveries; ``wake()`` when new ones were stored."""

    def __init__(self, settings: Settings, store: Store, signer: Webhook) -> None:
        self._settings = settings
        self._store = store
        self._signer = signer
        self.owner = owner_id()
        self._lease = settings.webhook_timeout + _LEASE_MARGIN
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._next_due: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        # Attempts whose outcome was stored, and an event set at the next one (wait_stored).
        self.stored = 0
        self._stored_event = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def wait_stored(self, after: int) -> None:
        """Until more than ``after`` attempts have their outcome stored (``stored`` counts them):
        for whoever watches deliveries from inside the process (tests, embedding code)."""
        while self.stored <= after:
            await self._stored_event.wait()

    def _outcome_stored(self) -> None:
        self.stored += 1
        event, self._stored_event = self._stored_event, asyncio.Event()
        event.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="opencode_api.webhook_sender")

    async def close(self) -> None:
        """Stop sending. Requests in flight are cancelled; their claims run out and the next
        sender (this process restarted, or another) sends them again."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        settings = self._settings
        timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout)
        async with aiohttp.ClientSession(
            connector=webhook_connector(settings), timeout=timeout, trust_env=False
        ) as http:
            try:
                while True:
                    self._wake.clear()
                    free = settings.webhook_concurrency - len(self._inflight)
                    claimed = await self._claim(free) if free > 0 else []
                    for delivery in claimed:
                        task = asyncio.create_task(self._attempt(http, delivery))
                        self._inflight.add(task)
                        task.add_done_callback(self._finished)
                    if claimed and len(claimed) == free:
                        await self._wake.wait()  # more may be due: claim again once a slot frees
                        continue
                    await self._sleep()
            finally:
                inflight = list(self._inflight)
                for task in inflight:
                    task.cancel()
                await asyncio.gather(*inflight, return_exceptions=True)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            # A bug: the claim runs out and the delivery is tried again.
            log.error("webhook attempt failed", exc_info=task.exception())

    async def _sleep(self) -> None:
        """Until woken, the next retry this process scheduled, or the poll interval."""
        wait = self._settings.webhook_poll_interval
        if self._next_due is not None:
            wait = min(wait, max((self._next_due - utcnow()).total_seconds(), 0.0))
            self._next_due = None
        try:
            await asyncio.wait_for(self._wake.wait(), wait)
        except TimeoutError:
            pass

    async def _claim(self, limit: int) -> list[WebhookDelivery]:
        try:
            return await self._store.claim_webhook_deliveries(
                self.owner, limit=limit, lease=self._lease
            )
        except StoreError:
            log.warning("store unavailable: webhook deliveries wait")
        except Exception:  # a bug must not stop the sender: it tries again at the next poll
            log.exception("claiming webhook deliveries failed")
        return []

    def _headers(self, delivery: WebhookDelivery, at: datetime) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "opencode-api-webhooks",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": self._signer.sign(delivery.id, at, delivery.payload),
        }

    async def _attempt(self, http: aiohttp.ClientSession, delivery: WebhookDelivery) -> None:
        settings = self._settings
        code: int | None = None
        error = refused(delivery.url, allow_private=settings.webhook_allow_private)
        if error is None:
            at = utcnow()
            try:
                async with http.post(
                    delivery.url,
                    data=delivery.payload.encode(),
                    headers=self._headers(delivery, at),
                    allow_redirects=False,
                ) as response:
                    code = response.status
            except TimeoutError:
                error = f"timed out after {settings.webhook_timeout:g} s"
            except aiohttp.ClientError as exc:
                error = blocked_error(exc) or f"connection failed ({type(exc).__name__})"
            except OSError as exc:  # the resolver's refusal when aiohttp does not wrap it
                error = blocked_error(exc) or f"connection failed ({type(exc).__name__})"
        attempts = delivery.attempts + 1
        ok = code is not None and 200 <= code < 300
        if error is None and not ok:
            error = f"HTTP {code}"
        if ok:
            status, next_at = "delivered", None
        elif attempts >= settings.webhook_max_attempts:
            status, next_at = "failed", None
        else:
            status, next_at = "pending", utcnow() + timedelta(seconds=backoff(attempts, settings))
            if self._next_due is None or next_at < self._next_due:
                self._next_due = next_at
        outcome = delivery.model_copy(
            update={
                "status": status,
                "attempts": attempts,
                "last_status_code": code,
                "last_error": None if ok else error,
                "next_attempt_at": next_at,
            }
        )
        host = URL(delivery.url).host
        log.info(
            "webhook attempt",
            delivery_id=delivery.id,
            webhook_event=delivery.event,
            host=host,
            status=status,
            status_code=code,
            attempts=attempts,
        )
        try:
            if not await self._store.finish_webhook_attempt(outcome, self.owner):
                log.warning("webhook claim lost before the outcome", delivery_id=delivery.id)
            self._outcome_stored()
        except StoreError:
            # The claim runs out and the delivery is sent again: at-least-once.
            log.warning("store unavailable: webhook outcome not stored", delivery_id=delivery.id)
