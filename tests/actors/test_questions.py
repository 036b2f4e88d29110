"""The question tool through the session actor: reply, reject, abort while waiting, timeout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opencode_api.actors import NotFoundError, Runtime, TurnEvent
from opencode_api.testing import FakeLLMServer, Reply, ToolCall
from tests.actors.conftest import make_settings

QUESTIONS = {
    "questions": [
        {
            "question": "Which color?",
            "header": "Color",
            "options": [
                {"label": "Red", "description": "warm"},
                {"label": "Blue", "description": "cold"},
            ],
        }
    ]
}


def ask_then_answer(fake: FakeLLMServer) -> None:
    fake.enqueue(Reply(tool_calls=[ToolCall("question", QUESTIONS, id="q1")]), Reply(text="ok"))


async def run_until_question(runtime: Runtime, session_id: str) -> tuple[Any, list[TurnEvent]]:
    stream = runtime.send(session_id, "pick a color")
    events: list[TurnEvent] = []
    iterator = stream.__aiter__()
    async for event in iterator:
        events.append(event)
        if event.type == "question":
            break
    return iterator, events


async def test_reply_resumes_the_turn(runtime: Runtime, fake: FakeLLMServer) -> None:
    ask_then_answer(fake)
    session = await runtime.create_session()
    rest, events = await run_until_question(runtime, session.id)
    question_event = events[-1].to_dict()
    assert question_event["questions"][0]["question"] == "Which color?"
    pending = await runtime.list_questions(session_id=session.id)
    assert [q.id for q in pending] == [question_event["question_id"]]
    assert pending[0].tool_call_id == "q1"

    await runtime.reply_question(question_event["question_id"], [["Blue"]])
    events += [event async for event in rest]
    result = next(e.to_dict() for e in events if e.type == "tool_result")
    assert result["is_error"] is False
    assert 'User has answered your questions: "Which color?"="Blue"' in result["text"]
    assert events[-1].to_dict()["stop_reason"] == "stop"
    assert await runtime.list_questions(session_id=session.id) == []
    # The model saw the answer.
    assert "Blue" in fake.requests[-1]["messages"][-1]["content"]
    with pytest.raises(NotFoundError):
        await runtime.reply_question(question_event["question_id"], [["Red"]])


async def test_reject_tells_the_model(runtime: Runtime, fake: FakeLLMServer) -> None:
    ask_then_answer(fake)
    session = await runtime.create_session()
    rest, events = await run_until_question(runtime, session.id)
    await runtime.reject_question(events[-1].to_dict()["question_id"])
    events += [event async for event in rest]
    result = next(e.to_dict() for e in events if e.type == "tool_result")
    assert "dismissed" in result["text"]
    assert events[-1].type == "done"


async def test_question_waits_with_nobody_connected(runtime: Runtime, fake: FakeLLMServer) -> None:
    ask_then_answer(fake)
    session = await runtime.create_session()
    rest, _ = await run_until_question(runtime, session.id)
    await rest.aclose()  # the client goes away; the turn keeps waiting
    pending = await runtime.list_questions()
    assert len(pending) == 1
    async with runtime.subscribe(session.id) as subscription:
        await runtime.reply_question(pending[0].id, [["Red"]])
        async for item in subscription:
            if item.event.type == "done":
                break
    page = await runtime.list_messages(session.id)
    assert page.messages[-1].status == "completed"


async def test_unanswered_question_times_out(tmp_path: Path, fake: FakeLLMServer) -> None:
    ask_then_answer(fake)
    settings = make_settings(tmp_path, fake, question_timeout=0.05)
    async with Runtime.open(settings) as runtime:
        session = await runtime.create_session()
        events = [e async for e in runtime.send(session.id, "pick")]
        result = next(e.to_dict() for e in events if e.type == "tool_result")
        assert "did not answer" in result["text"]
        assert events[-1].type == "done"
        assert await runtime.list_questions() == []
