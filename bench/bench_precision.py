#!/usr/bin/env python3
"""bfloat16 against float32, side by side in one run (issue 15).

    python bench/bench_precision.py [--size 512] [--repeats 5]

Prints the CPU model and the flags that decide ``--precision auto``, then:

* the default optimisation (``nst``'s defaults, coarse to fine, ``--seed 0``) on
  tubingen x starry_night in fp32 and in bf16: wall time, the speed-up, the
  content cost and the multi-scale style costs of bench_look.py's metric, and
  how far bf16's costs are from fp32's (the issue's bound: 3%);
* the fast mode: the median time per image over ``--repeats`` alternating runs
  at SIZE, and the speed-up;
* a sheet, bench/out/precision/sheet.png: fp32 | bf16 | a 4x zoom of the same
  crop of each, to look for any visible difference.

On a CPU without bfloat16 units (no amx_bf16 / avx512_bf16) TensorFlow
emulates bf16: the figures then show the emulation's cost, not the feature;
the issue's targets are for a host with AMX.
"""

from __future__ import annotations

import argparse
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


def optimise_both(content, style, size: int) -> dict:
    """{precision: (seconds, uint8 result)} for the default optimisation, fp32 first."""
    from nst.optimise.stylize import Settings, stylize

    runs = {}
    for name in PRECISIONS:
        started = time.perf_counter()
        result = stylize(content, [style], Settings(size=size, seed=0, precision=name))
        runs[name] = (time.perf_counter() - started, result.image)
    return runs


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


def save_sheet(path: Path, images: dict) -> None:
    from nst.io import images as image_io

    h, w = images["fp32"].shape[:2]
    top, left = h // 8, w // 2  # sky and roofs: flat areas and edges, where differences show first
    zoomed = [np.kron(image[top:top + CROP, left:left + CROP], np.ones((ZOOM, ZOOM, 1), np.uint8))
              for image in images.values()]
    zoomed = [image_io.resize(z, round(z.shape[1] * h / z.shape[0]), h) for z in zoomed]
    gap = np.full((h, 8, 3), 255, np.uint8)
    row = [images["fp32"], gap, images["bf16"], gap, zoomed[0], gap, zoomed[1]]
    path.parent.mkdir(parents=True, exist_ok=True)
    image_io.save_rgb(path, np.concatenate(row, axis=1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-optimise", action="store_true", help="the fast mode only (minutes less)")
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
    runs = optimise_both(content, style, args.size)
    judge = Judge()
    looks = {name: judge.measure(image, content, style) for name, (_, image) in runs.items()}
    print(f"{'precision':<10} {'wall s':>7} {'content':>8} {'style@512':>10} {'style@256':>10} {'style@128':>10}")
    for name, (seconds, _) in runs.items():
        print(f"{name:<10} {seconds:7.1f} " + " ".join(f"{v:10.4f}" for v in looks[name]))
    worst = max(abs(b / a - 1) for a, b in zip(looks["fp32"], looks["bf16"]))
    print(f"optimisation speed-up bf16 over fp32: {runs['fp32'][0] / runs['bf16'][0]:.2f}x; "
          f"largest relative cost difference: {100 * worst:.1f}% (bound: 3%)")
    sheet = HERE / "out" / "precision" / "sheet.png"
    save_sheet(sheet, {name: image for name, (_, image) in runs.items()})
    print(f"sheet: {sheet} (fp32 | bf16 | fp32 4x | bf16 4x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
