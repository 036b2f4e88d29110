"""Automatic titles run off the turn path: a slow title never holds the session's next turn."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

from opencode_api.actors import BusEvent, Done, MessageStart, Runtime, TurnRequest
from opencode_api.inputs import FileInput
from opencode_api.runtime import Subscription
from opencode_api.testing import FakeLLMServer, Reply
from tests.actors.conftest import make_settings


async def _next_bus(bus: Subscription[Any], event_type: str) -> BusEvent:
    async for item in bus:
        event = item.event
        if isinstance(event, BusEvent) and event.type == event_type:
            return event
    raise AssertionError(f"the bus closed before {event_type}")


async def test_a_title_that_does_not_answer_never_holds_the_next_turn(
    tmp_path: Path, fake: FakeLLMServer
) -> None:
    asked, release = asyncio.Event(), asyncio.Event()
    fake.enqueue(
        Reply(text="Paris is sunny today"),
        Reply(text="Weather in Paris", received=asked, hold=release),  # the title call
    )
    async with Runtime.open(make_settings(tmp_path, fake, auto_title=True)) as runtime:
        bus = runtime.subscribe_bus()
        session = await runtime.create_session()
        events = [event async for event in runtime.send(session.id, "Weather in Paris?")]
        assert isinstance(events[-1], Done)
        await asyncio.wait_for(asked.wait(), 10)  # the title call is out, and held

        # The second message starts at once (and finishes) while the title call hangs.
        second = aiter(runtime.send(session.id, "And tomorrow?"))
        first_event = await asyncio.wait_for(anext(second), 10)
        assert isinstance(first_event, MessageStart)
        rest = [event async for event in second]
        assert isinstance(rest[-1], Done), rest
        assert (await runtime.get_session(session.id)).title is None

        release.set()  # the provider answers: the title is stored and published
        updated = await asyncio.wait_for(_next_bus(bus, "session.updated"), 10)
        assert updated.properties["info"]["title"] == "Weather in Paris"
        assert (await runtime.get_session(session.id)).title == "Weather in Paris"
        bus.close()


async def test_a_title_under_way_is_cancelled_by_deletion_and_shutdown(
    tmp_path: Path, fake: FakeLLMServer
) -> None:
    asked, asked2 = asyncio.Event(), asyncio.Event()
    fake.enqueue(Reply(text="hello"), Reply(text="never", received=asked, hold=asyncio.Event()))
    async with Runtime.open(make_settings(tmp_path, fake, auto_title=True)) as runtime:
        session = await runtime.create_session()
        events = [event async for event in runtime.send(session.id, "hi")]
        assert isinstance(events[-1], Done)
        await asyncio.wait_for(asked.wait(), 10)
        # Deleting stops the actor, which cancels the held title call: nothing waits for it.
        await asyncio.wait_for(runtime.delete_session(session.id), 10)
        other = await runtime.create_session()
        held = Reply(text="never either", received=asked2, hold=asyncio.Event())
        fake.enqueue(Reply(text="hello"), held)
        events = [event async for event in runtime.send(other.id, "hi")]
        assert isinstance(events[-1], Done)
        await asyncio.wait_for(asked2.wait(), 10)
        # ... and shutting down (leaving the block) does not wait for a held title either.


async def test_a_message_of_files_alone_waits_for_text_to_be_titled(
    tmp_path: Path, fake: FakeLLMServer
) -> None:
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
    fake.enqueue(Reply(text="A picture"), Reply(text="About the picture"), Reply(text="Pictures"))
    async with Runtime.open(make_settings(tmp_path, fake, auto_title=True)) as runtime:
        bus = runtime.subscribe_bus()
        session = await runtime.create_session()
        image = FileInput(type="file", mime="image/png", data=png)
        request = TurnRequest(session.id, "", parts=(image,))
        events = [event async for event in runtime.send_request(request)]
        assert isinstance(events[-1], Done)
        # No title call for a turn without text: the next request is the second turn's.
        events = [event async for event in runtime.send(session.id, "What is in it?")]
        assert isinstance(events[-1], Done)
        updated = await asyncio.wait_for(_next_bus(bus, "session.updated"), 10)
        assert updated.properties["info"]["title"] == "Pictures"
        assert len(fake.requests) == 3
        bus.close()
