#!/usr/bin/env python3
"""Time to quality: wall time for each optimiser to reach the course's 200-iteration cost.

    python bench/bench_quality.py [--iterations 200] [--size 400x300]

1. The course's recipe (``nst.classroom.course`` graph, Adam at 2.0, noise start with
   ``np.random.seed(1)``, alpha 10, beta 40) runs 200 iterations on
   tubingen.jpg / starry_night.jpg, both resized to 400x300; its final total
   cost is the target.
2. The command line's engine (``nst.optimise.stylize``) starts from the *same* image
   with the same costs, and each optimiser runs until its total cost is at or
   below the target: Adam (the engine's learning rate), L-BFGS, and each of
   them coarse-to-fine (``multiscale``, 100 px first) with a few iteration
   counts per scale.  Wall time includes building the graphs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def course_reference(content, style, iterations):
    """Run the course's recipe; returns (start image in 0..255, final total cost, seconds)."""
    import numpy as np

    import nst_utils  # the course's process: graph mode, as in the notebook
    from nst.classroom import course

    started = time.perf_counter()
    content_n = nst_utils.reshape_and_normalize_image(content)
    np.random.seed(1)
    start = nst_utils.generate_noise_image(content_n)
    start_rgb = (start[0] + nst_utils.CONFIG.MEANS[0]).astype(np.float32)
    if not iterations:  # the start only (a target was given)
        return start_rgb, None, 0.0
    with course.course_session() as sess:
        recipe = course.build_course_graph(sess, content_n, nst_utils.reshape_and_normalize_image(style))
        recipe.start_from(sess, start)
        for _ in range(iterations):
            sess.run(recipe.train_step)
        final = float(sess.run(recipe.J))
    return start_rgb, final, time.perf_counter() - started


def time_to_target(content, style, start, target, **settings):
    """Engine run from ``start`` until total <= target; returns (seconds, steps, final cost) or None."""
    from nst.optimise import stylize

    reached = {}

    def stop_at_target(progress):
        if progress.scale == len(progress.sizes) - 1 and progress.costs["total"] <= target:
            reached.update(seconds=progress.elapsed, steps=progress.step, cost=progress.costs["total"])
            raise stylize.Stop()

    result = stylize.stylize(content, [style], init=start, size=max(content.shape[:2]), seed=0,
                             content_weight=10.0, style_weight=40.0, callback=stop_at_target, **settings)
    if not reached:
        return None, result.steps, result.costs["total"]
    return reached["seconds"], reached["steps"], reached["cost"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200, help="course Adam iterations (default %(default)s)")
    parser.add_argument("--size", default="400x300", help="WxH (default %(default)s)")
    parser.add_argument("--target", type=float, help="skip the course run and use this cost (from an earlier run)")
    parser.add_argument("--learning-rate", type=float, help="Adam's step (default: the engine's)")
    parser.add_argument("--runs", type=lambda text: text.split(","),
                        help='comma-separated run names, such as "lbfgs,adam multiscale 50" (default: all)')
    parser.add_argument("--scale-iterations", default="25,50,100", type=lambda text: [int(n) for n in text.split(",")],
                        help="iterations per scale of the multiscale runs (default %(default)s)")
    parser.add_argument("--min-size", type=int, default=100, help="coarsest long side of multiscale (default %(default)s)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from nst.io import images

    width, height = (int(x) for x in args.size.split("x"))
    content = images.resize(images.read_rgb(images.fetch_sample("tubingen.jpg")), width, height)
    style = images.resize(images.read_rgb(images.fetch_sample("starry_night.jpg")), width, height)
    start, target, course_seconds = course_reference(content, style, 0 if args.target else args.iterations)
    if args.target:
        target = args.target
        print(f"target total cost {target:.4g} (given)")
    else:
        print(f"course recipe, {args.iterations} Adam iterations at {width}x{height}: total cost {target:.4g} "
              f"in {course_seconds:.1f} s")
    report = {"target": target, "course_seconds": course_seconds, "runs": {}}
    # Single-scale runs get ample iterations and stop at the target.  A multiscale run spends
    # all its iterations on each coarse scale, so its wall time depends on that count: try a few.
    runs = {}
    for optimizer in ("adam", "lbfgs"):
        runs[optimizer] = dict(optimizer=optimizer, iterations=4 * args.iterations)
        for per_scale in args.scale_iterations:
            runs[f"{optimizer} multiscale {per_scale}"] = dict(optimizer=optimizer, iterations=per_scale,
                                                                multiscale=True, min_size=args.min_size)
    for name, settings in runs.items():
        if settings["optimizer"] == "adam" and args.learning_rate:
            settings["learning_rate"] = args.learning_rate
        if args.runs and name not in args.runs:
            continue
        seconds, steps, cost = time_to_target(content, style, start, target, **settings)
        if seconds is None:
            print(f"  {name:22s} did not reach it in {steps} steps (best {cost:.4g})")
        else:
            print(f"  {name:22s} {seconds:6.1f} s  ({steps} steps, cost {cost:.4g})")
        report["runs"][name] = {"seconds": seconds, "steps": steps, "cost": cost}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
