"""The collector settings a serving process (server, worker, Ray shard) applies once loaded."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from opencode_api._heap import GC_THRESHOLDS, settle_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_settle_heap_freezes_what_is_loaded_and_raises_the_thresholds() -> None:
    loaded = [object() for _ in range(10)]

    settle_heap()

    assert gc.get_freeze_count() >= len(loaded)
    assert gc.get_threshold() == GC_THRESHOLDS
