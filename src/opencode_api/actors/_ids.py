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
# Random bytes are read from the OS 4 KiB at a time: a getrandom() call per id released the GIL,
# and in a process whose other threads want it (a Ray shard) taking it back showed as ~4 % of
# the shard's samples on that one line.
_RANDOM_CHUNK = 4000
_random = b""
_used = 0


def _forget_random() -> None:
    # A forked child must not hand out its parent's unused bytes (the same ids in two processes).
    global _random, _used
    _random, _used = b"", 0


os.register_at_fork(after_in_child=_forget_random)


def _encode(value: int) -> str:
    """The 26 characters of a 128-bit ULID value: two of 5 bits (the first holds the top 3),
    then twelve pairs of 10 bits."""
    alphabet, pairs = _ALPHABET, _PAIRS
    head = alphabet[(value >> 125) & 31] + alphabet[(value >> 120) & 31]
    return head + "".join([pairs[(value >> shift) & 0x3FF] for shift in range(110, -1, -10)])


def new_id(prefix: str) -> str:
    """A ULID-based id, strictly increasing within this process (ties in one millisecond too)."""
    global _last, _random, _used
    now = time.time_ns() // 1_000_000
    with _lock:
        if _used + 10 > len(_random):
            _random, _used = os.urandom(_RANDOM_CHUNK), 0
        value = now << 80 | int.from_bytes(_random[_used : _used + 10])
        _used += 10
        if value <= _last:
            value = _last + 1
        _last = value
    return f"{prefix}_{_encode(value)}"
