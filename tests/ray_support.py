"""A two-node Ray cluster on this machine for the distributed-run tests, on loopback only.

Each node has one CPU and the smallest object store Ray accepts; health checks are fast so a removed
node is noticed within about a second. The cluster keeps its files in a temporary folder of its own and is
stopped with its own ``shutdown`` (never ``ray stop``, which kills every Ray process on the host).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FAST_HEALTH_CHECKS = {
    "RAY_health_check_period_ms": "200",
    "RAY_health_check_timeout_ms": "300",
    "RAY_health_check_failure_threshold": "3",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # every address stays 127.0.0.1 (nothing leaves this host)
}
OBJECT_STORE_BYTES = 80 * 1024 * 1024  # Ray's minimum is 75 MiB
# Ray's health_check_initial_delay_ms (5000 by default): a node is not checked at all until it has
# been up this long, so one killed sooner is noticed only seconds later (by the GCS's reconnects)
HEALTH_CHECKS_START_S = 5.0
WORKER_NODE_STARTED: dict[str, float] = {}  # node id -> time.monotonic() when it had joined


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A head and one worker node, one CPU each; this process is connected to it as a driver."""
    os.environ.update(FAST_HEALTH_CHECKS)  # before Ray is imported: it reads them once
    import ray
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES, "node_ip_address": "127.0.0.1"}
    with tempfile.TemporaryDirectory(prefix="sp-ray-") as temp_dir:  # short: unix socket paths
        cluster = Cluster(
            initialize_head=True, head_node_args={**node, "include_dashboard": False, "temp_dir": temp_dir}
        )
        try:
            worker = cluster.add_node(**node)
            cluster.wait_for_nodes()
            WORKER_NODE_STARTED[worker.node_id] = time.monotonic()
            ray.init(address=cluster.address, include_dashboard=False)
            yield cluster
        finally:
            ray.shutdown()
            cluster.shutdown()


def wait_for_health_checks(node_id: str) -> None:
    """Until the GCS health-checks the node, as it does every node of a cluster that has run a
    while (the failover tests measure that case; the suite's earlier tests usually cover the wait)."""
    time.sleep(max(0.0, WORKER_NODE_STARTED[node_id] + HEALTH_CHECKS_START_S - time.monotonic()))


def without_wall_time(value: Any) -> Any:
    """A record with every ``wall_time`` removed: the only field two runs of one file differ in."""
    if isinstance(value, dict):
        return {key: without_wall_time(item) for key, item in value.items() if key != "wall_time"}
    if isinstance(value, list):
        return [without_wall_time(item) for item in value]
    return value


def records(path: Path) -> list[dict[str, Any]]:
    """Frame and event records in order, then the source's state changes (written from another
    thread: their place among the frames varies from run to run) sorted. A closing summary record
    keeps its counts per sink, not the sinks' names (they name the output path, which differs
    between the runs compared)."""
    found = [_counts_only(without_wall_time(json.loads(line))) for line in path.read_text().splitlines()]
    states = sorted((r for r in found if r["type"] == "status"), key=lambda r: json.dumps(r, sort_keys=True))
    return [r for r in found if r["type"] != "status"] + states


def _counts_only(record: dict[str, Any]) -> dict[str, Any]:
    if record["type"] != "summary":
        return record
    return {**record, "sinks": sorted(record["sinks"].values(), key=lambda counts: json.dumps(counts))}
