"""Prefixed, time-sortable IDs (``ses_``, ``msg_``, ``prt_``, ``que_``): monotonic ULIDs."""

from __future__ import annotations

import threading

from ulid import ULID

_lock = threading.Lock()
_last = 0


def new_id(prefix: str) -> str:
    """A ULID-based id, strictly increasing within this process (ties in one millisecond too)."""
    global _last
    value = int(ULID())
    with _lock:
        if value <= _last:
            value = _last + 1
        _last = value
    return f"{prefix}_{ULID.from_int(value)}"
