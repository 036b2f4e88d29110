"""Structured output (API.md "Richer input and output"): the final answer of a turn with a
``response_format`` must be JSON (``json_object``) or match a JSON schema (``json_schema``).

The format goes to providers that take it natively (OpenAI-compatible APIs and Gemini) and, for
every provider, into the system prompt; the answer is validated with ``jsonschema`` in every case.
An invalid answer gets one corrective step; a second one ends the turn with ``invalid_output``.
"""

from __future__ import annotations

import json
from typing import Any

from opencode_api.inputs import ResponseFormat

# Providers whose APIs take OpenAI's ``response_format`` (LiteLLM maps it for Gemini).
_NATIVE = frozenset({"openai", "gemini"})


class OutputCheck:
    """The final answer against one turn's ``response_format``."""

    def __init__(self, fmt: ResponseFormat) -> None:
        self.format = fmt
        from jsonschema import validators  # ~50 ms to import: only for turns that need it

        schema = fmt.json_schema.json_schema if fmt.json_schema is not None else None
        self._validator = None if schema is None else validators.validator_for(schema)(schema)
        self.corrected = False

    def native(self, provider_id: str) -> dict[str, Any] | None:
        """The request's ``response_format``, for providers that take it."""
        if provider_id not in _NATIVE:
            return None
        return self.format.model_dump(by_alias=True, exclude_none=True)

    def instruction(self) -> str:
        """What the system prompt adds, so that every provider knows what to answer."""
        text = "\n\nAnswer with a single JSON value and nothing else (no prose, no code fence)."
        if self.format.json_schema is not None:
            schema = json.dumps(self.format.json_schema.json_schema, separators=(",", ":"))
            text += f" It must be valid against this JSON schema: {schema}"
        else:
            text += " It must be a JSON object."
        return text

    def check(self, text: str) -> tuple[Any, str | None]:
        """(the parsed answer, None) or (None, what is wrong with it)."""
        body = _unfenced(text)
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            return None, f"the answer is not valid JSON ({exc.msg} at character {exc.pos})"
        if self._validator is None:
            if not isinstance(value, dict):
                return None, "the answer must be a JSON object"
            return value, None
        from jsonschema.exceptions import best_match

        error = best_match(self._validator.iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the top level"
            return None, f"the answer does not match the schema at {where}: {error.message}"
        return value, None

    def correction(self, problem: str) -> dict[str, Any]:
        """The user message of the corrective step."""
        return {
            "role": "user",
            "content": f"Your previous answer was rejected: {problem}. Answer again with only "
            "the JSON value, as required.",
        }


def _unfenced(text: str) -> str:
    """The answer without a Markdown code fence around it (models add one despite being told)."""
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and len(body) >= 6:
        body = body[3:-3]
        first, _, rest = body.partition("\n")
        body = rest if first.strip().isalpha() or not first.strip() else body
    return body.strip()
