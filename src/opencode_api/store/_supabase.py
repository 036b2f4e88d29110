"""placeholder until written"""
from __future__ import annotations

from typing import Any


class SupabaseStore:
    def __init__(self, url: str, key: str, **options: Any) -> None:
        raise NotImplementedError
