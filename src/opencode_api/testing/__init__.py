"""Scripted fake LLM providers over real HTTP, for tests and benchmarks (OpenAI and Anthropic APIs).

async with FakeLLMServer() as fake:
    fake.enqueue(Reply(text="Hello there", tool_calls=[ToolCall("todoread", {})]))
    ...  # point a client at fake.base_url; then look at fake.requests
"""

from opencode_api.testing._anthropic_fake import FakeAnthropicServer
from opencode_api.testing._files import received_files
from opencode_api.testing._openai_fake import FakeLLMServer
from opencode_api.testing._script import Reply, ToolCall, Usage, default_reply, split_words
from opencode_api.testing._server import FakeProviderServer

__all__ = [
    "FakeAnthropicServer",
    "FakeLLMServer",
    "FakeProviderServer",
    "Reply",
    "ToolCall",
    "Usage",
    "default_reply",
    "received_files",
    "split_words",
]
