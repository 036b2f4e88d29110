"""Ids: the hand-written ULID encoding gives python-ulid's strings, in time order."""

from __future__ import annotations

import random

from ulid import ULID

from opencode_api.actors._ids import _encode, new_id


def test_the_encoding_is_ulids() -> None:
    rng = random.Random(7)
    values = [0, 1, 2**128 - 1, *(rng.getrandbits(rng.randint(1, 128)) for _ in range(5000))]
    for value in values:
        assert _encode(value) == str(ULID.from_int(value))


def test_ids_are_prefixed_unique_and_increasing() -> None:
    ids = [new_id("msg") for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i.startswith("msg_") and len(i) == 30 for i in ids)
    assert ULID.from_str(ids[0][4:]).timestamp > 1.7e9
