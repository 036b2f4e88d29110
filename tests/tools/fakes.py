"""Test doubles at the tool seam: an in-memory ToolContext (the session actor has the real one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from opencode_api.store import QuestionItem, Store, Todo


class TodoMemory:
    """Just the todo half of the Store protocol: all the todo tools touch."""

    def __init__(self) -> None:
        self.todos: dict[str, list[Todo]] = {}

    async def get_todos(self, session_id: str) -> list[Todo]:
        return list(self.todos.get(session_id, []))

    async def set_todos(self, session_id: str, todos: Sequence[Todo]) -> None:
        self.todos[session_id] = list(todos)


class FakeContext:
    """A ToolContext whose ``ask`` answers with what the test scripted."""

    def __init__(self, answer: list[list[str]] | BaseException | None = None) -> None:
        self.session_id = "ses_test"
        self.message_id = "msg_test"
        self.tool_call_id = "call_test"
        self.memory = TodoMemory()
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.asked: list[list[QuestionItem]] = []
        self.answer = answer

    @property
    def store(self) -> Store:
        return cast(Store, self.memory)

    def publish(self, event_type: str, properties: dict[str, Any]) -> None:
        self.events.append((event_type, properties))

    async def ask(self, questions: Sequence[QuestionItem]) -> list[list[str]] | None:
        self.asked.append(list(questions))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    async def todos_changed(self, todos: Sequence[Todo]) -> None:
        await self.memory.set_todos(self.session_id, todos)
        self.publish(
            "todo.updated",
            {"session_id": self.session_id, "todos": [t.model_dump() for t in todos]},
        )
