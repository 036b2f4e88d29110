"""A scripted Anthropic Messages provider (``/v1/messages``, SSE and JSON) driven by ``Reply``."""

from __future__ import annotations

import json
from typing import Any

from opencode_api.testing._script import Reply, Usage
from opencode_api.testing._server import FakeProviderServer, sse_event

_STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def anthropic_usage(usage: Usage) -> dict[str, Any]:
    """Anthropic counts input tokens without the cached ones; ``Usage`` counts them in."""
    fresh = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    return {
        "input_tokens": max(0, fresh),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
    }


class FakeAnthropicServer(FakeProviderServer):
    """Anthropic-compatible fake: ``base_url`` is ``http://127.0.0.1:PORT`` (+ ``/v1/messages``)."""

    paths = ("/v1/messages", "/messages")

    def _message(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": reply.model or body.get("model") or self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }

    def stream_frames(self, body: dict[str, Any], reply: Reply) -> list[bytes]:
        usage = anthropic_usage(reply.resolved_usage(body))
        start = self._message(body, reply)
        start["usage"] = {**usage, "output_tokens": 1}
        frames = [sse_event("message_start", {"type": "message_start", "message": start})]
        index = 0

        def block(kind: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
            nonlocal index
            frames.append(
                sse_event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": kind},
                )
            )
            for delta in deltas:
                frames.append(
                    sse_event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
            frames.append(
                sse_event("content_block_stop", {"type": "content_block_stop", "index": index})
            )
            index += 1

        if reply.reasoning_chunks:
            deltas = [{"type": "thinking_delta", "thinking": t} for t in reply.reasoning_chunks]
            deltas.append({"type": "signature_delta", "signature": "fake-signature"})
            block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
        if reply.text_chunks:
            block(
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": t} for t in reply.text_chunks],
            )
        for number, call in enumerate(reply.tool_calls):
            block(
                {
                    "type": "tool_use",
                    "id": reply.tool_call_id(number),
                    "name": call.name,
                    "input": {},
                },
                [
                    {"type": "input_json_delta", "partial_json": f}
                    for f in call.argument_fragments()
                ],
            )
        frames.append(
            sse_event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop_reason(reply), "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
            )
        )
        frames.append(sse_event("message_stop", {"type": "message_stop"}))
        return frames

    @staticmethod
    def _stop_reason(reply: Reply) -> str:
        return _STOP_REASONS.get(reply.finish, reply.finish)

    def error_body(self, reply: Reply) -> dict[str, Any]:
        kind = reply.error_type or _ERROR_TYPES.get(reply.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": reply.error_message}}

    def error_frame(self, reply: Reply) -> bytes:
        body = self.error_body(reply)
        if reply.status < 400 and reply.error_type is None:
            body["error"]["type"] = "overloaded_error"
        return sse_event("error", body)

    def completion_body(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message = self._message(body, reply)
        content: list[dict[str, Any]] = []
        if reply.reasoning_chunks:
            content.append(
                {
                    "type": "thinking",
                    "thinking": "".join(reply.reasoning_chunks),
                    "signature": "fake",
                }
            )
        if reply.text_chunks:
            content.append({"type": "text", "text": "".join(reply.text_chunks)})
        for number, call in enumerate(reply.tool_calls):
            content.append(
                {
                    "type": "tool_use",
                    "id": reply.tool_call_id(number),
                    "name": call.name,
                    "input": json.loads(call.arguments_json or "{}"),
                }
            )
        message["content"] = content
        message["stop_reason"] = self._stop_reason(reply)
        message["usage"] = anthropic_usage(reply.resolved_usage(body))
        return message
