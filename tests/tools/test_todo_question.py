"""todowrite/todoread and question, against an in-memory ToolContext."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from opencode_api.settings import Settings
from opencode_api.store import QuestionItem, Todo
from opencode_api.tools import QuestionRejected, ToolRegistry, default_registry
from tests.tools.fakes import FakeContext

TODOS = [
    {"id": "1", "content": "Write the tests", "status": "completed", "priority": "high"},
    {"id": "2", "content": "Fix the bug", "status": "in_progress", "priority": "high"},
    {"id": "3", "content": "Update docs", "status": "pending", "priority": "low"},
    {"id": "4", "content": "Old idea", "status": "cancelled", "priority": "medium"},
]
QUESTIONS: list[dict[str, Any]] = [
    {
        "question": "Which database should I use?",
        "header": "Database",
        "options": [
            {"label": "SQLite (Recommended)", "description": "Embedded, zero set-up"},
            {"label": "PostgreSQL", "description": "A server"},
        ],
    },
    {
        "question": "Which features?",
        "header": "Features",
        "options": [
            {"label": "Auth", "description": "Logins"},
            {"label": "Search", "description": "Full text"},
        ],
        "multiple": True,
    },
]


@pytest.fixture
async def registry() -> AsyncIterator[ToolRegistry]:
    registry = default_registry(Settings(question_timeout=300))
    yield registry
    await registry.aclose()


async def test_todowrite_stores_publishes_and_reports(
    registry: ToolRegistry, ctx: FakeContext
) -> None:
    result = await registry.execute("c1", "todowrite", json.dumps({"todos": TODOS}), ctx)
    assert not result.is_error
    assert json.loads(result.text) == TODOS
    assert result.title == "2 todos"
    assert result.metadata is not None and result.metadata["unfinished"] == 2
    assert await ctx.memory.get_todos("ses_test") == [Todo(**t) for t in TODOS]
    [(event, properties)] = ctx.events
    assert event == "todo.updated" and len(properties["todos"]) == 4


async def test_todoread_returns_the_stored_list(registry: ToolRegistry, ctx: FakeContext) -> None:
    await ctx.memory.set_todos("ses_test", [Todo(**t) for t in TODOS[1:3]])
    result = await registry.execute("c1", "todoread", "{}", ctx)
    assert not result.is_error
    assert json.loads(result.text) == TODOS[1:3]
    assert result.title == "2 todos"


async def test_todowrite_invalid_status_names_the_field(
    registry: ToolRegistry, ctx: FakeContext
) -> None:
    todos = [{**TODOS[0], "status": "done"}]
    result = await registry.execute("c1", "todowrite", json.dumps({"todos": todos}), ctx)
    assert result.is_error
    assert "todos.0.status: Input should be 'pending', 'in_progress'" in result.text
    assert ctx.events == []


async def test_question_answered(registry: ToolRegistry, ctx: FakeContext) -> None:
    ctx.answer = [["SQLite (Recommended)"], ["Auth", "Search"]]
    result = await registry.execute("c1", "question", json.dumps({"questions": QUESTIONS}), ctx)
    assert not result.is_error
    assert result.text == (
        'User has answered your questions: "Which database should I use?"="SQLite (Recommended)", '
        '"Which features?"="Auth, Search". You can now continue with the user\'s answers in mind.'
    )
    assert result.title == "Asked 2 questions"
    [asked] = ctx.asked
    assert [item.header for item in asked] == ["Database", "Features"]
    assert [item.multiple for item in asked] == [False, True]
    assert asked[0].options[1].description == "A server"


async def test_question_partly_answered(registry: ToolRegistry, ctx: FakeContext) -> None:
    ctx.answer = [["PostgreSQL"]]
    result = await registry.execute("c1", "question", json.dumps({"questions": QUESTIONS}), ctx)
    assert '"Which features?"="Unanswered"' in result.text


async def test_question_timed_out(registry: ToolRegistry, ctx: FakeContext) -> None:
    ctx.answer = None
    result = await registry.execute("c1", "question", json.dumps({"questions": QUESTIONS}), ctx)
    assert not result.is_error
    assert result.text.startswith("The user did not answer the questions")
    assert result.metadata == {"status": "expired"}


async def test_question_rejected(registry: ToolRegistry, ctx: FakeContext) -> None:
    ctx.answer = QuestionRejected()
    result = await registry.execute("c1", "question", json.dumps({"questions": QUESTIONS}), ctx)
    assert not result.is_error
    assert result.text.startswith("The user dismissed this question")
    assert result.metadata == {"status": "rejected"}


async def test_question_header_too_long(registry: ToolRegistry, ctx: FakeContext) -> None:
    questions = [{**QUESTIONS[0], "header": "x" * 31}]
    result = await registry.execute("c1", "question", json.dumps({"questions": questions}), ctx)
    assert result.is_error
    assert "questions.0.header: String should have at most 30 characters" in result.text
    assert ctx.asked == []


async def test_question_timeout_is_behind_the_actors(registry: ToolRegistry) -> None:
    tool = registry.get("question")
    assert tool is not None
    params = tool.params.model_validate({"questions": QUESTIONS})
    assert tool.timeout_for(params) > 300


async def test_abort_while_waiting_cancels_the_question(registry: ToolRegistry) -> None:
    class WaitingContext(FakeContext):
        def __init__(self) -> None:
            super().__init__()
            self.waiting = asyncio.Event()

        async def ask(self, questions: Sequence[QuestionItem]) -> list[list[str]] | None:
            self.waiting.set()
            await asyncio.Event().wait()  # nobody answers
            raise AssertionError("unreachable")

    ctx = WaitingContext()
    arguments = json.dumps({"questions": QUESTIONS})
    task = asyncio.create_task(registry.execute("c1", "question", arguments, ctx))
    await ctx.waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
