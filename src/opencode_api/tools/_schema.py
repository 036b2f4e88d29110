"""Turn a pydantic JSON schema into a self-contained tool schema every provider accepts."""

from __future__ import annotations

from typing import Any

_NULL = {"type": "null"}


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$defs``/``$ref``, drop pydantic's ``title`` keys and ``null`` alternatives.

    Some providers (Gemini among them) reject ``$ref`` in function parameters, and titles only
    cost tokens; parameter models are small trees, so inlining never blows up.
    """
    defs: dict[str, Any] = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                merged = {
                    **defs[ref.removeprefix("#/$defs/")],
                    **{k: v for k, v in node.items() if k != "$ref"},
                }
                return walk(merged)
            variants = node.get("anyOf")
            if isinstance(variants, list) and len(variants) == 2 and _NULL in variants:
                # ``X | None = None`` is an optional parameter to the model, not a nullable one:
                # several providers reject ``anyOf`` with ``null``.
                (other,) = (v for v in variants if v != _NULL)
                rest = {k: v for k, v in node.items() if k != "anyOf"}
                if rest.get("default", ...) is None:
                    del rest["default"]
                return walk({**other, **rest})
            return {
                key: walk(value)
                for key, value in node.items()
                if key != "$defs" and not (key == "title" and isinstance(value, str))
            }
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result
