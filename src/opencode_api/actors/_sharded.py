"""``ShardedRuntime``: the ``Runtime`` of a front end whose sessions live in Ray shards.

``serve --ray``: sessions hash (crc32 of the id) to a fixed set of named, detached Ray actors
(``ShardHost``, restarted by Ray without limit), so one activation per session holds cluster-wide.
A front end keeps no session state: what a session's actor must do (turns, aborts, answers,
compaction, titles, deletion, re-attaching) goes to its shard, and events come back in batches;
what only reads or writes records (create, list, history, cost) is served from the shared
PostgreSQL store here. Every shard's bus is pumped into this front end's bus (``GET /event``),
which also tells it which sessions are busy. Ray is imported only here and only under ``--ray``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar, Unpack

import structlog

from opencode_api.actors._compaction import CompactionStatus
from opencode_api.actors._errors import NotFoundError
from opencode_api.actors._events import BusEvent
from opencode_api.actors._feed import FeedSubscription, FrontFeed, open_stream
from opencode_api.actors._runtime import Runtime
from opencode_api.actors._sessions import SessionChanges
from opencode_api.actors._shard import ShardHost
from opencode_api.actors._shard_errors import shard_lost, unwrap
from opencode_api.actors._turn_request import SendOptions, TurnRequest
from opencode_api.actors._turn_stream import TurnStream
from opencode_api.errors import OpenCodeError
from opencode_api.runtime import Subscription, SupervisorStats
from opencode_api.settings import Settings
from opencode_api.store import Session

log = structlog.get_logger("opencode_api.shards")

T = TypeVar("T")


class ShardsUnavailable(OpenCodeError):
    """The Ray cluster could not be reached or a shard could not be created."""


def connect_shards(settings: Settings) -> list[Any]:
    """Join the Ray cluster (unless this process already did) and get or create the shards."""
    import ray

    if not ray.is_initialized():
        address = settings.ray_cluster or None  # "": Ray's own RAY_ADDRESS, or a local cluster
        ray.init(
            address=address,
            namespace=settings.shard_namespace,
            log_to_driver=False,
            configure_logging=False,
        )
    # A shard's settings are the front end's (nodes need no configuration of their own); it
    # hosts its sessions itself.
    shard_settings = settings.model_copy(update={"ray_cluster": None, "workers": 1})
    shard_class = ray.remote(ShardHost)
    return [
        shard_class.options(  # type: ignore[attr-defined]
            name=f"shard-{index}",
            namespace=settings.shard_namespace,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=100_000,
            num_cpus=0,
        ).remote(shard_settings)
        for index in range(settings.shards)
    ]


class ShardedRuntime(Runtime):
    """See the module docstring. ``open_runtime`` builds one under ``--ray`` (``ray_cluster``)."""

    _shards: list[Any]

    async def start(self) -> None:
        if self.settings.resolved_database_url().startswith("sqlite"):
            raise ShardsUnavailable(
                "--ray needs PostgreSQL (DATABASE_URL=postgresql://...): shards on other nodes "
                "cannot share a SQLite file"
            )
        await super().start()
        # Joining Ray installs its own handlers for SIGTERM/SIGINT (they abort the process):
        # ours (a graceful drain) are put back afterwards.
        handlers = _signal_handlers()
        try:
            self._shards = await asyncio.to_thread(connect_shards, self.settings)
            _restore(handlers)
            await asyncio.gather(*(shard.ready.remote() for shard in self._shards))
        except Exception as exc:
            await super().close(0.0)
            raise ShardsUnavailable(f"the Ray shards are not reachable: {exc}") from exc
        self._feeds = [FrontFeed(shard) for shard in self._shards]
        await asyncio.gather(*(feed.start() for feed in self._feeds))
        self._remote_status: dict[str, Literal["idle", "busy"]] = {}
        self._shard_stats: SupervisorStats | None = None
        self._pumps = [
            asyncio.create_task(self._pump_bus(shard), name=f"shard-bus-{index}")
            for index, shard in enumerate(self._shards)
        ]
        self._pumps.append(asyncio.create_task(self._poll_stats(), name="shard-stats"))

    async def close(self, grace: float | None = None) -> None:
        for feed in getattr(self, "_feeds", []):
            await feed.close()
        for task in getattr(self, "_pumps", []):
            task.cancel()
        for task in getattr(self, "_pumps", []):
            with contextlib.suppress(BaseException):
                await task
        await super().close(grace)

    def _index(self, session_id: str) -> int:
        return zlib.crc32(session_id.encode()) % len(self._shards)

    def _shard(self, session_id: str) -> Any:
        return self._shards[self._index(session_id)]

    def _feed(self, session_id: str) -> FrontFeed:
        return self._feeds[self._index(session_id)]

    async def _command(self, session_id: str, name: str, *args: Any, **kwargs: Any) -> Any:
        shard = self._shard(session_id)
        return await self._while_restarting(lambda: _call(shard, name, args, kwargs))

    async def _while_restarting(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, again while the shard is being restarted by Ray (after its process or
        node died), for up to ``CONTROL_TIMEOUT`` seconds."""
        import ray.exceptions

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.control_timeout
        delay = 0.05
        while True:
            try:
                return await attempt()
            except ray.exceptions.ActorUnavailableError as exc:
                if loop.time() + delay > deadline:
                    raise ShardsUnavailable(f"the session's shard is not back: {exc}") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    # -- the bus of every shard, and the busy state it tells ---------------------------------

    async def _pump_bus(self, shard: Any) -> None:
        delay = 0.1
        import ray

        while True:
            generator = shard.bus.remote()
            try:
                async for ref in generator:
                    delay = 0.1
                    for event in await ref:
                        self._note_status(event)
                        self.bus.publish(event)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    ray.cancel(generator)
                raise
            except Exception as exc:
                if not shard_lost(exc):
                    log.warning("shard bus failed, resubscribing", error=str(unwrap(exc)))
            await asyncio.sleep(delay)  # the shard restarts (or its bus closed): ask again
            delay = min(delay * 2, 2.0)

    def _note_status(self, event: BusEvent) -> None:
        if event.type == "session.status" and event.session_id is not None:
            status = event.properties.get("status")
            if status == "busy":
                self._remote_status[event.session_id] = "busy"
            else:
                self._remote_status.pop(event.session_id, None)

    def status(self, session_id: str) -> Literal["idle", "busy"]:
        return self._remote_status.get(session_id, "idle")

    # -- the shards' supervisors, summed (the live and busy gauges of /metrics) --------------

    def stats(self) -> SupervisorStats:
        """Every shard's supervisor summed, as of the last poll (every 5 s)."""
        return self._shard_stats if self._shard_stats is not None else super().stats()

    async def refresh_stats(self) -> SupervisorStats:
        results = await asyncio.gather(
            *(_call(shard, "stats", (), {}) for shard in self._shards), return_exceptions=True
        )
        stats = [r for r in results if isinstance(r, SupervisorStats)]
        depths = sorted(
            ((depth, actor) for s in stats for actor, depth in s.mailbox_depths.items()),
            reverse=True,
        )[:20]
        self._shard_stats = SupervisorStats(
            live=sum(s.live for s in stats),
            busy=sum(s.busy for s in stats),
            activations=sum(s.activations for s in stats),
            restarts=sum(s.restarts for s in stats),
            passivations=sum(s.passivations for s in stats),
            stopped=sum(s.stopped for s in stats),
            mailbox_depth_total=sum(s.mailbox_depth_total for s in stats),
            mailbox_depths={actor: depth for depth, actor in depths},
        )
        return self._shard_stats

    async def _poll_stats(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.refresh_stats()
            await asyncio.sleep(5.0)

    # -- what a session's actor does: in its shard ------------------------------------------

    async def regenerate(
        self,
        session_id: str,
        message_id: str,
        content: str | None = None,
        **options: Unpack[SendOptions],
    ) -> TurnStream:
        # The bus tells this front end that a session went idle up to a window late: a client
        # that has just read its turn's `done` must not get 409, so the shard has the last word.
        if (
            self.status(session_id) == "busy"
            and await self._command(session_id, "status", session_id) == "idle"
        ):
            self._remote_status.pop(session_id, None)
        return await super().regenerate(session_id, message_id, content, **options)

    def send_request(self, request: TurnRequest) -> TurnStream:
        session_id = request.session_id
        feed = self._feed(session_id)
        turn: dict[str, str] = {}

        async def enqueue() -> tuple[str, Subscription[Any]]:
            async def start(front: str, key: str) -> str:
                return str(await _call_method(feed.shard.start_turn, front, key, request))

            turn_id, stream = await self._while_restarting(
                lambda: open_stream(feed, start, lambda turn_id: (session_id, turn_id))
            )
            turn["id"] = turn_id
            return turn_id, stream  # type: ignore[return-value]

        async def resubscribe(after: int | None) -> Subscription[Any]:
            _, stream = await self._attach(session_id, request.user_id, after, turn.get("id"))
            return stream  # type: ignore[return-value]

        return TurnStream(enqueue, resubscribe)

    async def _attach(
        self, session_id: str, user_id: str | None, after: int | None, turn_id: str | None
    ) -> tuple[Any, FeedSubscription]:
        feed = self._feed(session_id)

        async def start(front: str, key: str) -> None:
            await _call_method(feed.shard.start_events, front, key, session_id, user_id, after)

        return await self._while_restarting(
            lambda: open_stream(
                feed, start, lambda _: (session_id, turn_id) if turn_id is not None else None
            )
        )

    @asynccontextmanager
    async def subscribe(
        self, session_id: str, *, user_id: str | None = None, after: int | None = None
    ) -> AsyncIterator[Subscription[Any]]:
        _, stream = await self._attach(session_id, user_id, after, None)
        try:
            yield stream  # type: ignore[misc]
        finally:
            stream.close()

    async def abort(self, session_id: str, *, user_id: str | None = None) -> bool:
        return bool(await self._command(session_id, "abort", session_id, user_id=user_id))

    async def delete_session(self, session_id: str, *, user_id: str | None = None) -> None:
        await self._command(session_id, "delete_session", session_id, user_id=user_id)

    async def delete_message(
        self, session_id: str, message_id: str, *, user_id: str | None = None
    ) -> None:
        await self._command(session_id, "delete_message", session_id, message_id, user_id=user_id)

    async def revert(
        self, session_id: str, message_id: str, *, user_id: str | None = None
    ) -> Session:
        session: Session = await self._command(
            session_id, "revert", session_id, message_id, user_id=user_id
        )
        return session

    async def unrevert(self, session_id: str, *, user_id: str | None = None) -> Session:
        session: Session = await self._command(session_id, "unrevert", session_id, user_id=user_id)
        return session

    async def update_session(
        self, session_id: str, *, user_id: str | None = None, **changes: Unpack[SessionChanges]
    ) -> Session:
        # In the shard: what its turns read of the session (the budget) is kept there.
        session: Session = await self._command(
            session_id, "update_session", session_id, user_id=user_id, **changes
        )
        return session

    async def compact(
        self, session_id: str, *, user_id: str | None = None, model_id: str | None = None
    ) -> CompactionStatus:
        status: CompactionStatus = await self._command(
            session_id, "compact", session_id, user_id=user_id, model_id=model_id
        )
        return status

    async def generate_title(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        message: str | None = None,
        model_id: str | None = None,
    ) -> str:
        return str(
            await self._command(
                session_id,
                "generate_title",
                session_id,
                user_id=user_id,
                message=message,
                model_id=model_id,
            )
        )

    async def reply_question(
        self, question_id: str, answers: Sequence[Sequence[str]], *, user_id: str | None = None
    ) -> None:
        session_id = await self._question_session(question_id, user_id)
        answer = [list(a) for a in answers]
        await self._command(session_id, "reply_question", question_id, answer, user_id=user_id)

    async def reject_question(self, question_id: str, *, user_id: str | None = None) -> None:
        session_id = await self._question_session(question_id, user_id)
        await self._command(session_id, "reject_question", question_id, user_id=user_id)

    async def _question_session(self, question_id: str, user_id: str | None) -> str:
        question = await self.store.get_question(question_id, user_id=user_id)
        if question is None or question.status != "pending":
            raise NotFoundError("question", question_id)
        return question.session_id


def _signal_handlers() -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore(handlers: dict[int, Any]) -> None:
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)


async def _call(shard: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return await _call_method(shard.command, name, args, kwargs)


async def _call_method(method: Any, *args: Any) -> Any:
    """A shard's method called remotely; the shard's own exception re-raised as itself."""
    try:
        return await method.remote(*args)
    except Exception as exc:
        raise unwrap(exc) from None


def runtime_class(settings: Settings) -> type[Runtime]:
    """``ShardedRuntime`` under ``--ray``, else ``Runtime``."""
    return ShardedRuntime if settings.ray_cluster is not None else Runtime


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """``Runtime.open`` for the runtime ``settings`` ask for (sharded over Ray, or local)."""
    async with runtime_class(settings).open(settings) as runtime:
        yield runtime
