"""Fixtures of the tool tests."""

from __future__ import annotations

import pytest

from tests.tools.fakes import FakeContext


@pytest.fixture
def ctx() -> FakeContext:
    return FakeContext()
