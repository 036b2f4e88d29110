"""The garbage collector's settings for a long-lived serving process (a server, a worker, a
Ray shard), applied once everything it needs at start-up is loaded."""

from __future__ import annotations

import gc

# After the freeze the default thresholds (700, 10, 10) ran ~570 young, ~50 middle and a few
# full collections per 1,000 turns (0.7-1.0 ms of CPU per turn). A turn allocates tens of
# thousands of short-lived objects that reference counting frees anyway: collecting young
# objects every 50,000 allocations and rarely promoting keeps the cycle collector for real
# cycles (BENCHMARKS.md, "Per-turn cost: statements, titles, JSON, GC").
GC_THRESHOLDS = (50_000, 20, 100)


def settle_heap() -> None:
    """Freeze what is loaded and raise the collector's thresholds.

    Everything loaded at start-up (LiteLLM's modules and model map: ~300 MB of objects; in a Ray
    shard, Ray's own) lives as long as the process; frozen, the collector stops scanning it in
    every full collection (measured: the pauses were a visible share of a loaded server's CPU).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
