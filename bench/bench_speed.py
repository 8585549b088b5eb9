#!/usr/bin/env python3
"""Seconds per Adam iteration, GFLOP/s and ratios, measured side by side.

    python bench/bench_speed.py                 # 400x300 and 512x384, all paths
    python bench/bench_speed.py --smoke         # seconds: tiny size, one round (CI)

Each path runs in its own process (the eager NST class cannot share a process
with graph-mode code), alternated round by round so that a busy machine slows
them alike; the figure per path is the median over rounds of each round's
median step time, after warm-up.  Paths:

* ``course``: the notebook's graph (``nst_utils`` + ``nst.classroom.course``, Adam 2.0);
* ``engine``: the command line's engine (``nst.optimise.stylize``), Adam;
* ``eager``: the eager ``NST`` class's ``tf.function`` step (second course;
  content layer conv5_2, so its FLOP count is a little higher);
* ``torch``: a plain PyTorch CPU port of the same costs (optional);
* peak: float32 4096x4096 matrix products three ways -- TensorFlow with its
  default kernels (Eigen on CPUs where oneDNN is off by default, such as AMD),
  TensorFlow with oneDNN (``TF_ENABLE_ONEDNN_OPTS=1``) and NumPy's BLAS sgemm;
  the fastest is the machine's measured peak.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PATHS = ("course", "engine", "eager", "torch")
MATMUL_N = 4096
# name -> (worker, extra environment); the peak is the fastest of them.
PEAK_PROBES = {"TensorFlow matmul (default kernels)": ("matmul", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
               "TensorFlow matmul (oneDNN)": ("matmul", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
               "NumPy sgemm": ("sgemm", {})}


def _images(height, width):
    from nst.io import images

    content = images.resize(images.read_rgb(images.fetch_sample("tubingen.jpg")), width, height)
    style = images.resize(images.read_rgb(images.fetch_sample("starry_night.jpg")), width, height)
    return content, style


def _time_steps(step, warmup, repeats):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def worker_course(height, width, warmup, repeats):
    import numpy as np

    import nst_utils  # the course's process: graph mode, as in the notebook
    from nst.classroom import course

    content, style = _images(height, width)
    content_n = nst_utils.reshape_and_normalize_image(content)
    with course.course_session() as sess:
        recipe = course.build_course_graph(sess, content_n, nst_utils.reshape_and_normalize_image(style))
        np.random.seed(1)
        recipe.start_from(sess, nst_utils.generate_noise_image(content_n))
        return _time_steps(lambda: sess.run(recipe.train_step), warmup, repeats)


def worker_engine(height, width, warmup, repeats):
    """Seconds per Adam step of the engine's own loop (a Stylizer run at one scale), from its history."""
    from nst.optimise import stylize

    content, style = _images(height, width)
    warmup = max(1, warmup)  # the first step's time includes building the graph
    settings = stylize.Settings(optimizer="adam", size=max(height, width), multiscale=False,
                                iterations=warmup + repeats, seed=0)
    with stylize.Stylizer(settings) as stylizer:
        elapsed = [row.elapsed for row in stylizer.run(content, [style]).history]
    # Row i holds the costs fetched with step i + 1, so step i + 1 took elapsed[i] - elapsed[i - 1].
    return [after - before for before, after in zip(elapsed[warmup - 1:warmup + repeats - 1],
                                                    elapsed[warmup:warmup + repeats])]


def worker_eager(height, width, warmup, repeats):
    import tensorflow as tf

    import neural_style

    content, style = _images(height, width)

    class Sized(neural_style.NST):
        @staticmethod
        def scale_image(image):
            return neural_style._resize_long_side(image, max(height, width))

    nst = Sized(style, content)
    nst.generate_image(iterations=1)  # traces the step
    hyper = [tf.constant(x) for x in (0.01, 0.9, 0.99)]
    return _time_steps(lambda: float(nst._step_function(*hyper)[0]), warmup, repeats)


def worker_torch(height, width, warmup, repeats):
    from nst.weights.load import default_weights_path
    from torch_reference import TorchProblem

    content, style = _images(height, width)
    problem = TorchProblem(default_weights_path(), content, style)
    return _time_steps(problem.step, warmup, repeats)


def worker_sgemm(height, width, warmup, repeats):
    import numpy as np

    a = np.random.default_rng(0).standard_normal((MATMUL_N, MATMUL_N), dtype=np.float32)
    return _time_steps(lambda: a @ a, warmup, repeats)


def worker_matmul(height, width, warmup, repeats):
    import tensorflow as tf

    n = MATMUL_N
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        a = tf.Variable(tf.random.normal([n, n]))
        product = tf.reduce_sum(tf.matmul(a, a))
        sess.run(tf.compat.v1.global_variables_initializer())
        times = _time_steps(lambda: sess.run(product), warmup, repeats)
    return times


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    except OSError:
        names = []
    return f"{names[0] if names else 'unknown CPU'}, {os.cpu_count()} cores"


def run_worker(path, height, width, warmup, repeats, env=None):
    """One path in a fresh process; returns its step times, or None if it cannot run here."""
    command = [sys.executable, __file__, "--worker", path, "--size", f"{width}x{height}",
               "--warmup", str(warmup), "--repeats", str(repeats)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return None, reason
    return json.loads(lines[-1])["times"], ""


def measured_peaks(args) -> tuple:
    """({probe: GFLOP/s}, the best of them or None): the matrix-product rate the paths are compared with."""
    peaks = {}
    for name, (worker, env) in PEAK_PROBES.items():
        times, reason = run_worker(worker, 0, 0, args.warmup, args.repeats, env)
        if times:
            peaks[name] = 2 * MATMUL_N ** 3 / statistics.median(times) / 1e9
        print(f"{name}, {MATMUL_N}x{MATMUL_N} float32: "
              + (f"{peaks[name]:.1f} GFLOP/s" if times else f"skipped: {reason}"))
    peak = max(peaks.values(), default=None)
    if peak:
        print(f"measured peak: {peak:.1f} GFLOP/s ({max(peaks, key=peaks.get)})")
    return peaks, peak


def measure_size(size: str, paths: list, args, peak) -> tuple:
    """({"flops", "paths"} for one WxH size, how many of our own paths failed to run), printed as it goes."""
    from flops import iteration_flops

    width, height = (int(x) for x in size.split("x"))
    flops = iteration_flops(height, width)
    # The eager class also runs conv5_2 (its content layer): one more 512->512 conv forward and backward.
    conv5 = 2 * (-(-height // 16)) * (-(-width // 16)) * 512 * 512 * 9
    eager_flops = flops["total"] + 2 * conv5
    print(f"\n{width}x{height}: {flops['total'] / 1e9:.1f} GFLOP per iteration "
          f"(conv forward {flops['conv_forward'] / 1e9:.1f} + conv input gradient "
          f"{flops['conv_input_gradient'] / 1e9:.1f} + Gram {flops['gram'] / 1e9:.1f}; see bench/flops.py)")
    medians, reasons = {p: [] for p in paths}, {}
    for _ in range(args.rounds):
        for path in paths:
            times, reason = run_worker(path, height, width, args.warmup, args.repeats)
            if times is None:
                reasons[path] = reason
            else:
                medians[path].append(statistics.median(times))
    figures, failures = {}, 0
    for path in paths:
        if not medians[path]:
            print(f"  {path:7s} skipped: {reasons.get(path)}")
            failures += path != "torch"  # torch is optional; our own paths must run
            continue
        seconds = statistics.median(medians[path])
        gflops = (eager_flops if path == "eager" else flops["total"]) / seconds / 1e9
        figures[path] = {"s_per_iter": seconds, "gflops": gflops, "rounds": medians[path]}
        of_peak = f", {gflops / peak:.0%} of measured peak" if peak else ""
        print(f"  {path:7s} {seconds:.3f} s/iter  {gflops:6.1f} GFLOP/s{of_peak}  "
              f"(round medians {', '.join(f'{m:.3f}' for m in medians[path])})")
    if "torch" in figures:
        for path in ("course", "engine", "eager"):
            if path in figures:
                print(f"  {path} / torch time ratio: {figures[path]['s_per_iter'] / figures['torch']['s_per_iter']:.2f}")
    return {"flops": flops, "paths": figures}, failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=PATHS + ("matmul", "sgemm"), help=argparse.SUPPRESS)
    parser.add_argument("--size", action="append", help="WxH (repeatable; default 400x300 and 512x384)")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset of " + ",".join(PATHS))
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per round")
    parser.add_argument("--smoke", action="store_true", help="tiny size, one round, one step: checks it runs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    sizes = args.size or (["64x48"] if args.smoke else ["400x300", "512x384"])
    if args.smoke:
        args.rounds, args.warmup, args.repeats = 1, 1, 1
    if args.worker:
        width, height = (int(x) for x in sizes[0].split("x"))
        times = globals()["worker_" + args.worker](height, width, args.warmup, args.repeats)
        print(json.dumps({"times": times}))
        return 0

    paths = [p for p in args.paths.split(",") if p]
    report = {"machine": cpu_model(), "date": time.strftime("%Y-%m-%d"),
              "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
              "sizes": {}}
    print(f"machine: {report['machine']}")
    peaks, peak = measured_peaks(args)
    report["peaks_gflops"], report["matmul_gflops"] = peaks, peak
    failures = 0
    for size in sizes:
        report["sizes"][size], failed = measure_size(size, paths, args, peak)
        failures += failed
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
