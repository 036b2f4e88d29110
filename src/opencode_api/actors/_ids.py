"""Prefixed, time-sortable IDs (``ses_``, ``msg_``, ``prt_``, ``que_``): monotonic ULIDs.

A ULID is 48 bits of milliseconds and 80 random bits, written as 26 Crockford base32 characters.
A turn makes about ten of them: they are encoded here, 10 bits per table lookup (~3x faster than
building a ``ULID`` object and printing it), and are the same strings.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 10-bit value as its two base32 characters.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]

_lock = threading.Lock()
_last = 0


def _encode(value: int) -> str:
    """The 26 characters of a 128-bit ULID value: two of 5 bits (the first holds the top 3),
    then twelve pairs of 10 bits."""
    alphabet, pairs = _ALPHABET, _PAIRS
    head = alphabet[(value >> 125) & 31] + alphabet[(value >> 120) & 31]
    return head + "".join([pairs[(value >> shift) & 0x3FF] for shift in range(110, -1, -10)])


def new_id(prefix: str) -> str:
    """A ULID-based id, strictly increasing within this process (ties in one millisecond too)."""
    global _last
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10))
    with _lock:
        if value <= _last:
            value = _last + 1
        _last = value
    return f"{prefix}_{_encode(value)}"
