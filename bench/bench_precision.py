#!/usr/bin/env python3
"""bfloat16 against float32, side by side in one run (issue 15).

    python bench/bench_precision.py [--size 512] [--repeats 5]

Prints the CPU model and the flags that decide ``--precision auto``, then:

* the default optimisation (``nst``'s defaults, coarse to fine, ``--seed 0``) on
  tubingen x starry_night in fp32 and in bf16: wall time, the speed-up, the
  content cost and the multi-scale style costs of bench_look.py's metric, and
  how far bf16's costs are from fp32's (the issue's bound: 3%); the evaluations
  per scale, and the VGG work's GFLOP/s (bench/flops.py's count) against NumPy's
  fp32 sgemm peak measured in the same run (issue 30);
* the fast mode: the median time per image over ``--repeats`` alternating runs
  at SIZE, and the speed-up;
* the look check (issue 29) on ``--pairs`` sample pairs (bench_look's, tubingen x
  starry_night first): the chroma-burst measure of each result (:func:`chroma_burst`),
  fp32 against bf16, and the ratio (the target: bf16 at most 1.1x fp32);
* a sheet per pair, bench/out/precision/<pair>.png: fp32 | bf16 | a 4x zoom of each
  at the window where the bf16 result is worst by that measure (not a fixed place).

On a CPU without bfloat16 units (no amx_bf16 / avx512_bf16) TensorFlow
emulates bf16: the figures then show the emulation's cost, not the feature;
the issue's targets are for a host with AMX.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PAIR = ("tubingen.jpg", "starry_night.jpg")
PRECISIONS = ("fp32", "bf16")
ZOOM, CROP = 4, 96  # the sheet's zoomed crop: CROP px of the result, enlarged ZOOM times
BURST_WINDOW, BURST_BLUR = 16, 5  # the chroma-burst measure's window and its local-mean box, pixels


def chroma_burst(image: np.ndarray) -> tuple:
    """(largest BURST_WINDOW-square mean of high-frequency chroma energy, its centre (x, y)) of uint8 [h, w, 3].

    Per pixel: chroma = RGB minus the pixel's grey; its high frequencies = |chroma - its
    BURST_BLUR-square box mean|, summed over the channels.  Single-pixel specks of
    rainbow colours (issue 29's bf16 burst) score high; smooth colour and grey texture
    do not.  A painting's own strokes set the level: compare a result with its fp32 twin.
    """
    from scipy.ndimage import uniform_filter

    pixels = image.astype(np.float64)
    chroma = pixels - pixels.mean(axis=2, keepdims=True)  # [h, w, 3]
    energy = np.abs(chroma - uniform_filter(chroma, size=(BURST_BLUR, BURST_BLUR, 1))).sum(axis=2)  # [h, w]
    windows = uniform_filter(energy, size=BURST_WINDOW, mode="constant")
    y, x = np.unravel_index(np.argmax(windows), windows.shape)
    return float(windows[y, x]), (int(x), int(y))


def optimise_both(content, style, size: int, work: dict = None) -> dict:
    """{precision: (seconds, uint8 result)} for the default optimisation, fp32 first.  ``work``, if given,
    is filled with {precision: {(h, w): [evaluations, seconds in them]}} (:func:`counting_evaluations`)."""
    from nst.optimise.stylize import Settings, stylize

    runs = {}
    for name in PRECISIONS:
        with counting_evaluations() as counts:
            started = time.perf_counter()
            result = stylize(content, [style], Settings(size=size, seed=0, precision=name))
            runs[name] = (time.perf_counter() - started, result.image)
        if work is not None:
            work[name] = counts
    return runs


@contextlib.contextmanager
def counting_evaluations():
    """Within it, every cost-and-gradient evaluation of the optimisation is counted and timed by size:
    yields {(h, w): [evaluations, seconds]}."""
    from nst.optimise.graphs import Problem

    counts, evaluate = {}, Problem.evaluate

    def counted(problem, image):
        started = time.perf_counter()
        out = evaluate(problem, image)
        entry = counts.setdefault(image.shape[:2], [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - started
        return out

    Problem.evaluate = counted
    try:
        yield counts
    finally:
        Problem.evaluate = evaluate


def sgemm_peak(repeats: int = 5) -> float:
    """The best float32 GFLOP/s of NumPy's SGEMM_N-square matrix product here (bench_fast's measurement):
    the host's practical fp32 peak."""
    from bench_fast import SGEMM_N, worker_sgemm

    return 2 * SGEMM_N ** 3 / min(worker_sgemm(None, repeats)["times"]) / 1e9


def report_work(runs: dict, work: dict, peak: float) -> None:
    """The VGG work of each run (bench/flops.py: convolutions forward and back, Gram matrices) against the
    sgemm peak: its GFLOP/s over the evaluations and over the whole run, and the run's floor at the peak."""
    from flops import iteration_flops

    print(f"fp32 sgemm peak (NumPy 2048^3, best of 5, measured in this run): {peak:.0f} GFLOP/s")
    for name, counts in work.items():
        gflop = sum(n * iteration_flops(h, w)["total"] for (h, w), (n, _) in counts.items()) / 1e9
        inside = sum(seconds for _, seconds in counts.values())
        scales = ", ".join(f"{w}x{h}: {n} x {s / n:.3f} s" for (h, w), (n, s) in sorted(counts.items()))
        print(f"{name}: evaluations {scales}; VGG work {gflop:.0f} GFLOP; {gflop / inside:.0f} GFLOP/s over the "
              f"evaluations ({gflop / inside / peak:.0%} of the sgemm peak), {gflop / runs[name][0]:.0f} GFLOP/s "
              f"over the run; at the fp32 peak the work alone takes {gflop / peak:.1f} s")


def fast_both(content, style, size: int, repeats: int) -> dict:
    """{precision: median seconds per image} of the fast mode, runs alternating between the two."""
    from nst.fast.stylizer import FastStylizer
    from nst.io.images import resize, size_for_long_side

    h, w = size_for_long_side(*content.shape[:2], size)
    content = resize(content, w, h)
    stylizers = {name: FastStylizer(precision=name) for name in PRECISIONS}
    times = {name: [] for name in PRECISIONS}
    for name, stylizer in stylizers.items():
        stylizer.stylize(content, [style])  # trace the tf.functions and cache the style first
    for _ in range(repeats):
        for name, stylizer in stylizers.items():
            started = time.perf_counter()
            stylizer.stylize(content, [style])
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def save_sheet(path: Path, images: dict, centre: tuple) -> None:
    """fp32 | bf16 | 4x zooms of both around ``centre`` (x, y), where the bf16 result is worst."""
    from nst.io import images as image_io

    h, w = images["fp32"].shape[:2]
    left = min(max(centre[0] - CROP // 2, 0), max(w - CROP, 0))
    top = min(max(centre[1] - CROP // 2, 0), max(h - CROP, 0))
    zoomed = [np.kron(image[top:top + CROP, left:left + CROP], np.ones((ZOOM, ZOOM, 1), np.uint8))
              for image in images.values()]
    zoomed = [image_io.resize(z, round(z.shape[1] * h / z.shape[0]), h) for z in zoomed]
    gap = np.full((h, 8, 3), 255, np.uint8)
    row = [images["fp32"], gap, images["bf16"], gap, zoomed[0], gap, zoomed[1]]
    path.parent.mkdir(parents=True, exist_ok=True)
    image_io.save_rgb(path, np.concatenate(row, axis=1))


def look_check(pairs: int, size: int, done: dict) -> None:
    """The optimisation in fp32 and bf16 on each of the first ``pairs`` of bench_look's pairs (``done``:
    {pair: runs} already made): the chroma bursts, their ratio, and a sheet each."""
    from bench_look import PAIRS

    from nst.io.images import fetch_sample, read_rgb

    print(f"{'pair':<40} {'fp32 burst':>11} {'bf16 burst':>11} {'ratio':>6}  bf16 worst at (x, y)")
    for pair in PAIRS[:pairs]:
        if pair not in done:
            content, style = (read_rgb(fetch_sample(name)) for name in pair)
            done[pair] = optimise_both(content, style, size)
        runs = done[pair]
        (fp32, _), (bf16, where) = (chroma_burst(runs[name][1]) for name in PRECISIONS)
        name = "_".join(Path(part).stem for part in pair)
        print(f"{name:<40} {fp32:11.1f} {bf16:11.1f} {bf16 / fp32:6.2f}  {where}")
        save_sheet(HERE / "out" / "precision" / f"{name}.png", {p: image for p, (_, image) in runs.items()}, where)
    print(f"sheets: {HERE / 'out' / 'precision'} (fp32 | bf16 | fp32 4x | bf16 4x at bf16's worst window; "
          f"target: bf16's burst at most 1.1x fp32's)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-optimise", action="store_true", help="the fast mode only (minutes less)")
    parser.add_argument("--pairs", type=int, default=4, help="sample pairs in the look check (0: none)")
    args = parser.parse_args(argv)

    from bench_fast import cpu_description
    from bench_look import Judge

    from nst.host import precision
    from nst.io.images import fetch_sample, read_rgb

    flags = precision.cpu_flags()
    print(f"CPU: {cpu_description()}; TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}")
    print(f"bfloat16 units: {'yes' if precision.has_bf16_units(flags) else 'no (bf16 is emulated here)'}; "
          f"--precision auto picks {precision.choose('auto', flags)[0]}")
    content, style = (read_rgb(fetch_sample(name)) for name in PAIR)
    fast = fast_both(content, style, args.size, args.repeats)
    print(f"fast mode at {args.size} px, median of {args.repeats}: fp32 {fast['fp32']:.3f} s, "
          f"bf16 {fast['bf16']:.3f} s, speed-up {fast['fp32'] / fast['bf16']:.2f}x")
    if args.skip_optimise:
        return 0
    work = {}
    runs = optimise_both(content, style, args.size, work)
    report_work(runs, work, sgemm_peak())
    judge = Judge()
    looks = {name: judge.measure(image, content, style) for name, (_, image) in runs.items()}
    print(f"{'precision':<10} {'wall s':>7} {'content':>8} {'style@512':>10} {'style@256':>10} {'style@128':>10}")
    for name, (seconds, _) in runs.items():
        print(f"{name:<10} {seconds:7.1f} " + " ".join(f"{v:10.4f}" for v in looks[name]))
    worst = max(abs(b / a - 1) for a, b in zip(looks["fp32"], looks["bf16"]))
    print(f"optimisation speed-up bf16 over fp32: {runs['fp32'][0] / runs['bf16'][0]:.2f}x; "
          f"largest relative cost difference: {100 * worst:.1f}% (bound: 3%)")
    if args.pairs:
        look_check(args.pairs, args.size, {PAIR: runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
