#!/usr/bin/env python3
"""A cheaper rank for the sliced-Wasserstein term (issue 30): 32-bit sort keys instead of 64-bit ones.

    PYTHONPATH=$PWD .venv/bin/python bench/experiment_rank_keys.py [--size 512] [--repeats 5] [--bits 12 13 14]

``nst.optimise.costs.rank_matched`` ranked each projection row by sorting 64-bit keys (the value's
order-preserving bits, then the position); it now takes the 32-bit keys below for long rows (14 bits
at the finest conv1_1), and this script measured that choice.  At the default run's finest scale that
is 64 rows of 196,608 values (conv1_1) and 128 of 49,152 (conv2_1) per evaluation, 37 % of its time (bench/RESULTS.md,
issue 30).  A row of at most 2^18 values can instead be ranked by one uint32 sort: the value quantised
linearly over the row's range to B bits (B <= 14) above an 18-bit position.
Values in one quantum are then ranked by position, not by value: the matched targets move by about the
spread of the targets over that quantum's ranks.

On the real features of the default pair at --size (conv1_1 and conv2_1 of the photo, the start, and
of docs/gallery's finished 512 px result, near the end), against the style's sorted projections
resampled to the picture's positions as the engine does: the median time of the exact and the 32-bit
ranks with the engine's thread pool, and the error of the matched targets against the gradient they
make (rms of projections - matched).  Prints the CPU it ran on.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
POSITION_BITS = 18  # rows up to 262,144 values: the default run's finest conv1_1 has 196,608


def rank_matched_exact(values: np.ndarray, target: np.ndarray) -> np.ndarray:
    from nst.optimise.costs import _argsort_rows_exact, rank_matched

    return rank_matched(values, target, _argsort_rows_exact)


def rank_matched_32(values: np.ndarray, target: np.ndarray, bits: int) -> np.ndarray:
    """rank_matched with uint32 keys: each row's values [rows, N <= 2^18] quantised to ``bits`` over its range."""
    from nst.optimise.costs import _argsort_rows_quantised, rank_matched

    return rank_matched(values, target, lambda v: _argsort_rows_quantised(v, bits, POSITION_BITS))


def projections_and_targets(size: int) -> dict:
    """{(picture, layer): (projections [n_C, N], targets [n_C, N])} for the photo and the finished result."""
    from nst.io.images import fetch_default_pair, read_rgb, resize, size_for_long_side
    from nst.optimise.graphs import FeatureGraph, projection_directions, quantiles
    from nst.optimise.settings import DEFAULT_CONTENT_LAYER, DEFAULT_POOLING, DEFAULT_STYLE_LAYERS
    from nst.weights.fetch import weights_for_use
    from nst.weights.load import load_vgg19

    def sized(image):
        height, width = size_for_long_side(*image.shape[:2], size)
        return resize(image, width, height)

    content_path, style_path = fetch_default_pair()
    photo, style = sized(read_rgb(content_path)), sized(read_rgb(style_path))
    finished = sized(read_rgb(HERE.parent / "docs" / "gallery" / "tubingen_starry_night.jpg"))
    layers = [name for name, _ in DEFAULT_STYLE_LAYERS]
    graph = FeatureGraph(load_vgg19(weights_for_use()), DEFAULT_POOLING, DEFAULT_CONTENT_LAYER, layers)
    _, style_sorted = graph.style_targets(style, projections=True)  # {layer: [M, n_C]}
    found = {}
    for picture_name, picture in (("photo", photo), ("result", finished)):
        activations = graph.session.run(graph.activations, {graph.pixels: picture[None].astype(np.float32)})
        for layer, a in activations.items():
            columns = a.reshape(-1, a.shape[-1])  # [N, n_C]
            values = np.ascontiguousarray((columns @ projection_directions(columns.shape[1])).T)  # [n_C, N]
            target = np.ascontiguousarray(quantiles(style_sorted[layer], values.shape[1]).T)
            found[picture_name, layer] = values, target
    graph.close()
    return found


def main(argv=None) -> int:
    from bench_fast import cpu_description

    from nst.optimise.costs import rank_matched

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bits", type=int, nargs="+", default=[12, 13, 14])
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_description()}", flush=True)
    for (picture, layer), (values, target) in projections_and_targets(args.size).items():
        if values.shape[1] > 1 << POSITION_BITS:
            print(f"{picture} {layer}: {values.shape[1]} positions, more than 32-bit keys hold")
            continue
        ways = {"exact": lambda: rank_matched_exact(values, target), "engine": lambda: rank_matched(values, target)}
        ways.update({f"{b} bits": (lambda b=b: rank_matched_32(values, target, b)) for b in args.bits})
        times = {name: [] for name in ways}
        for _ in range(args.repeats):  # alternating, so a noisy moment hits every way alike
            for name, way in ways.items():
                start = time.perf_counter()
                way()
                times[name].append(time.perf_counter() - start)
        exact = rank_matched_exact(values, target)
        engine = rank_matched(values, target) - exact
        gradient = np.sqrt(np.mean((values - exact) ** 2))
        print(f"{picture} {layer} {values.shape[0]}x{values.shape[1]}: "
              f"exact {statistics.median(times['exact']):.3f} s, gradient rms {gradient:.4g}; the engine's rank "
              f"(nst.optimise.costs.rank_matched) {statistics.median(times['engine']):.3f} s, matched error rms "
              f"{np.sqrt(np.mean(engine ** 2)) / gradient:.2%} of the gradient's", flush=True)
        for b in args.bits:
            error = rank_matched_32(values, target, b) - exact
            print(f"  {b} bits: {statistics.median(times[f'{b} bits']):.3f} s "
                  f"({statistics.median(times['exact']) / statistics.median(times[f'{b} bits']):.2f}x), matched "
                  f"error rms {np.sqrt(np.mean(error ** 2)):.3g} ({np.sqrt(np.mean(error ** 2)) / gradient:.2%} of the "
                  f"gradient's), max {np.abs(error).max():.3g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
