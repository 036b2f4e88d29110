"""The agent loop of one turn: stream a step from the model, run the tools it asks for, repeat.

``Turn`` holds everything generated so far, so an abort or a crash can store it as it is.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from opencode_api.actors._budget import BudgetPolicy
from opencode_api.actors._context import LAST_STEP_REMINDER
from opencode_api.actors._errors import InvalidOutputError
from opencode_api.actors._events import (
    ReasoningEvent,
    StepFinish,
    StepStart,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnEvent,
)
from opencode_api.actors._structured import OutputCheck
from opencode_api.actors._turn import Turn
from opencode_api.llm import (
    LLMClient,
    LLMError,
    LLMRequest,
    ReasoningDelta,
    StreamFinish,
    TextDelta,
    ToolCallRequest,
    step_cost,
)
from opencode_api.settings import Settings
from opencode_api.store import Part, StepRecord, Store, Usage
from opencode_api.tools import ToolContext, ToolRegistry, ToolResult

log = structlog.get_logger("opencode_api.agent")

DOOM_LOOP_THRESHOLD = 3


@dataclass(slots=True)
class StepResult:
    text: str
    reasoning: str
    tool_calls: list[ToolCallRequest]
    usage: Usage
    finish: str


class AgentLoop:
    """Runs the steps of one turn; publishes events through ``publish``; stores each step."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        llm: LLMClient,
        tools: ToolRegistry,
        publish: Callable[[TurnEvent], None],
        tool_context: Callable[[Turn, str], ToolContext],
        budgets: BudgetPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._budgets = budgets or BudgetPolicy(store, settings)
        self._store = store
        self._llm = llm
        self._tools = tools
        self._publish = publish
        self._tool_context = tool_context

    async def run(self, turn: Turn, context: list[dict[str, Any]]) -> str:
        """Run steps until the model stops asking for tools; returns the stop reason."""
        options = turn.options
        schemas = self._tools.schemas() if options.tools_enabled else None
        if schemas is not None and options.tools is not None:
            allowed = set(options.tools)
            schemas = [t for t in schemas if t["function"]["name"] in allowed] or None
        check = OutputCheck(options.response_format) if options.response_format else None
        extra: dict[str, Any] = {}
        if check is not None:
            context[0] = {**context[0], "content": context[0]["content"] + check.instruction()}
            native = check.native(options.provider_id)
            if native is not None:
                extra["response_format"] = native
        for step in range(1, options.max_steps + 1):
            turn.step = step
            turn.step_parts = [turn.new_part("step_start", metadata={"step_number": step})]
            turn.step_text = []
            turn.step_reasoning = []
            self._publish(
                StepStart(
                    turn.session_id,
                    turn.message_id,
                    turn.user_message_id,
                    step_number=step,
                    max_steps=options.max_steps,
                )
            )
            last = step == options.max_steps
            messages = context
            if last and step > 1:
                messages = [*context, {"role": "user", "content": LAST_STEP_REMINDER}]
            request = LLMRequest(
                model=options.model,
                messages=messages,
                tools=None if (last and step > 1) else schemas,
                temperature=options.temperature,
                max_tokens=options.max_tokens,
                timeout=self._settings.llm_timeout,
                extra=extra,
            )
            result = await self._stream_step(turn, request)
            results = await self._run_tools(turn, result.tool_calls)
            finish = "tool_calls" if result.tool_calls else result.finish
            final = (
                None
                if result.tool_calls
                else ("stop" if finish in ("stop", "end_turn") else finish)
            )
            if final == "stop" and last and step > 1:
                # The cap ended the turn: this step was told to answer without tools, so the
                # model stopped because it had to. The client asked for max_steps; say so.
                final = "max_steps"
            correction = None
            if check is not None and final in ("stop", "max_steps", "length"):
                turn.output, problem = check.check("".join(turn.step_text))
                if problem is not None:
                    if check.corrected or last:
                        await self._finish_step(turn, result, finish)
                        raise InvalidOutputError(problem)
                    check.corrected, final = True, None  # one corrective step follows
                    correction = check.correction(problem)
            cost = await self._finish_step(turn, result, finish, final=final)
            budget = options.budget
            over = budget is not None and await self._budgets.spent(budget, turn.cost, cost)
            context.extend(_step_messages(result, results))
            if correction is not None:
                context.append(correction)
            if final is not None:
                return final
            if over:
                return "budget"
            if self._doom_loop(turn, result.tool_calls):
                log.warning("doom loop stopped", session_id=turn.session_id)
                return "doom_loop"
        return "max_steps"

    # -- one step ------------------------------------------------------------------------

    async def _stream_step(self, turn: Turn, request: LLMRequest) -> StepResult:
        attempt = 0
        delay = 0.0
        while True:
            emitted = False
            calls: list[ToolCallRequest] = []
            usage = Usage()
            finish = "stop"
            stream = self._llm.stream(request)
            try:
                async for event in stream:
                    match event:
                        case TextDelta(text=text):
                            emitted = True
                            turn.step_text.append(text)
                            self._publish(
                                TextEvent(
                                    turn.session_id, turn.message_id, turn.user_message_id, text
                                )
                            )
                        case ReasoningDelta(text=text):
                            emitted = True
                            turn.step_reasoning.append(text)
                            self._publish(
                                ReasoningEvent(
                                    turn.session_id, turn.message_id, turn.user_message_id, text
                                )
                            )
                        case ToolCallRequest():
                            emitted = True
                            calls.append(event)
                        case Usage():
                            usage = event
                        case StreamFinish(reason=reason):
                            finish = reason
                return StepResult(
                    text="".join(turn.step_text),
                    reasoning="".join(turn.step_reasoning),
                    tool_calls=calls,
                    usage=usage,
                    finish=finish,
                )
            except LLMError as exc:
                if not exc.retryable or emitted or attempt >= self._settings.llm_max_retries:
                    raise
                delay = self._retry_delay(attempt, exc.retry_after)
                attempt += 1
                log.info(
                    "retrying provider call",
                    error=exc.type,
                    status=exc.status,
                    attempt=attempt,
                    delay=round(delay, 3),
                )
            finally:
                # Closing the stream closes the upstream connection at once.
                await stream.aclose()  # type: ignore[attr-defined]
            await asyncio.sleep(delay)

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        base: float = self._settings.llm_retry_base_delay * 2.0**attempt
        delay: float = min(self._settings.llm_retry_max_delay, base) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self._settings.llm_retry_max_delay * 4))
        return delay

    async def _run_tools(self, turn: Turn, calls: Sequence[ToolCallRequest]) -> list[ToolResult]:
        if not calls:
            return []
        parts: list[Part] = []
        for call in calls:
            args = _parse_args(call.arguments)
            part = turn.new_part(
                "tool_call",
                tool_call_id=call.id,
                tool_name=call.name,
                tool_args=args,
                tool_status="running",
            )
            parts.append(part)
            turn.step_parts.append(part)
            turn.recent_calls.append((call.name, call.arguments))
            self._publish(
                ToolCallEvent(
                    turn.session_id,
                    turn.message_id,
                    turn.user_message_id,
                    tool_call={"id": call.id, "name": call.name, "arguments": args},
                )
            )

        allowed = turn.options.tools

        async def run_one(call: ToolCallRequest, index: int) -> ToolResult:
            if allowed is not None and call.name not in allowed:
                text = f"Tool {call.name!r} is not available in this turn."
                result = ToolResult(call.id, call.name, text, is_error=True)
            else:
                ctx = self._tool_context(turn, call.id)
                result = await self._tools.execute(call.id, call.name, call.arguments, ctx)
            part = parts[index]
            part.tool_output = result.text
            part.tool_status = "error" if result.is_error else "completed"
            self._publish(
                ToolResultEvent(
                    turn.session_id,
                    turn.message_id,
                    turn.user_message_id,
                    tool_call_id=call.id,
                    name=call.name,
                    text=result.text,
                    is_error=result.is_error,
                )
            )
            return result

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(run_one(call, i)) for i, call in enumerate(calls)]
        return [task.result() for task in tasks]

    async def _finish_step(
        self, turn: Turn, result: StepResult, finish: str, *, final: str | None = None
    ) -> float:
        """Store the step. ``final``: the turn ends here with that stop reason, so the message
        is stored finished in the same transaction (the turn's end needs no write of its own)."""
        cost, priced = step_cost(turn.options.model, result.usage)
        turn.usage = turn.usage + result.usage
        turn.cost += cost
        turn.priced = turn.priced and priced
        usage = turn.usage_dict(result.usage)
        parts = turn.pending_step_parts()
        parts.append(
            turn.new_part(
                "step_finish",
                metadata={
                    "step_number": turn.step,
                    "stop_reason": finish,
                    "usage": usage,
                    "cost": cost,
                    "priced": priced,
                },
            )
        )
        turn.fold(parts, **({"finish": final, "status": "completed"} if final else {}))
        await self._store.save_step(
            StepRecord(message=turn.message, parts=parts, usage_delta=result.usage, cost_delta=cost)
        )
        self._publish(
            StepFinish(
                turn.session_id,
                turn.message_id,
                turn.user_message_id,
                step_number=turn.step,
                stop_reason=finish,
                usage=usage,
                cost=cost,
            )
        )
        return cost

    @staticmethod
    def _doom_loop(turn: Turn, calls: Sequence[ToolCallRequest]) -> bool:
        recent = turn.recent_calls[-DOOM_LOOP_THRESHOLD:]
        if len(recent) < DOOM_LOOP_THRESHOLD:
            return False
        name, args = recent[0]
        return all(n == name and _same_args(a, args) for n, a in recent[1:])


def _parse_args(arguments: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_value": value}


def _same_args(a: str, b: str) -> bool:
    return _parse_args(a) == _parse_args(b)


def _step_messages(result: StepResult, results: Sequence[ToolResult]) -> list[dict[str, Any]]:
    """The step as the model will see it next time: its reply, then each tool's output."""
    if not result.text and not result.tool_calls:
        return []
    entry: dict[str, Any] = {"role": "assistant", "content": result.text or None}
    if result.tool_calls:
        entry["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments or "{}"},
            }
            for call in result.tool_calls
        ]
    out = [entry]
    out.extend({"role": "tool", "tool_call_id": r.tool_call_id, "content": r.text} for r in results)
    return out
