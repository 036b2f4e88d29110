"""What goes wrong between a front end and a shard (``serve --ray``), told apart: the shard
raised (its own exception, unwrapped) or the shard is gone (its process or node died)."""

from __future__ import annotations

# The ``error`` of a turn whose shard went away mid-turn (it is stored as interrupted too).
INTERRUPTED = {
    "type": "interrupted",
    "message": "the process hosting this session stopped; the turn was interrupted",
}


def unwrap(exc: BaseException) -> BaseException:
    """The exception a shard raised, out of Ray's ``RayTaskError`` wrapper."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def shard_lost(exc: BaseException) -> bool:
    """The shard's process (or node) went away, as opposed to the shard raising an error."""
    import ray.exceptions

    return isinstance(exc, ray.exceptions.RayError) and not isinstance(
        exc, ray.exceptions.RayTaskError
    )
