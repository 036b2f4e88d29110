"""Shared test set-up. LiteLLM must never fetch its price map: set this before any import."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_LOG", "ERROR")

pytest_plugins = ["tests.pg_fixture"]
