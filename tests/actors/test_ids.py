"""Ids: the hand-written ULID encoding gives python-ulid's strings, in time order."""

from __future__ import annotations

import os
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


def test_a_forked_child_does_not_reuse_the_parents_random_bytes() -> None:
    new_id("x")  # the parent holds unused random bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out
        os.write(write, new_id("x").encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    parent = new_id("x")
    # The random part (the last 16 characters) differs: the child read its own bytes.
    assert child[-16:] != parent[-16:]
