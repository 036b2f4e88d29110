"""The ``todowrite`` and ``todoread`` tools: the session's task list, stored and published."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, Field

from opencode_api.store import Todo, TodoPriority, TodoStatus
from opencode_api.tools._base import Tool, ToolContext, ToolOutput

TODOWRITE_DESCRIPTION = """\
Creates and updates the structured task list of this session. It tracks progress on multi-step \
work, organizes complex tasks, and shows the user what you are doing and what is left.

When to use it (proactively):
- A task needs 3 or more distinct steps, or careful planning.
- The user gives several tasks at once (a numbered or comma-separated list) or asks for a \
todo list.
- New instructions arrive: capture them as todos.
- You start a task: mark it in_progress BEFORE beginning (ideally one in_progress at a time).
- You finish a task: mark it completed at once and add any follow-up tasks you discovered.

When NOT to use it:
- A single, straightforward task, a trivial task, or a purely conversational or informational \
request that takes fewer than 3 trivial steps.

How to use it:
- Send the COMPLETE list every time: it replaces the previous one.
- Each todo has a unique id, a short imperative content, a status (pending, in_progress, \
completed, cancelled) and a priority (high, medium, low).
- Only mark a task completed when it is fully done; if blocked, keep it in_progress and add a \
todo for what must be resolved. Use cancelled for tasks that are no longer relevant."""

TODOREAD_DESCRIPTION = """\
Reads the current task list of this session (as last written with todowrite).

Use it to check what is pending or in progress before deciding what to do next, after the \
conversation was compacted, or when the user asks about progress. It takes no parameters and \
returns the list as JSON with each todo's id, content, status and priority."""


class TodoInfo(BaseModel):
    content: str = Field(description="Brief description of the task")
    status: TodoStatus = Field(
        description="Current status of the task: pending, in_progress, completed, cancelled"
    )
    priority: TodoPriority = Field(description="Priority level of the task: high, medium, low")
    id: str = Field(description="Unique identifier for the todo item")


class TodoWriteParams(BaseModel):
    todos: list[TodoInfo] = Field(description="The updated todo list")


class TodoReadParams(BaseModel):
    pass


def _todos_output(todos: Sequence[Todo]) -> ToolOutput:
    unfinished = sum(1 for todo in todos if todo.status not in ("completed", "cancelled"))
    as_json = [todo.model_dump(mode="json") for todo in todos]
    return ToolOutput(
        text=json.dumps(as_json, indent=2, ensure_ascii=False),
        title=f"{unfinished} todos",
        metadata={"todos": as_json, "unfinished": unfinished},
    )


class TodoWriteTool(Tool[TodoWriteParams]):
    name = "todowrite"
    description = TODOWRITE_DESCRIPTION
    params = TodoWriteParams
    timeout = 30.0

    async def run(self, params: TodoWriteParams, ctx: ToolContext) -> ToolOutput:
        todos = [Todo.model_validate(item.model_dump()) for item in params.todos]
        await ctx.todos_changed(todos)
        return _todos_output(todos)


class TodoReadTool(Tool[TodoReadParams]):
    name = "todoread"
    description = TODOREAD_DESCRIPTION
    params = TodoReadParams
    timeout = 30.0

    async def run(self, params: TodoReadParams, ctx: ToolContext) -> ToolOutput:
        return _todos_output(await ctx.store.get_todos(ctx.session_id))
