"""How a turn ends (``TurnEnding``, mixed into ``SessionActor``): its terminal event, what it
produced into the store (now, or later through ``DeferredWrites``), its quota settled, the bus told,
and the turn listeners (metrics, webhooks) given its summary."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opencode_api.actors._deferred import Write
from opencode_api.actors._deps import SessionDeps, TurnSummary
from opencode_api.actors._events import Done, ErrorEvent, TurnEvent
from opencode_api.actors._messages import RunTurn
from opencode_api.actors._turn import Turn
from opencode_api.store import Message, MessageStatus, Session


class TurnEnding:
    session: Session
    deps: SessionDeps
    _history: list[Message] | None
    _abort_requested_at: float | None

    def publish(self, event: TurnEvent) -> None:
        raise NotImplementedError

    def publish_bus(
        self, event_type: str, properties: dict[str, Any] | Callable[[], dict[str, Any]]
    ) -> None:
        raise NotImplementedError

    async def _finish(
        self,
        turn: Turn,
        msg: RunTurn,
        stop_reason: str,
        started: float,
        *,
        error: dict[str, Any] | None = None,
        store_message: bool = True,
    ) -> None:
        """End the turn: its terminal event always, then what it produced into the store (now,
        or later by ``DeferredWrites`` if the store refuses), and its quota settled.

        ``store_message=False``: the reply was never started; only the user message's status is
        written (``aborted`` or ``error``).
        """
        store = self.deps.store
        status = {"aborted": "aborted", "error": "error"}.get(stop_reason, "completed")
        writes: list[Write] = []
        message: Message | None = None
        if store_message:
            record = turn.end(stop_reason, status, error)
            message = turn.message
            if record is not None:
                writes.append(lambda: store.save_step(record))
        else:
            user_status: MessageStatus = "aborted" if stop_reason == "aborted" else "error"
            writes.append(
                lambda: store.set_message_status(msg.user_message_id, user_status, error=error)
            )
            if error is not None:
                # The start failed; if it was stored anyway (the connection died after the
                # commit), the reply must not stay running.
                reply = turn.message_id
                writes.append(lambda: store.set_message_status(reply, "error", error=error))
        if msg.reservation is not None:
            writes.append(self.deps.quota.settle(msg.reservation, turn.usage))
        try:
            # Stored before the client hears the end (a client that saw ``done`` lists the
            # reply); a store that refuses costs one attempt here, the rest is retried later.
            if writes:
                await self.deps.writes.run(f"turn {turn.message_id}", writes)
        finally:
            self._publish_end(turn, stop_reason, error)
            if message is not None:
                final = message
                self.publish_bus("message.updated", lambda: {"info": final.model_dump(mode="json")})
                self.publish_bus("session.status", {"status": "idle"})
                if self._history is not None:
                    self._history.append(
                        Message(
                            id=msg.user_message_id,
                            session_id=self.session.id,
                            role="user",
                            content=msg.content,
                        )
                    )
                    self._history.append(final)
            self._notify_listeners(turn, stop_reason, error, started)

    def _publish_end(self, turn: Turn, stop_reason: str, error: dict[str, Any] | None) -> None:
        if error is not None:
            self.publish(
                ErrorEvent(self.session.id, turn.message_id, turn.user_message_id, error=error)
            )
            self.publish_bus("session.error", {"error": error})
        else:
            self.publish(
                Done(
                    self.session.id,
                    turn.message_id,
                    turn.user_message_id,
                    usage=turn.usage_dict(),
                    cost=turn.cost,
                    stop_reason=stop_reason,
                    output=turn.output,
                )
            )

    def _notify_listeners(
        self, turn: Turn, stop_reason: str, error: dict[str, Any] | None, started: float
    ) -> None:
        asked, self._abort_requested_at = self._abort_requested_at, None
        now = time.monotonic()
        summary = TurnSummary(
            session_id=self.session.id,
            model=turn.options.model,
            stop_reason=stop_reason,
            usage=turn.usage,
            cost=turn.cost,
            error_type=(error or {}).get("type"),
            duration=now - started,
            abort_latency=None if stop_reason != "aborted" or asked is None else now - asked,
        )
        self.deps.turn_ended(summary)
