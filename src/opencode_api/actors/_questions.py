"""Questions to the user: the ``question`` tool's side of a session actor, and the
``ToolContext`` a tool call gets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from opencode_api.actors._events import QuestionEvent, TurnEvent
from opencode_api.actors._ids import new_id
from opencode_api.actors._messages import AnswerQuestion
from opencode_api.actors._turn import Turn
from opencode_api.store import Question, QuestionItem, Session, Store, Todo
from opencode_api.tools import QuestionRejected

PublishBus = Callable[[str, dict[str, Any]], None]


class QuestionDesk:
    """The questions a session's running turn waits on; answers arrive on the control lane."""

    __slots__ = ("_publish", "_publish_bus", "_store", "_timeout", "_waiting")

    def __init__(
        self,
        store: Store,
        timeout: float,
        publish: Callable[[TurnEvent], None],
        publish_bus: PublishBus,
    ) -> None:
        self._store = store
        self._timeout = timeout
        self._publish = publish
        self._publish_bus = publish_bus
        self._waiting: dict[str, asyncio.Future[AnswerQuestion]] = {}

    def answer(self, message: AnswerQuestion) -> bool:
        """Hand a reply or a rejection to the waiting tool; False when nobody waits for it."""
        future = self._waiting.get(message.question_id)
        if future is None or future.done():
            return False
        future.set_result(message)
        return True

    async def ask(
        self, session: Session, turn: Turn, tool_call_id: str, questions: Sequence[QuestionItem]
    ) -> list[list[str]] | None:
        """Store and publish the question, wait for the answer (None after the timeout)."""
        store = self._store
        question = Question(
            id=new_id("que"),
            session_id=session.id,
            message_id=turn.message_id,
            tool_call_id=tool_call_id,
            questions=list(questions),
            user_id=session.user_id,
        )
        await store.create_question(question)
        future: asyncio.Future[AnswerQuestion] = asyncio.get_running_loop().create_future()
        self._waiting[question.id] = future
        items = [q.model_dump(mode="json") for q in questions]
        self._publish(
            QuestionEvent(
                session.id,
                turn.message_id,
                turn.user_message_id,
                question_id=question.id,
                questions=items,
            )
        )
        self._publish_bus("question.asked", {"question": question.model_dump(mode="json")})
        try:
            async with asyncio.timeout(self._timeout):
                answer = await future
        except TimeoutError:
            await store.resolve_question(question.id, "expired")
            return None
        except asyncio.CancelledError:
            await asyncio.shield(store.resolve_question(question.id, "expired"))
            raise
        finally:
            self._waiting.pop(question.id, None)
        if answer.rejected:
            await store.resolve_question(question.id, "rejected")
            self._publish_bus("question.rejected", {"question_id": question.id})
            raise QuestionRejected(question.id)
        answers = answer.answers or []
        await store.resolve_question(question.id, "answered", answers)
        self._publish_bus("question.replied", {"question_id": question.id, "answers": answers})
        return answers


class SessionToolContext:
    """The ``ToolContext`` of one tool call in a session's turn."""

    __slots__ = ("_ask", "_publish_bus", "_turn", "store", "tool_call_id")

    def __init__(
        self,
        turn: Turn,
        tool_call_id: str,
        store: Store,
        publish_bus: PublishBus,
        ask: Callable[[Turn, str, Sequence[QuestionItem]], Any],
    ) -> None:
        self._turn = turn
        self.tool_call_id = tool_call_id
        self.store = store
        self._publish_bus = publish_bus
        self._ask = ask

    @property
    def session_id(self) -> str:
        return self._turn.session_id

    @property
    def message_id(self) -> str:
        return self._turn.message_id

    def publish(self, event_type: str, properties: dict[str, Any]) -> None:
        self._publish_bus(event_type, properties)

    async def ask(self, questions: Sequence[QuestionItem]) -> list[list[str]] | None:
        answers: list[list[str]] | None = await self._ask(self._turn, self.tool_call_id, questions)
        return answers

    async def todos_changed(self, todos: Sequence[Todo]) -> None:
        await self.store.set_todos(self.session_id, todos)
        self._publish_bus("todo.updated", {"todos": [t.model_dump(mode="json") for t in todos]})
