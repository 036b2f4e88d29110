"""The agent loop through the real LiteLLM path against the scripted provider over HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from opencode_api.actors import Runtime, TurnEvent
from opencode_api.store import Session
from opencode_api.testing import FakeLLMServer, Reply, ToolCall, Usage
from tests.actors.conftest import make_settings


async def collect(stream: Any) -> list[TurnEvent]:
    return [event async for event in stream]


def types(events: list[TurnEvent]) -> list[str]:
    return [e.type for e in events]


async def test_plain_turn_event_order_and_storage(runtime: Runtime, fake: FakeLLMServer) -> None:
    fake.enqueue(
        Reply(text="Hello there friend", usage=Usage(prompt_tokens=12, completion_tokens=3))
    )
    session = await runtime.create_session(title="t")
    events = await collect(runtime.send(session.id, "Hi"))

    assert types(events) == [
        "message_start",
        "step_start",
        "text",
        "text",
        "text",
        "step_finish",
        "done",
    ]
    assert "".join(e.text for e in events if e.type == "text") == "Hello there friend"  # type: ignore[attr-defined]
    done = events[-1].to_dict()
    assert done["stop_reason"] == "stop"
    assert done["usage"]["input_tokens"] == 12 and done["usage"]["output_tokens"] == 3
    start = events[0].to_dict()
    assert start["parent_id"] and start["message_id"] == done["message_id"]
    assert {e.to_dict()["session_id"] for e in events} == {session.id}

    page = await runtime.list_messages(session.id)
    assert page.total_count == 2
    user, assistant = page.messages
    assert (user.role, user.content, user.status) == ("user", "Hi", "completed")
    assert (assistant.role, assistant.content, assistant.status) == (
        "assistant",
        "Hello there friend",
        "completed",
    )
    assert assistant.finish == "stop" and assistant.parent_id == user.id
    assert [p.type for p in assistant.parts] == ["step_start", "text", "step_finish"]
    stored = await runtime.get_session(session.id)
    assert stored.total_input_tokens == 12 and stored.total_output_tokens == 3
    assert stored.message_count == 2 and stored.status == "idle"
    # The model got the system prompt and the user message.
    sent = fake.requests[-1]
    assert sent["stream"] is True
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][-1] == {"role": "user", "content": "Hi"}


async def test_reasoning_is_streamed_and_stored(runtime: Runtime, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(reasoning="think hard", text="answer"))
    session = await runtime.create_session()
    events = await collect(runtime.send(session.id, "Q"))
    assert types(events)[:4] == ["message_start", "step_start", "reasoning", "reasoning"]
    page = await runtime.list_messages(session.id)
    parts = page.messages[1].parts
    assert [p.content for p in parts if p.type == "reasoning"] == ["think hard"]


async def test_a_step_is_stored_in_the_order_it_streamed(
    runtime: Runtime, fake: FakeLLMServer
) -> None:
    fake.enqueue(
        Reply(reasoning="first think", text="then say", tool_calls=[ToolCall("todoread", {})]),
        Reply(text="Done."),
    )
    session = await runtime.create_session()
    events = await collect(runtime.send(session.id, "go"))
    streamed = [t for t in types(events) if t in ("reasoning", "text", "tool_call")]
    streamed = [t for i, t in enumerate(streamed) if i == 0 or streamed[i - 1] != t]
    page = await runtime.list_messages(session.id)
    stored = [p.type for p in page.messages[1].parts]
    first_step = stored[: stored.index("step_finish")]
    assert first_step == ["step_start", "reasoning", "text", "tool_call"]
    assert streamed[:3] == ["reasoning", "text", "tool_call"]


async def test_tool_call_then_answer(runtime: Runtime, fake: FakeLLMServer) -> None:
    todos = {
        "todos": [{"id": "1", "content": "write tests", "status": "pending", "priority": "high"}]
    }
    fake.enqueue(
        Reply(tool_calls=[ToolCall("todowrite", todos, id="call_a", fragments=4)]),
        Reply(text="Done."),
    )
    session = await runtime.create_session()
    events = await collect(runtime.send(session.id, "plan it"))
    assert types(events) == [
        "message_start",
        "step_start",
        "tool_call",
        "tool_result",
        "step_finish",
        "step_start",
        "text",
        "step_finish",
        "done",
    ]
    call = events[2].to_dict()["tool_call"]
    assert call == {"id": "call_a", "name": "todowrite", "arguments": todos}
    result = events[3].to_dict()
    assert result["tool_call_id"] == "call_a" and result["is_error"] is False
    assert [t.content for t in await runtime.todos(session.id)] == ["write tests"]
    # The second request carries the tool call and its output.
    second = fake.requests[1]["messages"]
    assert second[-2]["tool_calls"][0]["id"] == "call_a"
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == "call_a"
    stored = (await runtime.list_messages(session.id)).messages[1]
    tool_part = next(p for p in stored.parts if p.type == "tool_call")
    assert tool_part.tool_status == "completed" and tool_part.tool_args == todos


async def test_parallel_tool_calls(runtime: Runtime, fake: FakeLLMServer) -> None:
    fake.enqueue(
        Reply(tool_calls=[ToolCall("todoread", {}, id="c1"), ToolCall("todoread", {}, id="c2")]),
        Reply(text="ok"),
    )
    session = await runtime.create_session()
    events = await collect(runtime.send(session.id, "read twice"))
    results = [e.to_dict() for e in events if e.type == "tool_result"]
    assert sorted(r["tool_call_id"] for r in results) == ["c1", "c2"]
    assert types(events)[-1] == "done"
    tool_msgs = [m for m in fake.requests[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["c1", "c2"]


async def test_unknown_tool_is_an_error_result_not_a_crash(
    runtime: Runtime, fake: FakeLLMServer
) -> None:
    fake.enqueue(Reply(tool_calls=[ToolCall("nope", {}, id="x")]), Reply(text="sorry"))
    session = await runtime.create_session()
    events = await collect(runtime.send(session.id, "go"))
    result = next(e.to_dict() for e in events if e.type == "tool_result")
    assert result["is_error"] is True
    assert events[-1].to_dict()["stop_reason"] == "stop"


async def test_max_steps_stops_the_loop(runtime: Runtime, fake: FakeLLMServer) -> None:
    fake.enqueue(
        Reply(tool_calls=[ToolCall("todoread", {}, id="s1")]),
        Reply(text="final answer"),
    )
    session = await runtime.create_session()
    events = await collect(runtime.send(session.id, "loop", max_steps=2))
    # The cap ended the turn (its last step had to answer without tools): API.md's max_steps,
    # while the step itself finished as the model said.
    assert events[-1].to_dict()["stop_reason"] == "max_steps"
    assert [e.to_dict()["stop_reason"] for e in events if e.type == "step_finish"] == [
        "tool_calls",
        "stop",
    ]
    stored = (await runtime.list_messages(session.id)).messages[-1]
    assert stored.finish == "max_steps" and stored.status == "completed"
    last_request = fake.requests[-1]
    # On the last step the model is told to answer and gets no tools.
    assert "tools" not in last_request or not last_request["tools"]
    assert "maximum number of steps" in last_request["messages"][-1]["content"]

    fake.enqueue(Reply(tool_calls=[ToolCall("todoread", {}, id="s2")]))
    events = await collect(runtime.send(session.id, "loop again", max_steps=1))
    assert events[-1].to_dict()["stop_reason"] == "max_steps"


async def test_doom_loop_is_stopped(runtime: Runtime, fake: FakeLLMServer) -> None:
    same = ToolCall("todoread", {}, fragments=1)
    fake.enqueue(*(Reply(tool_calls=[same]) for _ in range(5)))
    session = await runtime.create_session()
    events = await collect(runtime.send(session.id, "loop"))
    assert events[-1].to_dict()["stop_reason"] == "doom_loop"
    assert len([e for e in events if e.type == "tool_call"]) == 3
    assert len(fake.requests) == 3


async def test_retry_then_success(runtime: Runtime, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply.error(429, "slow down", retry_after="0"), Reply.error(503), Reply(text="ok"))
    session = await runtime.create_session()
    events = await collect(runtime.send(session.id, "hi"))
    assert types(events)[-1] == "done"
    assert len(fake.requests) == 3


async def test_fatal_provider_error_ends_turn_and_session_stays_usable(
    runtime: Runtime, fake: FakeLLMServer
) -> None:
    fake.enqueue(Reply.error(400, "bad things in request"))
    session = await runtime.create_session()
    events = await collect(runtime.send(session.id, "hi"))
    assert types(events) == ["message_start", "step_start", "error"]
    error = events[-1].to_dict()["error"]
    # API.md: a provider's refusal is provider_error, with its status and message.
    assert error["type"] == "provider_error" and "bad things" in error["message"]
    assert error["status"] == 400 and error["provider"] == "openai"
    assistant = (await runtime.list_messages(session.id)).messages[1]
    assert assistant.status == "error" and assistant.error is not None

    fake.enqueue(Reply(text="fine now"))
    events = await collect(runtime.send(session.id, "again"))
    assert types(events)[-1] == "done"


async def test_mid_stream_disconnect_is_an_error(runtime: Runtime, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(text="one two three four five", drop_after=2))
    session = await runtime.create_session()
    events = await collect(runtime.send(session.id, "hi"))
    assert types(events)[-1] == "error"
    error = events[-1].to_dict()["error"]
    assert error["type"] == "unavailable" and error["code"] == "provider_unavailable"
    # The text that arrived is kept.
    assistant = (await runtime.list_messages(session.id)).messages[1]
    assert assistant.content.startswith("one")


async def test_abort_during_streaming_closes_upstream(
    runtime: Runtime, fake: FakeLLMServer
) -> None:
    fake.enqueue(Reply(text="a b c d e f", hang_after=3))
    session = await runtime.create_session()
    stream = runtime.send(session.id, "hi")
    events: list[TurnEvent] = []
    async for event in stream:
        events.append(event)
        if event.type == "text" and event.text == "b ":  # type: ignore[attr-defined]
            assert await runtime.abort(session.id) is True
    assert events[-1].to_dict()["stop_reason"] == "aborted"
    await asyncio.wait_for(fake.wait_for_disconnects(1), 10)
    assistant = (await runtime.list_messages(session.id)).messages[1]
    assert assistant.status == "aborted" and assistant.content == "a b "
    assert await runtime.abort(session.id) is False


async def test_abort_while_tool_runs_and_queued_turns(
    runtime: Runtime, fake: FakeLLMServer
) -> None:
    question = {"questions": [{"question": "Which?", "header": "Pick", "options": []}]}
    fake.enqueue(Reply(tool_calls=[ToolCall("question", question, id="q1")]))
    session = await runtime.create_session()
    first = runtime.send(session.id, "ask me")
    second = runtime.send(session.id, "queued one")
    await first.start()
    await second.start()
    first_events: list[TurnEvent] = []
    async for event in first:
        first_events.append(event)
        if event.type == "question":
            assert await runtime.abort(session.id) is True
    second_events = await collect(second)
    assert first_events[-1].to_dict()["stop_reason"] == "aborted"
    assert types(second_events) == ["message_start", "done"]
    assert second_events[-1].to_dict()["stop_reason"] == "aborted"
    assert len(fake.requests) == 1  # the queued turn never called the model
    assert await runtime.list_questions(session_id=session.id) == []


async def test_two_turns_run_in_order_and_second_sees_first(
    runtime: Runtime, fake: FakeLLMServer
) -> None:
    fake.enqueue(Reply(text="first reply"), Reply(text="second reply"))
    session = await runtime.create_session()
    a = runtime.send(session.id, "one")
    b = runtime.send(session.id, "two")
    await a.start()
    await b.start()
    ev_a, ev_b = await asyncio.gather(collect(a), collect(b))
    assert types(ev_a)[-1] == types(ev_b)[-1] == "done"
    second = fake.requests[1]["messages"]
    assert [m["content"] for m in second[1:]] == ["one", "first reply", "two"]
    page = await runtime.list_messages(session.id)
    assert [m.content for m in page.messages] == ["one", "first reply", "two", "second reply"]


async def test_busy_reject(runtime: Runtime, fake: FakeLLMServer) -> None:
    from opencode_api.actors import SessionBusyError

    fake.enqueue(Reply(text="x y z", hang_after=3))
    session = await runtime.create_session()
    first = runtime.send(session.id, "one")
    async for event in first:
        if event.type == "text" and event.text == "y ":  # type: ignore[attr-defined]
            with pytest.raises(SessionBusyError):
                await runtime.send(session.id, "two", busy="reject").start()
            await runtime.abort(session.id)


async def test_cost_matches_litellm(runtime: Runtime, fake: FakeLLMServer) -> None:
    import litellm

    fake.enqueue(Reply(text="priced", usage=Usage(prompt_tokens=1000, completion_tokens=500)))
    session = await runtime.create_session()
    events = await collect(runtime.send(session.id, "hi"))
    prompt_cost, completion_cost = litellm.cost_per_token(
        model="openai/gpt-4o-mini", prompt_tokens=1000, completion_tokens=500
    )
    expected = prompt_cost + completion_cost
    assert expected > 0
    assert events[-1].to_dict()["cost"] == pytest.approx(expected)
    cost = await runtime.session_cost(session.id)
    assert cost.total_cost == pytest.approx(expected)
    assert cost.by_model[0].model_id == "gpt-4o-mini"


async def test_unpriced_model_counts_tokens(runtime: Runtime, fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(text="x", usage=Usage(prompt_tokens=10, completion_tokens=2)))
    session = await runtime.create_session()
    await collect(runtime.send(session.id, "hi", model="openai/not-a-real-model-xyz"))
    assistant = (await runtime.list_messages(session.id)).messages[1]
    assert assistant.priced is False and assistant.cost == 0.0
    assert assistant.usage is not None and assistant.usage.input_tokens == 10


async def test_crash_inside_loop_ends_turn_with_error(settings: Any, fake: FakeLLMServer) -> None:
    from opencode_api.llm._router import RoutingLLMClient

    class Exploding(RoutingLLMClient):
        calls = 0

        def stream(self, request: Any) -> Any:
            Exploding.calls += 1
            if Exploding.calls == 1:
                raise RuntimeError("boom")
            return super().stream(request)

    async with Runtime.open(settings, llm=Exploding(settings)) as runtime:
        session = await runtime.create_session()
        events = await collect(runtime.send(session.id, "hi"))
        error = events[-1].to_dict()["error"]
        assert error["type"] == "internal_error"
        assert "boom" not in error["message"]  # the log has it; the client gets no exception text
        fake.enqueue(Reply(text="recovered"))
        events = await collect(runtime.send(session.id, "again"))
        assert types(events)[-1] == "done"


async def test_interrupted_turns_are_marked_at_startup(tmp_path: Path, fake: FakeLLMServer) -> None:
    from opencode_api.store import Message

    settings = make_settings(tmp_path, fake)
    async with Runtime.open(settings) as runtime:
        session = await runtime.create_session()
        # What a process killed mid-turn leaves: a running turn, a queued one, a busy session.
        for status in ("running", "queued"):
            await runtime.store.append_message(
                Message(
                    id=f"msg_{status}",
                    session_id=session.id,
                    role="user",
                    content=status,
                    status=status,
                )
            )
        await runtime.store.update_session(session.id, status="busy")
    async with Runtime.open(settings) as runtime:
        page = await runtime.list_messages(session.id)
        assert [m.status for m in page.messages] == ["interrupted", "interrupted"]
        assert (await runtime.get_session(session.id)).status == "idle"


async def test_compaction_manual_and_automatic(tmp_path: Path, fake: FakeLLMServer) -> None:
    settings = make_settings(tmp_path, fake, compaction_threshold=6, compaction_keep_messages=2)
    async with Runtime.open(settings) as runtime:
        session = await runtime.create_session()
        for i in range(3):
            fake.enqueue(Reply(text=f"reply {i} " + "long text " * 50))
            await collect(runtime.send(session.id, f"question {i}"))
        full = len(json.dumps(fake.requests[-1]["messages"]))
        fake.enqueue(Reply(text="SUMMARY OF EVERYTHING"))
        status = await runtime.compact(session.id)
        assert status.compaction_count == 1 and status.status == "idle"
        assert status.last_compacted_at is not None
        page = await runtime.list_messages(session.id)
        assert sum(m.compacted for m in page.messages) == 4
        assert any(m.summary for m in page.messages)
        fake.enqueue(Reply(text="after"))
        await collect(runtime.send(session.id, "next"))
        request = fake.requests[-1]["messages"]
        assert "SUMMARY OF EVERYTHING" in json.dumps(request)
        assert len(json.dumps(request)) < full

        # Automatic: past the threshold (5 live messages now, 7 after the next turn) a
        # compaction is queued behind the turn; the turn after it sees the new summary.
        assert (await runtime.compaction_status(session.id)).message_count == 5
        fake.enqueue(Reply(text="more"), Reply(text="SECOND SUMMARY"), Reply(text="y"))
        await collect(runtime.send(session.id, "trigger"))
        await collect(runtime.send(session.id, "after auto"))
        status = await runtime.compaction_status(session.id)
        assert status.compaction_count == 2
        assert "SECOND SUMMARY" in json.dumps(fake.requests[-1]["messages"])


async def test_failed_compaction_is_recorded(runtime: Runtime, fake: FakeLLMServer) -> None:
    session = await runtime.create_session()
    for i in range(5):
        fake.enqueue(Reply(text=f"r{i}"))
        await collect(runtime.send(session.id, f"q{i}"))
    fake.enqueue(Reply.error(400, "cannot summarize"))
    with pytest.raises(Exception, match="cannot summarize"):
        await runtime.compact(session.id)
    status = await runtime.compaction_status(session.id)
    assert status.status == "failed" and "cannot summarize" in (status.last_error or "")


async def test_generate_title(runtime: Runtime, fake: FakeLLMServer) -> None:
    session = await runtime.create_session()
    fake.enqueue(Reply(text='"Planning a trip to Rome."'))
    title = await runtime.generate_title(session.id, message="I want to visit Rome")
    assert title == "Planning a trip to Rome"
    assert (await runtime.get_session(session.id)).title == title


async def test_embedded_example_from_architecture(
    tmp_path: Path, fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_BASE", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("AUTO_TITLE", "false")
    monkeypatch.chdir(tmp_path)
    printed: list[str] = []
    # --- as written in ARCHITECTURE.md ("print" collected) ---
    from opencode_api import Runtime as PublicRuntime

    async with PublicRuntime.open(database_url="sqlite:///x.db") as rt:
        session = await rt.create_session(title="demo")
        async for event in rt.send(session.id, "Hello", model="openai/gpt-4o-mini"):
            printed.append(event.type)
    assert printed[0] == "message_start" and printed[-1] == "done"
    assert (tmp_path / "x.db").exists()


async def test_a_session_created_or_read_here_is_not_read_back_when_its_actor_starts(
    runtime: Runtime, fake: FakeLLMServer
) -> None:
    """Its actor starts from the session ``create_session`` (or a read while no actor of it
    ran) returned, with later updates; after an actor held it, the next one reads it."""
    fresh = await runtime.create_session()
    before = runtime.store_statements()
    assert before is not None
    events = [e async for e in runtime.send(fresh.id, "hi")]
    assert events[-1].to_dict()["stop_reason"] == "stop"
    first_turn = runtime.store_statements() - before  # type: ignore[operator]

    async def statements_of_a_turn(session_id: str) -> int:
        before = runtime.store_statements()
        events = [e async for e in runtime.send(session_id, "hi")]
        assert events[-1].to_dict()["stop_reason"] == "stop"
        return runtime.store_statements() - before  # type: ignore[operator]

    # A session this process did not create, read while no actor of it ran (as a client would
    # before its turn): the actor starts from that read.
    created = await runtime.store.create_session(Session(id="ses_made_elsewhere"))
    await runtime.get_session(created.id)
    assert await statements_of_a_turn(created.id) == first_turn

    # Never read here (a Ray shard admitting a turn a front end's session): admission reads it
    # once, and the actor starts from that read.
    unseen = await runtime.store.create_session(Session(id="ses_never_read_here"))
    assert await statements_of_a_turn(unseen.id) == first_turn + 1

    # Both actors stopped after writing a turn. Read again while no actor ran, a session's
    # next actor starts from that read; not read again, it reads the row once more itself.
    await runtime.placement.stop(unseen.id, 1.0)
    await runtime.placement.stop(fresh.id, 1.0)
    await runtime.get_session(fresh.id)
    second_turn = await statements_of_a_turn(fresh.id)
    assert await statements_of_a_turn(unseen.id) == second_turn + 1

    # Read while its actor ran (the actor may write after the read): not reused.
    assert runtime.placement.live(created.id) is not None
    await runtime.get_session(created.id)
    await runtime.placement.stop(created.id, 1.0)
    assert await statements_of_a_turn(created.id) == second_turn + 1

    # An update before the first turn is what the actor starts from.
    renamed = await runtime.create_session()
    await runtime.update_session(renamed.id, title="named before its first turn")
    events = [e async for e in runtime.send(renamed.id, "hi")]
    assert events[-1].to_dict()["stop_reason"] == "stop"
    assert (await runtime.get_session(renamed.id)).title == "named before its first turn"
    assert runtime.placement.live(renamed.id) is not None
