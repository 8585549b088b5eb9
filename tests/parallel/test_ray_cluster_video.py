"""``nst video --ray`` on a real two-node Ray cluster on loopback (issue 33): a node lost mid-run loses no frame.

The clip is a real H.264 mp4, written by the project's own ``VideoWriter`` (a pan across the sample
photo).  ``nst video --ray ADDRESS --workers 2`` runs as a user runs it, in its own process, with
its progress bar on stderr; once the bar counts a frame written, the second node is removed, as a
preempted machine would be.  The run must end with status 0, every frame encoded, and the decoded
frames equal to those of the same command in one process (``--workers 1``, no Ray; both with one
TensorFlow thread per worker, so the same bits), the retried item named on stderr.  Both units of
work: a frame per item (``--consistency 0``) and segments of frames (consistency on).
"""

import os
import re
import select
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nst.io import images
from nst.video import io as video_io

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# Under nst.fast.network.COMPILE_PAYS_FROM frames, so neither run builds the XLA graph (whose last bits
# differ from the plain one's); 512x288 frames keep the run going for seconds after the first frame (measured:
# 1 s a frame on one thread of a 2-core EPYC), time to remove a node mid-way even on a much faster machine.
FRAMES, WIDTH, HEIGHT, FPS = 24, 512, 288, 12
MODES = {"frames": ["--consistency", "0"], "segments": ["--segment-frames", "8"]}  # 24 frames: 5 segments
WAIT_S = 600  # bounds a broken run only; a slow machine takes what it needs under it


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample_pair):
    """(clip, style): the clip a pan of 4 px a frame across the sample content, the style at the frames' size."""
    from nst.weights import fetch as weights_fetch

    weights_fetch.ensure_fast_weights()
    folder = tmp_path_factory.mktemp("video_cluster")
    content, style = (images.read_rgb(path) for path in sample_pair)
    height, width = images.size_for_long_side(*content.shape[:2], 2 * WIDTH)
    content = images.resize(content, width, height)
    writer = video_io.VideoWriter(folder / "clip.mp4", WIDTH, HEIGHT, Fraction(FPS))
    for index in range(FRAMES):
        writer.write(content[:HEIGHT, 4 * index:4 * index + WIDTH])
    clip = writer.finish()
    height, width = images.size_for_long_side(*style.shape[:2], WIDTH)
    images.save_rgb(folder / "style.png", images.resize(style, width, height))
    return clip, folder / "style.png"


def _video(inputs, out, *extra):
    clip, style = inputs
    command = [sys.executable, "-m", "nst", "video", str(clip), str(style), "-o", str(out), "--method", "fast",
               "--size", "0", "--threads", "1", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"})


def _decoded(path) -> list:
    return list(video_io.read_frames(video_io.open_clip(path), WIDTH, HEIGHT))


@pytest.fixture(scope="module", params=sorted(MODES))
def one_process(request, inputs, tmp_path_factory):
    """(mode, the decoded frames of the run in one process): the pool in this process, no Ray."""
    out = tmp_path_factory.mktemp(f"one_{request.param}") / "out.mp4"
    process = _video(inputs, out, "--workers", "1", "-q", *MODES[request.param])
    _, stderr = process.communicate(timeout=WAIT_S)
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return request.param, _decoded(out)


def _read_until_written(process, frames: int) -> str:
    """Read stderr until the progress bar counts ``frames`` frames written; the run must still be going."""
    counter = re.compile(rb" (\d+)/%d " % FRAMES)
    seen, deadline = b"", time.monotonic() + WAIT_S
    while max((int(n) for n in counter.findall(seen)), default=0) < frames:
        if time.monotonic() > deadline:
            pytest.fail(f"no {frames} frames written in {WAIT_S} s: {seen.decode(errors='replace')[-2000:]}")
        if select.select([process.stderr], [], [], 1.0)[0]:
            chunk = os.read(process.stderr.fileno(), 4096)
            if not chunk:  # the run ended: nothing left to take a node from
                break
            seen += chunk
    if process.poll() is not None or max((int(n) for n in counter.findall(seen)), default=0) >= FRAMES:
        pytest.fail(f"the run ended before a node could be removed: {seen.decode(errors='replace')[-2000:]}")
    return seen.decode(errors="replace")


def test_a_node_lost_mid_video_loses_no_frame(one_process, inputs, cluster, tmp_path):
    mode, expected = one_process
    head, second = cluster
    out = tmp_path / "out.mp4"
    process = _video(inputs, out, "--ray", head.address, "--workers", "2", *MODES[mode])
    before = _read_until_written(process, 1)
    head.remove_node(second, allow_graceful=False)
    stdout, rest = process.communicate(timeout=WAIT_S)
    stderr = before + rest.decode(errors="replace")
    assert process.returncode == 0, stderr[-3000:]
    assert stdout.decode().splitlines()[-1] == str(out)  # after any note Ray prints of the lost node
    made = _decoded(out)
    assert len(made) == FRAMES == len(expected)
    for index, (mine, theirs) in enumerate(zip(made, expected)):
        # The same frames into the same encoder: decoded, the same pixels, the retried item's included.
        np.testing.assert_array_equal(mine, theirs, err_msg=f"frame {index + 1} ({mode})")
    retried = [line for line in stderr.splitlines() if line.startswith("retried: ")]
    unit = "frame " if mode == "frames" else "segment "
    assert retried and all(line.startswith(f"retried: {unit}") and "ended by its worker's loss" in line
                           for line in retried), stderr[-3000:]
    lost = [line for line in stderr.splitlines() if line.startswith("workers lost during the run: ")]
    # The worker of the removed node, and only it; Ray cannot restart it (no CPU left on the head).
    assert len(lost) == 1 and re.fullmatch(r"workers lost during the run: ray-[01] \(gone at the end\)",
                                           lost[0]), stderr[-3000:]
