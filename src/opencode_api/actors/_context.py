"""Build the model's context (OpenAI-format messages) from stored messages and their parts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opencode_api.store import Message, Part

DEFAULT_SYSTEM_PROMPT = (
    "You are opencode, a helpful AI assistant. Answer the user's questions and help with their "
    "tasks. Use the available tools when they help: search and fetch the web for current "
    "information, keep a todo list for multi-step work, and ask the user when a choice is theirs "
    "to make. Be concise and accurate."
)
LAST_STEP_REMINDER = (
    "You have reached the maximum number of steps for this turn. Do not call any more tools: "
    "answer the user now with what you have, and say what is left to do."
)
PRUNED_OUTPUT = "[Old tool result content cleared]"
ABORTED_OUTPUT = "Tool execution was aborted"


def build_context(
    system: str | None, messages: Sequence[Message], *, prune_tokens: int | None = None
) -> list[dict[str, Any]]:
    """System prompt, the latest summary (if any), then the messages the model still sees.

    Tool outputs older than the newest ``prune_tokens`` (about 4 characters a token) are
    replaced by a placeholder in what the model sees; the store keeps them.
    """
    out: list[dict[str, Any]] = [{"role": "system", "content": system or DEFAULT_SYSTEM_PROMPT}]
    summaries = [m for m in messages if m.summary]
    if summaries:
        out.append(
            {
                "role": "user",
                "content": "Summary of the earlier conversation (older messages were "
                f"compacted):\n\n{summaries[-1].content}",
            }
        )
    pruned = _pruned_parts(messages, prune_tokens)
    for message in messages:
        if message.summary or message.compacted:
            continue
        if message.role == "user":
            out.append({"role": "user", "content": message.content})
        else:
            out.extend(_assistant_messages(message.parts, pruned))
    return out


def _pruned_parts(messages: Sequence[Message], budget_tokens: int | None) -> set[str]:
    if budget_tokens is None:
        return set()
    pruned: set[str] = set()
    used = 0
    for message in reversed(messages):
        for part in reversed(message.parts):
            if part.type != "tool_call" or not part.tool_output:
                continue
            used += len(part.tool_output) // 4
            if used > budget_tokens:
                pruned.add(part.id)
    return pruned


def _assistant_messages(parts: Sequence[Part], pruned: set[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    steps: list[list[Part]] = []
    for part in parts:
        if part.type == "step_start" or not steps:
            steps.append([])
        if part.type not in ("step_start", "step_finish"):
            steps[-1].append(part)
    for step in steps:
        text = "".join(p.content or "" for p in step if p.type == "text")
        calls = [p for p in step if p.type == "tool_call" and p.tool_call_id]
        if not text and not calls:
            continue
        entry: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            entry["tool_calls"] = [
                {
                    "id": p.tool_call_id,
                    "type": "function",
                    "function": {
                        "name": p.tool_name or "",
                        "arguments": json.dumps(p.tool_args or {}),
                    },
                }
                for p in calls
            ]
        out.append(entry)
        for p in calls:
            if p.id in pruned:
                output = PRUNED_OUTPUT
            elif p.tool_output is None:
                output = ABORTED_OUTPUT
            else:
                output = p.tool_output
            out.append({"role": "tool", "tool_call_id": p.tool_call_id, "content": output})
    return out
