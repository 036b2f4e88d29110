"""Build the model's context (OpenAI-format messages) from stored messages and their parts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from opencode_api.store import FileData, Message, Part

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
    system: str | None,
    messages: Sequence[Message],
    *,
    prune_tokens: int | None = None,
    files: Mapping[str, FileData] | None = None,
) -> list[dict[str, Any]]:
    """System prompt, the latest summary (if any), then the messages the model still sees.

    Tool outputs older than the newest ``prune_tokens`` (about 4 characters a token) are
    replaced by a placeholder in what the model sees; the store keeps them. A user message's
    ``file`` parts become OpenAI content parts, with their bytes from ``files`` (by file id).
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
            out.append({"role": "user", "content": _user_content(message, files or {})})
        else:
            out.extend(_assistant_messages(message.parts, pruned))
    return out


def file_ids(messages: Sequence[Message]) -> list[str]:
    """The ids of the stored files the messages' ``file`` parts name (their bytes to load)."""
    return [
        str(part.metadata["file_id"])
        for message in messages
        for part in message.parts
        if part.type == "file" and part.metadata.get("file_id")
    ]


def _user_content(message: Message, files: Mapping[str, FileData]) -> str | list[dict[str, Any]]:
    attached = [part for part in message.parts if part.type == "file"]
    if not attached:
        return message.content
    content: list[dict[str, Any]] = []
    if message.content:
        content.append({"type": "text", "text": message.content})
    content.extend(file_content(part, files) for part in attached)
    return content


def file_content(part: Part, files: Mapping[str, FileData]) -> dict[str, Any]:
    """A ``file`` part in OpenAI's shape: an image as ``image_url`` (a data: URI or the https
    URL), a PDF as a ``file`` part with its data (by URL: ``image_url`` with a ``format``, which
    LiteLLM and the fast Anthropic client turn into a document block)."""
    meta = part.metadata
    mime = str(meta.get("mime") or "")
    url = meta.get("url")
    if isinstance(url, str):
        if mime == "application/pdf":
            return {"type": "image_url", "image_url": {"url": url, "format": mime}}
        return {"type": "image_url", "image_url": {"url": url}}
    stored = files.get(str(meta.get("file_id")))
    if stored is None:
        name = part.content or meta.get("file_id")
        return {"type": "text", "text": f"[attached file {name} is no longer available]"}
    data_uri = f"data:{stored.mime};base64,{stored.data}"
    if stored.mime == "application/pdf":
        file: dict[str, Any] = {"file_data": data_uri}
        if part.content:
            file["filename"] = part.content
        return {"type": "file", "file": file}
    return {"type": "image_url", "image_url": {"url": data_uri}}


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
