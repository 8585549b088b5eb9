#!/usr/bin/env python3
"""Seconds per iteration of the eager NST class's traced step (neural_style.NST).

Scales tubingen.jpg / starry_night.jpg to a given long side (default 400, i.e.
400x300 content, the size the graph-mode figures in FACTS use), warms the
``tf.function`` up, then times single steps (each synchronised by reading its
cost) and prints the median.  On a shared machine the figure is noisy: compare
medians taken back to back.

    python bench/bench_eager.py [--long-side 400] [--repeats 5]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

import neural_style  # noqa: E402
from nst.io import images  # noqa: E402


def main(argv=None):
    """Print the median seconds per iteration of NST.generate_image's step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-side", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)

    class SizedNST(neural_style.NST):
        @staticmethod
        def scale_image(image):
            return neural_style._resize_long_side(image, args.long_side)

    content = images.read_rgb(images.fetch_sample("tubingen.jpg"))
    style = images.read_rgb(images.fetch_sample("starry_night.jpg"))
    nst = SizedNST(style, content)
    start = time.perf_counter()
    nst.generate_image(iterations=args.warmup)  # builds and traces the step
    print("first call (trace + {} steps): {:.2f} s".format(args.warmup + 1, time.perf_counter() - start))
    hyper = [tf.constant(x) for x in (0.01, 0.9, 0.99)]
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        float(nst._step_function(*hyper)[0])  # synchronise on the cost
        times.append(time.perf_counter() - start)
    _, h, w, _ = nst.content_image.shape
    print("content {}x{}: median {:.3f} s/iteration over {} steps (min {:.3f}, max {:.3f}; "
          "threads: intra {} inter {})".format(w, h, statistics.median(times), len(times), min(times), max(times),
                                              tf.config.threading.get_intra_op_parallelism_threads(),
                                              tf.config.threading.get_inter_op_parallelism_threads()))


if __name__ == "__main__":
    main()
