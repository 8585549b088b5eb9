"""The real multi-node Ray cluster of the tests in this folder, on loopback only (issue 33)."""

import pytest


@pytest.fixture
def cluster():
    """A head and a second node, one CPU each, both bound to 127.0.0.1: (the head's Cluster, the second node).

    One CPU a node puts one worker of one CPU on each, so removing the second node takes exactly one worker."""
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    loopback = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    head = cluster_utils.Cluster(initialize_head=True, head_node_args=dict(loopback))
    try:
        second = head.add_node(**loopback)
        head.wait_for_nodes()
        yield head, second
    finally:
        head.shutdown()
