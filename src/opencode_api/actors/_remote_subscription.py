"""``RemoteSubscription``: a shard's event batches (a Ray streaming generator) read like a local
outbox subscription, so ``TurnStream`` and the SSE routes need not know where a session lives."""

from __future__ import annotations

import contextlib
from collections import deque
from types import TracebackType
from typing import Any

from opencode_api.actors._events import ErrorEvent, MessageStart
from opencode_api.runtime import OutboxItem

INTERRUPTED = {
    "type": "interrupted",
    "message": "the process hosting this session stopped; the turn was interrupted",
}


def unwrap(exc: BaseException) -> BaseException:
    """The exception a shard raised, out of Ray's ``RayTaskError`` wrapper."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def shard_lost(exc: BaseException) -> bool:
    """The shard's process (or node) went away, as opposed to the shard raising an error."""
    import ray.exceptions

    return isinstance(exc, ray.exceptions.RayError) and not isinstance(
        exc, ray.exceptions.RayTaskError
    )


class RemoteSubscription:
    """Reads ``[(seq, event), ...]`` batches from ``generator``. With ``turn`` (session id and
    turn id) a lost shard ends the stream with that turn's ``error`` event (``interrupted``)."""

    def __init__(self, generator: Any, *, turn: tuple[str, str] | None = None) -> None:
        self._generator = generator
        self._turn = turn
        self._message_id: str | None = None
        self._pending: deque[OutboxItem[Any]] = deque()
        self._last_seq = 0
        self._closed = False

    async def next_batch(self) -> Any:
        """The next raw item of the generator; shard errors unwrapped."""
        try:
            ref = await self._generator.__anext__()
            return await ref
        except StopAsyncIteration:
            raise
        except Exception as exc:
            raise unwrap(exc) from None

    def __aiter__(self) -> RemoteSubscription:
        return self

    async def __anext__(self) -> OutboxItem[Any]:
        if self._pending:
            return self._pending.popleft()
        while not self._closed:
            try:
                batch = await self.next_batch()
            except StopAsyncIteration:
                self._closed = True
                break
            except Exception as exc:
                if not shard_lost(exc):
                    raise
                self._closed = True
                if self._turn is None:
                    break
                session_id, turn_id = self._turn
                message_id = self._message_id or turn_id
                error = ErrorEvent(session_id, message_id, turn_id, error=dict(INTERRUPTED))
                return OutboxItem(self._last_seq + 1, error)
            for seq, event in batch:
                if isinstance(event, MessageStart):
                    self._message_id = event.message_id
                self._last_seq = seq
                self._pending.append(OutboxItem(seq, event))
            if self._pending:
                return self._pending.popleft()
        raise StopAsyncIteration

    def take_pending(self) -> list[OutboxItem[Any]]:
        items = list(self._pending)
        self._pending.clear()
        return items

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            import ray

            with contextlib.suppress(Exception):
                ray.cancel(self._generator)

    async def __aenter__(self) -> RemoteSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
