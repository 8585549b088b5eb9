"""`nst batch`: the work pool (one process and Ray), the manifest, the one-line refusals.

The Ray tests start a real local Ray instance (`ray.init(num_cpus=2)`) and run
the fast method on 6 small images.  Both runs that are compared use one
TensorFlow thread per worker: with Eigen's kernels the last bits of a result
depend on the thread count.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nst.commands import batch as batch_cli
from nst.io import images
from nst.parallel import pool
from nst.parallel.manifest import MANIFEST_NAME

ROOT = Path(__file__).resolve().parents[2]
SIDES = (64, 72, 80, 88, 96, 64)  # long sides of the 6 inputs


@pytest.fixture(scope="module")
def batch_inputs(tmp_path_factory, sample_pair):
    """6 small crops of the sample content and a 96 px style image."""
    from nst.weights import fetch as weights_fetch

    weights_fetch.ensure_fast_weights()
    folder = tmp_path_factory.mktemp("batch")
    content, style = (images.read_rgb(path) for path in sample_pair)
    (folder / "in").mkdir()
    for index, side in enumerate(SIDES):
        crop = content[index * 40:, index * 30:]
        height, width = images.size_for_long_side(*crop.shape[:2], side)
        images.save_rgb(folder / "in" / f"img{index}.png", images.resize(crop, width, height))
    height, width = images.size_for_long_side(*style.shape[:2], 96)
    images.save_rgb(folder / "style.png", images.resize(style, width, height))
    return folder


def _fast_args(folder, out, *extra):
    return [str(folder / "in"), str(folder / "style.png"), "-o", str(out), "--method", "fast", "--size", "0",
            "--threads", "1", "-q", *extra]


@pytest.fixture(scope="module")
def one_process_run(batch_inputs):
    """The default pool, in its own process (this one's TensorFlow may already run with other threads)."""
    out = batch_inputs / "local"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "nst", "batch", *_fast_args(batch_inputs, out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return out, json.loads(done.stdout)


def _outputs(folder):
    return {path.name: path.read_bytes() for path in sorted(Path(folder).glob("img*.png"))}


def test_one_process_run_writes_every_item_and_a_manifest(one_process_run, batch_inputs):
    out, summary = one_process_run
    assert summary["pool"] == "local" and summary["written"] == 6 and not summary["failed"]
    assert sorted(_outputs(out)) == [f"img{i}.png" for i in range(6)]
    for index, side in enumerate(SIDES):  # --size 0: each output at its input's own size
        assert max(images.read_rgb(out / f"img{index}.png").shape[:2]) == side
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(manifest["items"]) == sorted(_outputs(out))
    assert (out / batch_cli.SUMMARY_NAME).is_file()


def test_second_run_skips_every_item(one_process_run, batch_inputs, capsys):
    out, _ = one_process_run
    before = {path.name: path.stat().st_mtime_ns for path in out.glob("img*.png")}
    assert batch_cli.main(_fast_args(batch_inputs, out)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped"] == 6 and summary["written"] == 0 and summary["pool"] is None
    assert {path.name: path.stat().st_mtime_ns for path in out.glob("img*.png")} == before


def test_changed_setting_is_refused_without_overwrite(one_process_run, batch_inputs, capsys):
    out, _ = one_process_run
    before = _outputs(out)
    assert batch_cli.main(_fast_args(batch_inputs, out, "--alpha", "0.5")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "alpha" in err and "--overwrite" in err
    assert _outputs(out) == before


def test_optimise_method_runs_each_item_with_its_own_recorded_seed(batch_inputs, tmp_path, capsys):
    out = tmp_path / "optimise"
    argv = [str(batch_inputs / "in" / "img0.png"), str(batch_inputs / "in" / "img1.png"),
            str(batch_inputs / "style.png"), "-o", str(out), "--size", "32", "--iterations", "2",
            "--no-multiscale", "-q"]
    assert batch_cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "optimise" and summary["written"] == 2
    entries = json.loads((out / MANIFEST_NAME).read_text())["items"]
    assert sorted(entries) == ["img0.png", "img1.png"]
    for name, entry in entries.items():
        assert entry["steps"] == 2 and isinstance(entry["seed"], int)
        assert max(images.read_rgb(out / name).shape[:2]) == 32


def _one_line_refusal(capsys, argv):
    assert batch_cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ") and captured.err.count("\n") == 1
    return captured.err


def test_bad_inputs_get_one_line_and_exit_2(batch_inputs, tmp_path, capsys):
    style = str(batch_inputs / "style.png")
    out = tmp_path / "out"
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "a_file").write_text("x")
    cases = {
        "not found": [str(tmp_path / "missing.jpg"), style, "-o", str(out)],
        "holds no images": [str(tmp_path / "empty"), style, "-o", str(out)],
        "matches": [str(tmp_path / "*.jpeg"), style, "-o", str(out)],
        "not an image": [str(tmp_path / "notes.png"), style, "-o", str(out)],
        "is a file": [str(batch_inputs / "in"), style, "-o", str(tmp_path / "a_file")],
        "needs --ray": [str(batch_inputs / "in"), style, "-o", str(out), "--workers", "2"],
        "fast only": [str(batch_inputs / "in"), style, "-o", str(out), "--alpha", "0.5"],
        "one-image command": [str(batch_inputs / "in"), style, "-o", str(out), "--gif"],
        # Its own input folder as the output folder: refused whatever the inputs' names (see test_hostile_outputs).
        "is also where the inputs": [str(batch_inputs / "in"), style, "-o", str(batch_inputs / "in"), "--method",
                                     "fast"],
        "is one of the inputs": [str(batch_inputs / "in" / "img0.png"), style, "-o", str(batch_inputs / "in"),
                                 "--method", "fast"],
    }
    for expected, argv in cases.items():
        assert expected in _one_line_refusal(capsys, argv), expected
    assert not out.exists()


def test_ray_missing_is_one_line_with_the_install_command(batch_inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if not installed
    err = _one_line_refusal(capsys, _fast_args(batch_inputs, tmp_path / "out", "--ray"))
    assert "pip install nst[ray]" in err


def test_ray_address_where_nothing_listens_is_refused_within_seconds(batch_inputs, tmp_path, capsys):
    """Issue 33: Ray's own connect to a closed port waited over 200 s (measured) before failing."""
    import socket
    import time

    with socket.socket() as probe:  # a port that was free a moment ago, on loopback only
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    err = _one_line_refusal(capsys, _fast_args(batch_inputs, tmp_path / "out", "--ray", f"127.0.0.1:{port}"))
    assert time.monotonic() - started < 30
    assert f"nothing answers at 127.0.0.1:{port}" in err and f"ray start --head --port {port}" in err
    assert not list((tmp_path / "out").glob("*.png"))  # no image was written
    err = _one_line_refusal(capsys, _fast_args(batch_inputs, tmp_path / "out", "--ray", "127.0.0.1"))
    assert "is not HOST:PORT" in err


class _ToyWork:
    """A pool work without networks: doubles a number; "bad" always fails, "flaky" fails once."""

    def load(self, threads=None):
        tries = {}

        def run(payload):
            tries[payload] = tries.get(payload, 0) + 1
            if payload == "bad" or (payload == "flaky" and tries[payload] == 1):
                raise ValueError(f"{payload}\nsecond line")
            return payload * 2

        return run


def test_local_pool_retries_once_and_reports_an_item_that_fails_twice():
    items = [(name, lambda name=name: name) for name in ("a", "bad", "flaky", "b")]
    items.append(("unreadable", lambda: 1 / 0))
    with pool.open_pool(_ToyWork()) as local:
        outcomes = {o.key: o for o in local.results(items)}
        figures = local.workers()[0]
    assert outcomes["a"].result == "aa" and outcomes["a"].attempts == 1
    assert outcomes["flaky"].result == "flakyflaky" and outcomes["flaky"].attempts == 2
    assert outcomes["bad"].error == "bad second line" and outcomes["bad"].attempts == 2
    assert outcomes["b"].ok and not outcomes["unreadable"].ok and "division" in outcomes["unreadable"].error
    assert figures["items"] == 4 and figures["failed"] == 1


@pytest.mark.slow
def test_ray_batch_matches_one_process_and_survives_a_killed_worker(local_ray, one_process_run, batch_inputs,
                                                                    tmp_path, capsys, monkeypatch):
    original = pool.RayPool.results
    killed = []

    def results_with_a_kill(self, items):
        for outcome in original(self, items):
            if not killed:  # the other worker is still on its first item (tracing makes that one slow)
                other = 1 - int(outcome.worker.split("-")[1])
                local_ray.kill(self.actors[other], no_restart=False)
                killed.append(other)
            yield outcome

    monkeypatch.setattr(pool.RayPool, "results", results_with_a_kill)
    out = tmp_path / "ray"
    status = batch_cli.main(_fast_args(batch_inputs, out, "--ray", "--workers", "2"))
    text = capsys.readouterr().out
    summary = json.loads(text[text.index("{\n"):])  # Ray prints its note on the retry to stdout before it
    assert status == 0 and summary["pool"] == "ray" and summary["written"] == 6 and not summary["failed"]
    assert _outputs(out) == _outputs(one_process_run[0])  # byte for byte
    assert [(entry["attempts"], entry["workers_lost"]) for entry in summary["retried"]] == [(2, 1)]
    # The killed worker came back (Ray restarted it) or was still starting again when the batch ended.
    killed_figures = summary["per_worker"][killed[0]]
    assert killed_figures["restarts"] + killed_figures["lost"] == 1
    assert sum(worker["restarts"] + worker["lost"] for worker in summary["per_worker"]) == 1
    assert sum(worker["items"] for worker in summary["per_worker"]) == 6


class _ResultLost:
    """Ray as the pool sees it, except that fetching a result fails as it does when the node holding the
    result died between the task's end and the fetch (ObjectLostError and its kind)."""

    def __init__(self, ray):
        self._real = ray

    def __getattr__(self, name):
        return getattr(self._real, name)

    def get(self, ref, *args, **kwargs):
        raise self._real.exceptions.ObjectReconstructionFailedError(ref.hex(), None, "")


@pytest.mark.slow
def test_ray_batch_retries_an_item_whose_result_was_lost(local_ray, one_process_run, batch_inputs, tmp_path, capsys,
                                                         monkeypatch):
    """The window no node-loss test can hit on purpose: the result lost, not the worker.  The item is tried
    again and the batch ends as the one-process run does."""
    original, lost = pool.RayPool._collect, []

    def collect_losing_the_first(self, flight, ref):
        if lost:
            return original(self, flight, ref)
        lost.append(flight.key)
        real, self._ray = self._ray, _ResultLost(self._ray)
        try:
            return original(self, flight, ref)
        finally:
            self._ray = real

    monkeypatch.setattr(pool.RayPool, "_collect", collect_losing_the_first)
    out = tmp_path / "ray"
    status = batch_cli.main(_fast_args(batch_inputs, out, "--ray", "--workers", "2"))
    text = capsys.readouterr().out
    summary = json.loads(text[text.index("{\n"):])
    assert status == 0 and summary["written"] == 6 and not summary["failed"]
    assert _outputs(out) == _outputs(one_process_run[0])
    assert [(entry["attempts"], entry["workers_lost"]) for entry in summary["retried"]] == [(2, 1)]


def test_optimise_batch_refuses_an_image_too_large_for_memory_before_loading(batch_inputs, tmp_path, capsys,
                                                                             monkeypatch):
    """The one-image command's memory check, per input, before any network is loaded or output made."""
    from nst.host import budget

    monkeypatch.setattr(budget, "available_bytes", lambda: 3584 * 2 ** 20)  # 3.5 GiB free
    monkeypatch.setattr(pool, "open_pool", lambda *a, **k: pytest.fail("the pool was opened"))
    out = tmp_path / "out"
    wide, square = tmp_path / "wide.png", tmp_path / "square.png"
    images.save_rgb(wide, np.zeros((64, 128, 3), np.uint8))
    images.save_rgb(square, np.zeros((64, 64, 3), np.uint8))
    # nst.host.budget's model in tiles of 256 px: 1600 MiB, 384 bytes a pixel of the picture, 4.6 KiB a pixel of
    # one tile's box (256 + 16 slack + 2x80 margin = 432 px a side), 16 bytes a pixel of the style image held
    # whole (96x60 scaled to 2400x1500, 0.625 of a square picture): at --size 2400, 2400x1200 needs 3.46 GiB,
    # 2400x2400 4.49 GiB; the largest square that fits in 3.5 GiB is about 1746 px (worked out by hand).
    common = [str(batch_inputs / "style.png"), "-o", str(out), "--size", "2400", "--no-multiscale"]
    err = _one_line_refusal(capsys, [str(wide), str(square), *common])
    assert "input square.png" in err and "2400 px" in err and "largest --size that fits is about 174" in err, err
    assert not out.exists()
    fitting = batch_cli.build_batch_parser().parse_args([str(wide), *common])
    assert len(batch_cli.plan(fitting, pytest.fail)[0].todo) == 1  # the wide one alone fits
