"""The public surface of opencode_api.runtime."""

from __future__ import annotations

import opencode_api.runtime as runtime


def test_all_is_sorted_and_lists_exactly_the_public_names() -> None:
    assert runtime.__all__ == sorted(runtime.__all__)
    public = {
        name
        for name, value in vars(runtime).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith(runtime.__name__)
    }
    # The exception root lives in the leaf module opencode_api.errors; runtime hands it on.
    assert set(runtime.__all__) == public | {"OpenCodeError"}


def test_every_runtime_error_is_an_opencode_error() -> None:
    errors = [
        getattr(runtime, name)
        for name in runtime.__all__
        if name.endswith(("Error", "Full", "Reached", "Closed", "Timeout", "Lagged"))
    ]
    assert len(errors) == 9
    assert all(issubclass(error, runtime.OpenCodeError) for error in errors)
    assert issubclass(runtime.AskTimeout, TimeoutError)
