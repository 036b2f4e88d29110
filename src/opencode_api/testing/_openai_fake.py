"""A scripted OpenAI Chat Completions provider (``/v1/chat/completions``, SSE and JSON)."""

from __future__ import annotations

import time
from typing import Any

from opencode_api.testing._script import Reply, Usage
from opencode_api.testing._server import FakeProviderServer, sse_data

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


def openai_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


class FakeLLMServer(FakeProviderServer):
    """OpenAI-compatible fake: ``base_url`` is ``http://127.0.0.1:PORT/v1``."""

    paths = ("/v1/chat/completions", "/chat/completions")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def _chunk(
        self, body: dict[str, Any], reply: Reply, delta: dict[str, Any], finish: str | None
    ) -> bytes:
        return sse_data(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": reply.model or body.get("model") or self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    def stream_frames(self, body: dict[str, Any], reply: Reply) -> list[bytes]:
        self._created = int(time.time())
        frames = [self._chunk(body, reply, {"role": "assistant", "content": ""}, None)]
        for text in reply.reasoning_chunks:
            frames.append(self._chunk(body, reply, {"reasoning_content": text}, None))
        for text in reply.text_chunks:
            frames.append(self._chunk(body, reply, {"content": text}, None))
        for index, call in enumerate(reply.tool_calls):
            head = {
                "index": index,
                "id": reply.tool_call_id(index),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            frames.append(self._chunk(body, reply, {"tool_calls": [head]}, None))
            for fragment in call.argument_fragments():
                part = {"index": index, "function": {"arguments": fragment}}
                frames.append(self._chunk(body, reply, {"tool_calls": [part]}, None))
        frames.append(self._chunk(body, reply, {}, reply.finish))
        options = body.get("stream_options") or {}
        if options.get("include_usage"):
            frames.append(
                sse_data(
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": self._created,
                        "model": reply.model or body.get("model") or self.model,
                        "choices": [],
                        "usage": openai_usage(reply.resolved_usage(body)),
                    }
                )
            )
        frames.append(sse_data("[DONE]"))
        return frames

    _created = 0

    def error_body(self, reply: Reply) -> dict[str, Any]:
        kind = reply.error_type or _ERROR_TYPES.get(reply.status, "server_error")
        return {
            "error": {
                "message": reply.error_message,
                "type": kind,
                "param": None,
                "code": reply.error_type,
            }
        }

    def error_frame(self, reply: Reply) -> bytes:
        return sse_data(self.error_body(reply))

    def completion_body(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.text_chunks)}
        if reply.reasoning_chunks:
            message["reasoning_content"] = "".join(reply.reasoning_chunks)
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": reply.tool_call_id(index),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
                for index, call in enumerate(reply.tool_calls)
            ]
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or body.get("model") or self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish}],
            "usage": openai_usage(reply.resolved_usage(body)),
        }
