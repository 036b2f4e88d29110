"""``TaskHost``: one ``asyncio.TaskGroup`` that owns every task of a supervisor."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from opencode_api.runtime._errors import SupervisorClosed

Background = Callable[[], Coroutine[Any, Any, None]]


class TaskHost:
    """Holds a task group open from ``start()`` to ``close()`` in a task of its own, so tasks
    spawned by any caller are its children and none outlives ``close()``."""

    __slots__ = ("_close_requested", "_group", "_host", "_ready")

    def __init__(self) -> None:
        self._host: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None
        self._ready = asyncio.Event()
        self._close_requested = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._group is not None

    async def start(self, background: Background | None = None, name: str = "") -> None:
        """Open the group (once) with ``background`` running in it until ``close()``."""
        if self._host is None:
            self._host = asyncio.create_task(self._hold(background, name), name=name)
        await self._ready.wait()

    async def close(self) -> None:
        """Cancel the background task and wait for every task of the group to end."""
        self._close_requested.set()
        if self._host is not None:
            await self._host

    def spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        group = self._group
        if group is None:
            coroutine.close()
            raise SupervisorClosed("the supervisor is not running (call start() first)")
        return group.create_task(coroutine, name=name)

    async def _hold(self, background: Background | None, name: str) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                task = None
                if background is not None:
                    task = group.create_task(background(), name=f"{name}.background")
                self._ready.set()
                await self._close_requested.wait()
                if task is not None:
                    task.cancel()
        finally:
            self._group = None
