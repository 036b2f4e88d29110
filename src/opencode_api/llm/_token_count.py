"""Token counts of text as LiteLLM's ``token_counter(text=...)`` gives them, without LiteLLM.

Used for Anthropic's thinking tokens, which its API rarely reports (LiteLLM estimates them the same
way). The count is tiktoken's ``cl100k_base`` over 1,024-character pieces, extrapolated from 16
samples above 4,000,000 characters, as LiteLLM counts. The encoding is read from the copy bundled
inside the LiteLLM package, never downloaded: loading it takes ~0.5 s and ~50 MB, so it happens
once, in a thread (``load_encoding``). Without tiktoken or the bundled file the count falls back to
one token per four characters.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from typing import Protocol

from opencode_api.llm._model_map import litellm_package_dir

ENCODING = "cl100k_base"
_ENCODING_URL = f"https://openaipublic.blob.core.windows.net/encodings/{ENCODING}.tiktoken"
_PIECE_CHARS = 1024
_EXACT_CHARS = 4_000_000
_SAMPLES = 16


class _Encoding(Protocol):
    def encode(self, text: str, *, disallowed_special: tuple[()] = ()) -> list[int]: ...


_encoding: _Encoding | None = None
_failed = False
_lock = threading.Lock()


def _load() -> _Encoding | None:
    """tiktoken's ``cl100k_base`` from LiteLLM's bundled copy, or None (blocking)."""
    global _encoding, _failed
    with _lock:
        if _encoding is not None or _failed:
            return _encoding
        package = litellm_package_dir()
        bundled = package / "litellm_core_utils" / "tokenizers" if package else None
        # tiktoken looks for the file under the SHA-1 of its URL in TIKTOKEN_CACHE_DIR, and
        # downloads it when it is missing there: only let it load when the file is present.
        cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or (str(bundled) if bundled else "")
        key = hashlib.sha1(_ENCODING_URL.encode()).hexdigest()
        if not cache_dir or not os.path.isfile(os.path.join(cache_dir, key)):
            _failed = True
            return None
        # As LiteLLM does at import: tiktoken reads its files from the bundled copy.
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", cache_dir)
        try:
            import tiktoken

            _encoding = tiktoken.get_encoding(ENCODING)
        except Exception:
            _failed = True
        return _encoding


async def load_encoding() -> None:
    """Load the encoding in a thread unless it is loaded (or unavailable) already."""
    if _encoding is None and not _failed:
        await asyncio.to_thread(_load)


def count_tokens(text: str) -> int:
    """Tokens in ``text``; loads the encoding on first use (blocking: ``await load_encoding()``
    first on the event loop)."""
    encoding = _encoding if _encoding is not None or _failed else _load()
    if encoding is None:
        return -(-len(text) // 4)
    if len(text) <= _EXACT_CHARS:
        return _count_pieces(encoding, text)
    piece = _EXACT_CHARS // _SAMPLES
    last = len(text) - piece
    starts = (last * i // (_SAMPLES - 1) for i in range(_SAMPLES))
    samples = [text[start : start + piece] for start in starts]
    counted = sum(_count_pieces(encoding, sample) for sample in samples)
    return round(counted * len(text) / sum(len(sample) for sample in samples))


def _count_pieces(encoding: _Encoding, text: str) -> int:
    return sum(
        len(encoding.encode(text[start : start + _PIECE_CHARS], disallowed_special=()))
        for start in range(0, len(text), _PIECE_CHARS)
    )
