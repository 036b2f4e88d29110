"""A Ray cluster on loopback (a head and two worker nodes) for the sharded runtime's tests.

Ray is the ``ray`` extra (the dev extra installs it); without it these tests skip, except under
CI=true where a skip is a failure (``.ci/run`` installs everything).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from opencode_api.testing import FakeLLMServer

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # stay on 127.0.0.1
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report over the network

try:
    import ray
    from ray.cluster_utils import Cluster
except ImportError:  # pragma: no cover - the dev extra installs ray
    ray = None

# A lost node is noticed in ~2 s instead of the defaults' >10 s.
_SYSTEM_CONFIG = {
    "health_check_initial_delay_ms": 500,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 2,
}


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    if ray is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ray is not installed (pip install -e '.[dev]')")
        pytest.skip("ray is not installed (pip install -e '.[dev]')")
    node = {"node_ip_address": "127.0.0.1", "include_dashboard": False}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**node, "num_cpus": 1, "_system_config": _SYSTEM_CONFIG},
    )
    workers = [cluster.add_node(**node, num_cpus=1) for _ in range(2)]
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    cluster.worker_nodes_for_tests = workers  # type: ignore[attr-defined]
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLMServer]:
    # Reached over HTTP from the shards' processes, as a real provider would be.
    async with FakeLLMServer(tokens=5) as server:
        yield server
