"""Cost of one step from LiteLLM's bundled price map; an unknown model is unpriced, not guessed."""

from __future__ import annotations

from typing import Any

from opencode_api.actors._litellm_client import import_litellm
from opencode_api.actors._llm import StreamUsage


def litellm_usage(usage: StreamUsage) -> Any:
    """Our usage as the LiteLLM ``Usage`` object a streamed call would have produced.

    ``input_tokens`` counts the cached tokens in (OpenAI convention, which LiteLLM also uses for
    Anthropic), so the cache figures go into ``prompt_tokens_details``.
    """
    from litellm.types.utils import (
        CompletionTokensDetailsWrapper,
        PromptTokensDetailsWrapper,
        Usage,
    )

    return Usage(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.input_tokens + usage.output_tokens,
        prompt_tokens_details=PromptTokensDetailsWrapper(
            cached_tokens=usage.cache_read_tokens,
            cache_creation_tokens=usage.cache_write_tokens,
        ),
        completion_tokens_details=CompletionTokensDetailsWrapper(
            reasoning_tokens=usage.reasoning_tokens
        ),
    )


def step_cost(model: str, usage: StreamUsage) -> tuple[float, bool]:
    """(cost in USD, priced). ``priced`` is False when the price map does not know the model."""
    litellm = import_litellm()
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model,
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
            usage_object=litellm_usage(usage),
        )
    except Exception:
        # LiteLLM raises a plain Exception (or NotFoundError) for an unmapped model.
        return 0.0, False
    return float(prompt_cost) + float(completion_cost), True
