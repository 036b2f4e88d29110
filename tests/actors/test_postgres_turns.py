"""The whole turn path on a real PostgreSQL server: turns, tools, abort, compaction, restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from opencode_api.actors import Runtime, TurnEvent
from opencode_api.testing import FakeLLMServer, Reply, ToolCall, Usage
from tests.actors.conftest import make_settings

pytestmark = pytest.mark.postgres


async def test_turns_on_postgres(
    tmp_path: Path, fake: FakeLLMServer, postgres_database_url: str
) -> None:
    settings = make_settings(
        tmp_path, fake, database_url=postgres_database_url, compaction_keep_messages=2
    )
    todos = {"todos": [{"id": "1", "content": "check", "status": "pending", "priority": "low"}]}
    fake.enqueue(
        Reply(tool_calls=[ToolCall("todowrite", todos, id="t1")]),
        Reply(text="all set", usage=Usage(prompt_tokens=100, completion_tokens=20)),
    )
    async with Runtime.open(settings) as runtime:
        session = await runtime.create_session(title="pg")
        events = [e async for e in runtime.send(session.id, "plan")]
        assert events[-1].to_dict()["stop_reason"] == "stop"
        assert [t.content for t in await runtime.todos(session.id)] == ["check"]
        cost = await runtime.session_cost(session.id)
        assert cost.output_tokens >= 20 and cost.total_cost > 0

        # Abort mid-stream; the partial reply is stored.
        fake.enqueue(Reply(text="a b c d", hang_after=3))
        seen: list[TurnEvent] = []
        async for event in runtime.send(session.id, "again"):
            seen.append(event)
            if event.type == "text" and event.text == "b ":  # type: ignore[attr-defined]
                assert await runtime.abort(session.id)
        assert seen[-1].to_dict()["stop_reason"] == "aborted"
        await asyncio.wait_for(fake.wait_for_disconnects(1), 10)

        fake.enqueue(Reply(text="SUMMARY"))
        status = await runtime.compact(session.id)
        assert status.compaction_count == 1

    # A new process (runtime) on the same database sees everything.
    async with Runtime.open(settings) as runtime:
        page = await runtime.list_messages(session.id)
        assert page.total_count == 5  # 2 turns x 2 messages + the summary
        assert [m.status for m in page.messages if m.role == "assistant" and not m.summary] == [
            "completed",
            "aborted",
        ]
        assert page.messages[3].content == "a b "
        assert (await runtime.get_session(session.id)).title == "pg"
