"""Session titles: one short completion from the first user message, cleaned up."""

from __future__ import annotations

from opencode_api.llm import LLMClient, LLMRequest

TITLE_PROMPT = (
    "Generate a short title (at most 8 words) for a conversation that starts with the user "
    "message below. Reply with the title only: no quotes, no punctuation at the end."
)


async def make_title(llm: LLMClient, text: str, model: str) -> str:
    """A title for a conversation starting with ``text``; falls back to the text itself."""
    reply = await llm.complete(
        LLMRequest(
            model=model,
            messages=[
                {"role": "system", "content": TITLE_PROMPT},
                {"role": "user", "content": text[:4000]},
            ],
            max_tokens=64,
            timeout=60.0,
        )
    )
    return clean_title(reply) or clean_title(text) or "New session"


def clean_title(text: str) -> str:
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = line.strip("\"'`*# ").rstrip(".")
    if len(line) > 80:
        line = line[:77].rstrip() + "..."
    return line
