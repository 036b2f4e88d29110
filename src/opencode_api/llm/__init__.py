"""opencode_api.llm: the LLM seam. One small protocol (``LLMClient``) in front of the model
providers, its events and errors, the fast OpenAI/Anthropic clients, the LiteLLM client (the one
place LiteLLM is imported and configured), the router between them, pricing and the provider
catalogue. It knows nothing of sessions, stores or HTTP routes.
"""

from opencode_api.llm._errors import (
    AuthenticationError,
    ContextWindowExceededError,
    LLMError,
    ModelNotFoundError,
    ProviderNotConfiguredError,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    ProviderUnreachableError,
    RateLimitError,
)
from opencode_api.llm._fast_client import FastLLMClient
from opencode_api.llm._litellm_client import LiteLLMClient, warm_up
from opencode_api.llm._model_map import supports_input
from opencode_api.llm._pricing import step_cost
from opencode_api.llm._protocol import (
    LLMClient,
    LLMRequest,
    ReasoningDelta,
    StreamEvent,
    StreamFinish,
    TextDelta,
    ToolCallRequest,
)
from opencode_api.llm._providers import (
    ModelInfo,
    ProviderDetail,
    ProviderInfo,
    context_window,
    get_provider,
    list_models,
    list_providers,
    resolve_model,
)
from opencode_api.llm._router import RoutingLLMClient
from opencode_api.usage import Usage

__all__ = [
    "AuthenticationError",
    "ContextWindowExceededError",
    "FastLLMClient",
    "LLMClient",
    "LLMError",
    "LLMRequest",
    "LiteLLMClient",
    "ModelInfo",
    "ModelNotFoundError",
    "ProviderDetail",
    "ProviderInfo",
    "ProviderNotConfiguredError",
    "ProviderRequestError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "ProviderUnreachableError",
    "RateLimitError",
    "ReasoningDelta",
    "RoutingLLMClient",
    "StreamEvent",
    "StreamFinish",
    "TextDelta",
    "ToolCallRequest",
    "Usage",
    "context_window",
    "get_provider",
    "list_models",
    "list_providers",
    "resolve_model",
    "step_cost",
    "supports_input",
    "warm_up",
]
