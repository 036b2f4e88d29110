"""``SessionDirectory``: sessions as records (create, read, rename, delete) and their bus events.

It keeps the sessions used lately (``RecentSessions``) so a turn does not read its session back,
and it stops a session's actor before deleting what the session holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypedDict, Unpack

import structlog

from opencode_api.actors._errors import InvalidRequestError, NotFoundError
from opencode_api.actors._ids import new_id
from opencode_api.actors._messages import Abort, next_ticket
from opencode_api.actors._placement import Placement
from opencode_api.actors._recent import RecentSessions
from opencode_api.actors._webhook_targets import check_webhook_url
from opencode_api.llm import resolve_model
from opencode_api.settings import Settings
from opencode_api.store import (
    ClearableField,
    ForkOrigin,
    Message,
    MessagePage,
    Order,
    Session,
    SessionCost,
    Store,
    utcnow,
)

log = structlog.get_logger("opencode_api.runtime")

# (event type, session id, user id, properties) -> published on the bus.
Publish = Callable[[str, str, str | None, Callable[[], dict[str, Any]]], None]


class NewSession(TypedDict, total=False):
    """What ``Runtime.create_session`` takes, all by keyword and all optional."""

    title: str | None
    provider_id: str | None
    model_id: str | None
    system: str | None
    user_id: str | None
    max_cost: float | None
    webhook_url: str | None


class SessionChanges(TypedDict, total=False):
    """What ``Runtime.update_session`` changes; ``clear`` names fields set back to null."""

    title: str | None
    max_cost: float | None
    webhook_url: str | None
    clear: Sequence[ClearableField]


class SessionDirectory:
    """Sessions as records for the ``Runtime``; see the module docstring."""

    def __init__(
        self, settings: Settings, store: Store, placement: Placement, publish: Publish
    ) -> None:
        self._settings = settings
        self._store = store
        self._placement = placement
        self._publish = publish
        self._recent = RecentSessions()

    def resolve(self, provider_id: str | None, model_id: str | None) -> tuple[str, str, str]:
        """(provider, model name, LiteLLM model string); a model nobody offers is a 400."""
        try:
            return resolve_model(provider_id, model_id, self._settings.default_model)
        except ValueError as exc:
            raise InvalidRequestError(str(exc), field="model_id") from exc

    async def create(self, **fields: Unpack[NewSession]) -> Session:
        provider_id, model_id = fields.get("provider_id"), fields.get("model_id")
        if provider_id is not None or model_id is not None:
            provider_id, model_id, _ = self.resolve(provider_id, model_id)
        user_id = fields.get("user_id")
        session = Session(
            id=new_id("ses"),
            title=fields.get("title"),
            provider_id=provider_id,
            model_id=model_id,
            system=fields.get("system"),
            user_id=user_id,
            max_cost=fields.get("max_cost"),
            webhook_url=self._webhook_target(fields.get("webhook_url")),
        )
        created = await self._store.create_session(session)
        self._recent.remember(created, whole=True)
        self._publish("session.created", created.id, user_id, lambda: {"info": jsonable(created)})
        return created

    async def get(self, session_id: str, user_id: str | None) -> Session:
        before = self._placement.holds(session_id)
        session = await self._store.get_session(session_id, user_id=user_id)
        if session is None:
            raise NotFoundError("session", session_id)
        # Read while no actor of it ran (none held it, none was activated meanwhile): the
        # row is whole, and its next actor may start from it.
        whole = before is not None and self._placement.holds(session_id) == before
        self._recent.remember(session, whole=whole)
        return session

    def take_whole(self, session_id: str) -> Session | None:
        """The session as last written or read here while no actor held it, if no actor has
        held it since (``RecentSessions``): its next actor starts without reading it again."""
        return self._recent.take_whole(session_id)

    async def for_turn(self, session_id: str, user_id: str | None) -> Session:
        """Like ``get``, from memory when the session was used lately."""
        session = self._recent.get(session_id, user_id)
        if session is not None:
            return session
        return await self.get(session_id, user_id)

    def _webhook_target(self, url: str | None) -> str | None:
        """A session's webhook URL, under webfetch's SSRF policy (actors/_webhook_targets.py)."""
        if url is None:
            return None
        return check_webhook_url(url, allow_private=self._settings.webhook_allow_private)

    async def update(
        self, session_id: str, user_id: str | None, changes: SessionChanges
    ) -> Session:
        max_cost = changes.get("max_cost")
        if max_cost is not None and max_cost < 0:
            raise InvalidRequestError("max_cost must be >= 0", field="max_cost")
        session = await self._store.update_session(
            session_id,
            user_id=user_id,
            title=changes.get("title"),
            max_cost=max_cost,
            webhook_url=self._webhook_target(changes.get("webhook_url")),
            clear=changes.get("clear", ()),
        )
        if session is None:
            raise NotFoundError("session", session_id)
        self._recent.remember(session)
        self._publish("session.updated", session_id, user_id, lambda: {"info": jsonable(session)})
        return session

    async def fork(
        self, session_id: str, user_id: str | None, message_id: str | None, title: str | None
    ) -> Session:
        source = await self.get(session_id, user_id)
        fork = source.model_copy(
            update={
                "id": new_id("ses"),
                "title": title if title is not None else source.title,
                "created_at": utcnow(),
                "updated_at": utcnow(),
                "status": "idle",
                "message_count": 0,
                "total_cost": 0.0,
                "total_input_tokens": 0,
                "total_output_tokens": 0,
                "forked_from": ForkOrigin(session_id=session_id, message_id=message_id),
                "revert": None,
            }
        )
        made = await self._store.fork_session(session_id, fork, upto=message_id)
        if made is None:
            raise (
                NotFoundError("message", message_id or "")
                if message_id
                else NotFoundError("session", session_id)
            )
        self._recent.remember(made)
        self._publish("session.created", made.id, made.user_id, lambda: {"info": jsonable(made)})
        return made

    async def delete(self, session_id: str, user_id: str | None) -> None:
        """Abort a running turn, stop the actor, delete the session and all it holds."""
        await self.get(session_id, user_id)
        ref = self._placement.live(session_id)
        if ref is not None:
            try:
                timeout = min(5.0, self._settings.control_timeout)
                await ref.ask_control(Abort(next_ticket()), timeout=timeout)
            except Exception:  # the actor may already be gone; deletion goes on
                log.debug("abort before delete failed", session_id=session_id, exc_info=True)
            await self._placement.stop(session_id, self._settings.shutdown_grace)
        self._recent.forget(session_id)
        if not await self._store.delete_session(session_id, user_id=user_id):
            raise NotFoundError("session", session_id)
        self._publish("session.deleted", session_id, user_id, lambda: {"info": {"id": session_id}})

    async def messages(
        self,
        session_id: str,
        user_id: str | None,
        limit: int | None,
        offset: int,
        order: Order,
    ) -> MessagePage:
        if limit is not None and limit < 0:
            raise InvalidRequestError("limit must be >= 0", field="limit")
        if offset < 0:
            raise InvalidRequestError("offset must be >= 0", field="offset")
        page = await self._store.list_messages(
            session_id, user_id=user_id, limit=limit, offset=offset, order=order
        )
        if page is None:
            raise NotFoundError("session", session_id)
        return page

    async def message(self, session_id: str, message_id: str, user_id: str | None) -> Message:
        await self.get(session_id, user_id)
        message = await self._store.get_message(message_id)
        if message is None or message.session_id != session_id:
            raise NotFoundError("message", message_id)
        return message

    async def cost(self, session_id: str, user_id: str | None) -> SessionCost:
        cost = await self._store.get_session_cost(session_id, user_id=user_id)
        if cost is None:
            raise NotFoundError("session", session_id)
        return cost


def jsonable(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json")
    return data
