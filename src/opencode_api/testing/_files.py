"""What file parts (images, PDFs) a fake provider received, in either wire protocol's shape:
OpenAI's ``image_url`` / ``file`` content parts and Anthropic's ``image`` / ``document`` blocks
read alike, so a test (or a ``Reply(echo_files=True)``) can compare what each path sent."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def received_files(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{"kind": "image"|"document", "media_type", "bytes", "url"}]`` of every user message of
    a request body, in order (``bytes``: decoded size of inline data; ``url``: a URL source)."""
    found: list[dict[str, Any]] = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for part in content:
            if isinstance(part, dict):
                entry = _describe(part)
                if entry is not None:
                    found.append(entry)
    return found


def echo_text(body: dict[str, Any]) -> str:
    """The reply of a fake that echoes what files it received (JSON of ``received_files``)."""
    return json.dumps(received_files(body), sort_keys=True)


def _describe(part: dict[str, Any]) -> dict[str, Any] | None:
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        media = image.get("format") if isinstance(image, dict) else None
        return _entry("document" if media == "application/pdf" else "image", str(url), media)
    if kind == "file":
        return _entry("document", str((part.get("file") or {}).get("file_data") or ""), None)
    if kind in ("image", "document"):
        source = part.get("source") or {}
        if source.get("type") == "base64":
            data = str(source.get("data") or "")
            return {
                "kind": kind,
                "media_type": source.get("media_type"),
                "bytes": _size(data),
                "url": None,
            }
        return {"kind": kind, "media_type": None, "bytes": None, "url": source.get("url")}
    return None


def _entry(kind: str, url: str, media: str | None) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        declared, data = url[5:].split(";base64,", 1)
        return {"kind": kind, "media_type": declared, "bytes": _size(data), "url": None}
    return {"kind": kind, "media_type": None, "bytes": None, "url": url}


def _size(data: str) -> int | None:
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None
