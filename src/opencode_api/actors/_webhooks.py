"""Webhooks of a runtime (API.md, "Webhooks"): ``run_webhooks(runtime)`` stores an event's
deliveries when a turn ends or asks a question, and sends them from a background sender, for as
long as the context lasts.

Configuration: ``WEBHOOK_SECRET`` (``whsec_<base64>``) signs every delivery. ``WEBHOOK_URL``
without a secret, a secret that is not ``whsec_<base64>`` or a ``WEBHOOK_URL`` the SSRF policy
refuses stops start-up with ``WebhookConfigError``. Without a secret and without
``WEBHOOK_URL`` nothing is sent: a session's ``webhook_url`` is kept but not used (logged once at
start-up), since an unsigned delivery could not be told from a forged one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import structlog
from standardwebhooks import Webhook

from opencode_api.actors._errors import InvalidRequestError
from opencode_api.actors._events import BusEvent
from opencode_api.actors._webhook_events import WebhookEvents
from opencode_api.actors._webhook_sender import WebhookSender
from opencode_api.actors._webhook_targets import check_webhook_url
from opencode_api.errors import OpenCodeError
from opencode_api.runtime import Outbox
from opencode_api.settings import Settings
from opencode_api.store import Store

log = structlog.get_logger("opencode_api.webhooks")


class WebhookConfigError(OpenCodeError):
    """The webhook settings cannot work (the message names the variable, never its value)."""


def webhook_signer(settings: Settings) -> Webhook | None:
    """The signer of ``WEBHOOK_SECRET``; None when webhooks are off (no secret, no URL)."""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if settings.webhook_url:
        try:
            check_webhook_url(settings.webhook_url, allow_private=settings.webhook_allow_private)
        except InvalidRequestError as exc:
            raise WebhookConfigError(f"WEBHOOK_URL: {exc}") from None
        if not secret:
            raise WebhookConfigError(
                "WEBHOOK_URL is set but WEBHOOK_SECRET is not: set WEBHOOK_SECRET to a Standard "
                "Webhooks secret (whsec_ followed by base64 of 24 to 64 random bytes)"
            )
    if not secret:
        return None
    try:
        return Webhook(secret)
    except Exception as exc:  # binascii.Error, EmptyWebhookSecretError...
        # Never the secret itself in the message.
        raise WebhookConfigError(
            f"WEBHOOK_SECRET must be whsec_ followed by base64 ({type(exc).__name__})"
        ) from None


class HasBus(Protocol):
    """What webhooks need of a runtime (``Runtime`` has it; no import of it here, so that the
    Runtime itself may start its webhooks one day without an import cycle)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    @property
    def bus(self) -> Outbox[BusEvent]: ...


class Webhooks:
    """The event side (bus -> stored deliveries) and the sending side of one runtime."""

    def __init__(
        self, settings: Settings, store: Store, bus: Outbox[BusEvent], signer: Webhook
    ) -> None:
        self.sender = WebhookSender(settings, store, signer)
        self.events = WebhookEvents(settings, store, bus, self.sender.wake)

    def start(self) -> None:
        self.events.start()
        self.sender.start()

    async def close(self) -> None:
        """Store the events still waiting (briefly), then stop sending; what is stored and not
        yet delivered is sent by the next process on this database."""
        try:
            await self.events.close()
        finally:
            await self.sender.close()

    @classmethod
    def start_for(cls, runtime: HasBus) -> Webhooks | None:
        """Started webhooks of ``runtime`` (None when they are off); ``close()`` them after the
        runtime closed its bus. Raises ``WebhookConfigError`` for settings that cannot work."""
        settings = runtime.settings
        signer = webhook_signer(settings)
        if signer is None:
            log.debug("webhooks off: no WEBHOOK_SECRET (sessions' webhook_url is not used)")
            return None
        webhooks = cls(settings, runtime.store, runtime.bus, signer)
        webhooks.start()
        return webhooks


@asynccontextmanager
async def run_webhooks(runtime: HasBus) -> AsyncIterator[Webhooks | None]:
    """Webhooks for ``runtime`` while the context lasts (None when they are off).

    Enter it after the runtime started and leave it after the runtime closed (its bus closed),
    so the ends of the turns that shutdown aborted are stored too.
    """
    webhooks = Webhooks.start_for(runtime)
    try:
        yield webhooks
    finally:
        if webhooks is not None:
            await webhooks.close()
