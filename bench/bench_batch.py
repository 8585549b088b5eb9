"""Batch throughput: the one-process pool against Ray with 1 and 2 workers, and Ray's overhead per item.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_batch.py [--size 256] [--items 8]
    PYTHONPATH=$PWD .venv/bin/python bench/bench_batch.py --video [--size 256] [--items 24]

    PYTHONPATH=$PWD .venv/bin/python bench/bench_batch.py --driver [--size 512] [--items 40]
    PYTHONPATH=$PWD .venv/bin/python bench/bench_batch.py --nodes 1 2 3 [--size 512] [--items 12]

``--video`` measures ``nst video`` instead: frames per second of the one-process
default against ``--ray --workers 1`` and ``--workers 2``, with independent frames
(a frame per item) and with consistency (segments of 8 frames, 4 shared); see
:func:`video_main`.

``--driver`` measures what one driver can feed: ``nst batch`` with the stylisation
replaced by a work that costs nothing, so every second is the driver's own (decode
each JPEG input, resize it, write the PNG bytes a worker would send, hash them,
rewrite the manifest); see :func:`driver_main`.  ``--nodes`` starts a real Ray
cluster on 127.0.0.1 with that many nodes of one CPU each and runs ``nst batch
--ray ADDRESS --workers N`` on it as a user would, beside the throughput model of
docs/SCALING.md; see :func:`nodes_main`.

All in one run, side by side, with the fast method on ``--items`` crops of the
sample content (``--size`` px squares, so every item costs the same).  Each pool
first runs one item per worker (TensorFlow traces its functions then), then the
timed items; throughput is timed items over the time they took.  Ray's overhead
per item is measured twice: inside the stylising runs (time from handing an item
over to having its result, minus the time the worker spent on it) and with a work
that returns its input at once (the bare cost of sending an image and back).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fast import cpu_description  # noqa: E402


class EchoWork:
    """Returns its payload: what is left is Ray's cost of moving an item there and back."""

    def load(self, threads=None):
        return lambda payload: payload


def _items(size: int, count: int):
    from nst.io import images

    content = images.read_rgb(images.fetch_sample("tubingen.jpg"))
    style = images.resize(images.read_rgb(images.fetch_sample("starry_night.jpg")), size, size)
    crops = []
    for index in range(count):
        top, left = (index * 37) % (content.shape[0] // 3), (index * 53) % (content.shape[1] // 3)
        side = min(content.shape[0] - top, content.shape[1] - left)
        crops.append(images.resize(content[top:top + side, left:left + side], size, size))
    return crops, style


def _measure(make_pool, crops, warmup: int) -> dict:
    started = time.perf_counter()
    pool = make_pool()
    loaded = time.perf_counter() - started
    with pool:
        list(pool.results([(f"warm{i}", lambda c=crops[0]: c) for i in range(warmup)]))
        before = {w["name"]: (w["items"], w["compute_s"], w["mean_overhead_s"] or 0.0) for w in pool.workers()}
        started = time.perf_counter()
        outcomes = list(pool.results([(f"item{i}", lambda c=crop: c) for i, crop in enumerate(crops)]))
        wall = time.perf_counter() - started
        overheads = [o.latency_s - o.compute_s for o in outcomes]
        per_worker = {w["name"]: w["items"] - before[w["name"]][0] for w in pool.workers()}
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    return {"start_s": loaded, "wall_s": wall, "throughput": len(crops) / wall,
            "compute_s": sum(o.compute_s for o in outcomes) / len(outcomes),
            "overhead_ms": 1000 * sum(overheads) / len(overheads), "per_worker": per_worker}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="side of the square items (default: 256)")
    parser.add_argument("--items", type=int, default=None,
                        help="timed items per pool (default: 8; --video: 24; --driver: 40; --nodes: 12)")
    parser.add_argument("--video", action="store_true", help="measure nst video's frames/s instead")
    parser.add_argument("--driver", action="store_true",
                        help="measure the items/s one driver can prepare and write, the stylisation left out")
    parser.add_argument("--nodes", type=int, nargs="+", metavar="N",
                        help="run nst batch --ray on a local cluster of N nodes of one CPU each, for each N")
    args = parser.parse_args(argv)
    if args.video:
        return video_main(args.size, args.items or 24)
    if args.driver:
        return driver_main(args.size, args.items or 40)
    if args.nodes:
        return nodes_main(args.nodes, args.size, args.items or 12)
    args.items = args.items or 8
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import logging

    import ray

    from nst.parallel import pool
    from nst.weights import fetch as weights_fetch
    from nst.parallel.workers import FastWork

    print(f"CPU: {cpu_description()}; load average {os.getloadavg()[0]:.2f}; ray {ray.__version__}", flush=True)
    print(f"fast method, {args.items} items of {args.size}x{args.size}, one warm-up item per worker", flush=True)
    weights_fetch.ensure_fast_weights()
    crops, style = _items(args.size, args.items)
    work = FastWork([style], 1.0)
    rows = [("one process (default)", _measure(lambda: pool.LocalPool(work), crops, 1))]
    started = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    ray_start = time.perf_counter() - started
    try:
        for workers in (1, 2):
            rows.append((f"Ray, {workers} worker{'s' * (workers > 1)}",
                         _measure(lambda: pool.RayPool(work, workers), crops, workers)))
        echo = _measure(lambda: pool.RayPool(EchoWork(), 1), crops * 4, 1)
    finally:
        ray.shutdown()
    base = rows[0][1]["throughput"]
    print(f"{'pool':24} {'start s':>8} {'items/s':>8} {'vs default':>10} {'s/item in worker':>17} "
          f"{'overhead ms/item':>17}  items per worker")
    for name, row in rows:
        print(f"{name:24} {row['start_s']:8.1f} {row['throughput']:8.3f} {row['throughput'] / base:9.2f}x "
              f"{row['compute_s']:17.3f} {row['overhead_ms']:17.1f}  {row['per_worker']}")
    print(f"Ray start (ray.init, local instance): {ray_start:.1f} s; an item that does nothing, "
          f"{args.size}x{args.size} RGB there and back: {echo['overhead_ms']:.1f} ms overhead, "
          f"{1000 * echo['wall_s'] / len(crops * 4):.1f} ms per item end to end")
    return 0


# ---- the driver's limit and a local multi-node cluster (issue 33) ----------------------------------

def _jpeg_inputs(folder: Path, size: int, count: int) -> Path:
    """``count`` different JPEG crops of the sample photo at twice ``size`` (1024x768 for 512), as a
    user's photos would come: the driver decodes each and resizes it to ``size``.  Returns the style."""
    from nst.io import images

    content = images.read_rgb(images.fetch_sample("tubingen.jpg"))
    height, width = images.size_for_long_side(*content.shape[:2], 2 * size)
    photo = images.resize(content, width + 16, height + 16)  # room for 256 different crops of width x height
    (folder / "in").mkdir(parents=True)
    for index in range(count):
        top, left = index % 16, index // 16 % 16
        images.save_rgb(folder / "in" / f"photo{index:03d}.jpg", photo[top:top + height, left:left + width])
    style = images.read_rgb(images.fetch_sample("starry_night.jpg"))
    return images.save_rgb(folder / "style.png", images.resize(style, size, size))


class PresetWork:
    """A worker that costs nothing: it returns the PNG bytes of the first image it was given (encoded once),
    with that image's size, so the driver writes and hashes a real PNG of the working size."""

    def load(self, threads=None):
        from nst.io.images import encode_rgb

        made = {}

        def run(content):
            if content.shape not in made:
                made[content.shape] = encode_rgb(content)
            return made[content.shape], {"size": [content.shape[1], content.shape[0]]}

        return run


def _driver_rate(folder: Path, size: int) -> dict:
    """``nst batch`` in this process on the inputs of ``folder``, the stylisation replaced by PresetWork."""
    import json

    from nst.commands import batch
    from nst.parallel import pool

    real_open_pool = pool.open_pool
    pool.open_pool = lambda work, *args, **kwargs: pool.LocalPool(PresetWork())
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the command prints its summary
            status = batch.main([str(folder / "in"), str(folder / "style.png"), "-o", str(folder / "out"),
                                 "--method", "fast", "--size", str(size), "-q"])
    finally:
        pool.open_pool = real_open_pool
    wall = time.perf_counter() - started
    summary = json.loads((folder / "out" / batch.SUMMARY_NAME).read_text())
    assert status == 0 and summary["written"] == summary["items"], summary
    return {"items": summary["items"], "rate": summary["throughput_per_s"], "end_to_end": summary["items"] / wall}


def driver_main(size: int, count: int) -> int:
    """Items/s one driver prepares and writes at ``size`` px, the stylisation left out."""
    import tempfile

    print(f"CPU: {cpu_description()}; load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"nst batch --method fast --size {size}, {count} JPEG inputs of {2 * size} px long side, the stylisation "
          f"replaced by a work that returns a ready {size} px PNG", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        _jpeg_inputs(Path(scratch), size, count)
        row = _driver_rate(Path(scratch), size)
    print(f"driver: {row['rate']:.2f} items/s from the first item to the last ({1000 / row['rate']:.0f} ms an item: "
          f"decode, resize, write, hash, manifest); {row['end_to_end']:.2f} items/s with the command's planning "
          f"(reading and hashing every input first)")
    print(f"so one driver feeds about {row['rate']:.1f} x (s per item in a worker) workers: e.g. "
          f"{row['rate'] * 2.5:.0f} workers of 2.5 s items")
    return 0


def _local_cluster(nodes: int):
    """A Ray cluster of ``nodes`` nodes of one CPU each, all bound to 127.0.0.1 (as the tests run theirs)."""
    from ray.cluster_utils import Cluster

    loopback = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=dict(loopback))
    for _ in range(nodes - 1):
        cluster.add_node(**loopback)
    cluster.wait_for_nodes()
    return cluster


def _cluster_batch(folder: Path, size: int, nodes: int) -> dict:
    """``nst batch --ray ADDRESS --workers NODES`` (one worker of one thread a node) in its own process."""
    import json
    import subprocess

    cluster, out = _local_cluster(nodes), folder / f"out{nodes}"
    try:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "nst", "batch", str(folder / "in"), str(folder / "style.png"),
                               "-o", str(out), "--method", "fast", "--size", str(size), "--threads", "1",
                               "--ray", cluster.address, "--workers", str(nodes), "-q"],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - started
    finally:
        cluster.shutdown()
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "nst-batch-summary.json").read_text())
    workers = summary["per_worker"]
    return {"rate": summary["throughput_per_s"], "wall_s": wall, "items": summary["written"],
            "compute_s": sum(w["compute_s"] for w in workers) / summary["written"],
            "overhead_s": sum((w["mean_overhead_s"] or 0.0) * w["items"] for w in workers) / summary["written"],
            "per_worker": [w["items"] for w in workers]}


def nodes_main(node_counts: list, size: int, count: int) -> int:
    """Items/s of nst batch --ray on local clusters of 1, 2, 3 ... nodes, beside the model's prediction."""
    import tempfile

    import ray

    cores = os.cpu_count()
    print(f"CPU: {cpu_description()}; load average {os.getloadavg()[0]:.2f}; ray {ray.__version__}", flush=True)
    print(f"nst batch --method fast --size {size} --threads 1 --ray ADDRESS --workers N, {count} JPEG inputs, on a "
          f"local cluster of N nodes of 1 CPU each on 127.0.0.1", flush=True)
    if max(node_counts) > cores:
        print(f"note: this machine has {cores} cores; {max(node_counts)} nodes of one CPU each oversubscribe it "
              f"(and the driver shares the same cores), so more than {cores} nodes cannot add throughput here",
              flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        _jpeg_inputs(Path(scratch), size, count)
        driver = _driver_rate(Path(scratch), size)
        for nodes in sorted(node_counts):
            rows.append((nodes, _cluster_batch(Path(scratch), size, nodes)))
    _print_nodes(rows, driver["rate"], cores)
    return 0


def _print_nodes(rows: list, driver_rate: float, cores: int) -> None:
    """The measured rows beside docs/SCALING.md's model, min(W / (c + o), 1 / d), with c and o taken from the
    smallest cluster's run, and the same capped at this machine's cores: min(W, cores) / (c + o)."""
    base = rows[0][1]
    per_item = base["compute_s"] + base["overhead_s"]
    print(f"model inputs (from the {rows[0][0]}-node run): c = {base['compute_s']:.3f} s an item in a worker, "
          f"o = {1000 * base['overhead_s']:.1f} ms Ray overhead; driver 1/d = {driver_rate:.2f} items/s "
          f"(measured here, the stylisation left out)")
    print(f"{'nodes':>5} {'items/s':>8} {'model':>7} {'model, ' + str(cores) + ' cores':>15} {'wall s':>7} "
          f"{'s/item in worker':>17} {'overhead ms':>12}  items per worker")
    for nodes, row in rows:
        model = min(nodes / per_item, driver_rate)
        capped = min(min(nodes, cores) / per_item, driver_rate)
        print(f"{nodes:5d} {row['rate']:8.3f} {model:7.3f} {capped:15.3f} {row['wall_s']:7.1f} "
              f"{row['compute_s']:17.3f} {1000 * row['overhead_s']:12.1f}  {row['per_worker']}")
    print("items/s: the command's summary, from its first item to its last (each worker's first item, which "
          "traces the network, included); wall s: the whole command, Ray's connection and the workers' start too")


def _pan_frames(folder: Path, width: int, height: int, count: int) -> None:
    """A pan across the sample photo, 3 px a frame, as numbered PNG frames."""
    from nst.io import images

    photo = images.read_rgb(images.fetch_sample("tubingen.jpg"))
    photo = images.resize(photo, *images.size_for_long_side(*photo.shape[:2], 2 * width)[::-1])
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        images.save_rgb(folder / f"f{index:04d}.png", photo[:height, 3 * index:3 * index + width])


def _time_video(argv) -> dict:
    """Run ``nst video`` in this process; the wall time and the steady rate from the encoder's writes.

    Steady rate: frames written after the first batch of writes, over the time from that batch to
    the last write, so that starting the pool (or loading the network) is left out.
    """
    from nst.commands import video as video_cli
    from nst.video import io as video_io

    writes, real_write = [], video_io.VideoWriter.write

    def timed_write(self, frame):
        real_write(self, frame)
        writes.append(time.perf_counter())

    video_io.VideoWriter.write = timed_write
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the command prints the path it wrote
            assert video_cli.main(argv) == 0
    finally:
        video_io.VideoWriter.write = real_write
    first = [t for t in writes if t - writes[0] < 0.05]
    later = len(writes) - len(first)  # none when every frame came in one burst (two segments at once)
    steady = later / (writes[-1] - writes[0]) if later else float("nan")
    return {"wall_s": time.perf_counter() - started, "frames": len(writes), "steady": steady}


def video_main(size: int, frames: int) -> int:
    """Frames/s of nst video: the default against Ray with 1 and 2 workers, per frame and in segments."""
    import logging
    import tempfile

    import ray

    print(f"CPU: {cpu_description()}; load average {os.getloadavg()[0]:.2f}; ray {ray.__version__}", flush=True)
    width, height = size, size * 9 // 16 // 2 * 2
    print(f"nst video, fast method, {frames} frames of {width}x{height} (a pan), style The Starry Night", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        clip, style = Path(scratch) / "pan", Path(scratch) / "style.png"
        _pan_frames(clip, width, height, frames)
        from nst.io import images
        images.save_rgb(style, images.resize(images.read_rgb(images.fetch_sample("starry_night.jpg")), size, size))
        rows = []
        runs = [("default", []), ("Ray, 1 worker", ["--ray", "--workers", "1"]),
                ("Ray, 2 workers", ["--ray", "--workers", "2"])]
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        try:
            for consistency, unit in (("0", "frame"), ("0.9", "segment of 8")):
                for name, flags in runs:
                    extra = ["--segment-frames", "8"] if flags and consistency != "0" else []
                    out = Path(scratch) / f"out_{len(rows)}.mp4"
                    argv = [str(clip), str(style), "-o", str(out), "--size", "0", "--fps", "25",
                            "--consistency", consistency, "-q", *flags, *extra]
                    rows.append((f"{name}, consistency {consistency} ({unit if flags else 'one loop'})",
                                 _time_video(argv)))
        finally:
            ray.shutdown()
    print(f"{'run':50} {'wall s':>7} {'frames/s overall':>17} {'frames/s steady':>16}")
    for name, row in rows:
        print(f"{name:50} {row['wall_s']:7.1f} {row['frames'] / row['wall_s']:17.3f} {row['steady']:16.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
