"""A real multi-node Ray cluster on loopback (issue 33): a node lost mid-batch loses nothing.

``ray.cluster_utils.Cluster`` starts a head and a second node, one CPU each, both bound to 127.0.0.1;
``nst batch --ray ADDRESS`` runs as a user runs it, in its own process.  Once two results are on disk
the second node is removed, as a preempted machine would be.  Every item must still be written, byte
for byte as the one-process run (both with one TensorFlow thread per worker), and the summary must
name the retried item.  Slow: two Ray nodes and two TensorFlow workers start on two cores.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nst.io import images

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ITEMS, SIDE = 16, 320  # enough work that the batch is still running when the node goes


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample_pair):
    from nst.weights import fetch as weights_fetch

    weights_fetch.ensure_fast_weights()
    folder = tmp_path_factory.mktemp("cluster")
    content, style = (images.read_rgb(path) for path in sample_pair)
    (folder / "in").mkdir()
    for index in range(ITEMS):
        crop = content[index * 8:, index * 12:]
        height, width = images.size_for_long_side(*crop.shape[:2], SIDE)
        images.save_rgb(folder / "in" / f"img{index:02d}.png", images.resize(crop, width, height))
    height, width = images.size_for_long_side(*style.shape[:2], SIDE)
    images.save_rgb(folder / "style.png", images.resize(style, width, height))
    return folder


def _batch(inputs, out, *extra):
    command = [sys.executable, "-m", "nst", "batch", str(inputs / "in"), str(inputs / "style.png"), "-o", str(out),
               "--method", "fast", "--size", "0", "--threads", "1", "-q", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"})


def _outputs(folder):
    return {path.name: path.read_bytes() for path in sorted(Path(folder).glob("img*.png"))}


def _wait_for_two_results(process, out) -> None:
    """Until two results are on disk (the work is under way); the batch must still be running then."""
    while process.poll() is None and len(list(out.glob("img*.png"))) < 2:
        time.sleep(0.2)
    if process.poll() is not None:
        pytest.fail(f"the batch ended (exit {process.returncode}) before a node could be removed: "
                    f"{process.communicate()[1][-2000:]}")


def _summary(stdout):
    return json.loads(stdout[stdout.index("{\n"):])


@pytest.fixture(scope="module")
def one_process(inputs):
    process = _batch(inputs, inputs / "local")
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    return _outputs(inputs / "local")


def test_a_node_lost_mid_batch_loses_nothing(inputs, one_process, cluster, tmp_path):
    head, second = cluster
    out = tmp_path / "out"
    process = _batch(inputs, out, "--ray", head.address, "--workers", "2")
    _wait_for_two_results(process, out)
    head.remove_node(second, allow_graceful=False)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    summary = _summary(stdout)
    assert summary["written"] == ITEMS and not summary["failed"]
    assert _outputs(out) == one_process  # byte for byte, the retried items included
    assert summary["retried"] and all(entry["attempts"] >= 2 and entry["workers_lost"] >= 1
                                      for entry in summary["retried"])
    lost = [worker for worker in summary["per_worker"] if worker["lost"] or worker["restarts"]]
    assert len(lost) == 1, summary["per_worker"]  # the worker of the removed node, and only it


@pytest.fixture
def head_without_cpus():
    """A head that runs the driver only (no CPU for workers) and one worker node of one CPU."""
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    loopback = {"node_ip_address": "127.0.0.1", "include_dashboard": False}
    head = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **loopback})
    try:
        yield head, head.add_node(num_cpus=1, **loopback), loopback
    finally:
        head.shutdown()


def test_every_worker_lost_ends_the_batch_and_a_rerun_finishes_it(inputs, one_process, head_without_cpus, tmp_path):
    head, node, loopback = head_without_cpus
    head.wait_for_nodes()
    out = tmp_path / "out"
    process = _batch(inputs, out, "--ray", head.address, "--workers", "1", "--ray-timeout", "90")
    _wait_for_two_results(process, out)
    head.remove_node(node, allow_graceful=False)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 1
    summary = _summary(stdout)
    written = summary["written"]
    assert 2 <= written < ITEMS and len(summary["failed"]) == ITEMS - written
    # Ray gives up a worker whose node is gone at once here; on a cluster still looking for room the
    # pool would wait --ray-timeout seconds for one to come back.
    reasons = {item["error"] for item in summary["failed"]}
    assert len(reasons) == 1 and reasons.pop().startswith("every Ray worker was lost and ")
    failures = [line for line in stderr.splitlines() if line.startswith(("failed:", "error:"))]
    assert len(failures) == 3 and failures[1] == f"failed: {ITEMS - written - 1} more with the same error"
    assert failures[2].startswith(f"error: {ITEMS - written} of {ITEMS} images failed")
    done = _outputs(out)
    assert len(done) == written and all(one_process[name] == data for name, data in done.items())

    head.add_node(num_cpus=1, **loopback)  # a new machine joins: the rerun does what is left
    head.wait_for_nodes()
    process = _batch(inputs, out, "--ray", head.address, "--workers", "1")
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    summary = _summary(stdout)
    assert summary["skipped"] == written and summary["written"] == ITEMS - written
    assert _outputs(out) == one_process
