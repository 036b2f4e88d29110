"""``GET /webhook/delivery``: the webhook deliveries of the caller's sessions and how they went."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, field_validator
from yarl import URL

from opencode_api.http._auth import user_id_of
from opencode_api.http._keys import RUNTIME
from opencode_api.http._openapi import RouteSpec, route
from opencode_api.http._schemas import _Request
from opencode_api.http._validation import read_query
from opencode_api.store import WebhookDelivery

DeliveryStatus = Literal["pending", "delivered", "failed"]


class DeliveryListQuery(_Request):
    session_id: str | None = Field(
        default=None, description="Only this session's deliveries (empty: all sessions)"
    )
    # "" as in API.md's ``?session_id=&status=``: no filter, as when absent.
    status: DeliveryStatus | Literal[""] | None = Field(
        default=None, description="Only deliveries in this state (empty: all)"
    )
    limit: int = Field(default=100, ge=1, le=1000, description="At most this many, newest first")

    @field_validator("session_id", "status")
    @classmethod
    def _empty_is_absent(cls, value: str | None) -> str | None:
        return value or None


class WebhookDeliveryOut(BaseModel):
    """One event sent (or to be sent) to one URL."""

    id: str = Field(description="Also the `webhook-id` header: receivers drop duplicates by it")
    event: str = Field(description="turn.completed, turn.failed or question.asked")
    session_id: str
    url: str = Field(
        description="The target; the server-wide WEBHOOK_URL shows only its origin to users"
    )
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None = Field(description="The receiver's answer to the last attempt")
    last_error: str | None = Field(description="Why the last attempt failed (null after a 2xx)")
    next_attempt_at: datetime | None = Field(description="When it is retried (pending only)")
    created_at: datetime


def _shown_url(delivery: WebhookDelivery, server_url: str | None, user_id: str | None) -> str:
    if user_id is None or delivery.url != server_url:
        return delivery.url
    # The operator's URL may carry a token in its path or query: users see where, not how.
    return str(URL(delivery.url).origin())


@route(
    "GET",
    "/webhook/delivery",
    name="list_webhook_deliveries",
    summary="Webhook deliveries of your sessions, newest first",
    tag="webhooks",
    query=DeliveryListQuery,
    response=list[WebhookDeliveryOut],
    errors=(422,),
)
async def list_deliveries(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    query = read_query(request, DeliveryListQuery)
    user_id = user_id_of(request)
    deliveries = await runtime.store.list_webhook_deliveries(
        session_id=query.session_id, status=query.status or None, user_id=user_id, limit=query.limit
    )
    server_url = runtime.settings.webhook_url
    return web.json_response(
        [
            WebhookDeliveryOut(
                id=d.id,
                event=d.event,
                session_id=d.session_id,
                url=_shown_url(d, server_url, user_id),
                status=d.status,
                attempts=d.attempts,
                last_status_code=d.last_status_code,
                last_error=d.last_error,
                next_attempt_at=d.next_attempt_at,
                created_at=d.created_at,
            ).model_dump(mode="json")
            for d in deliveries
        ]
    )


ROUTES: list[RouteSpec] = [list_deliveries]
