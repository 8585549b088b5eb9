#!/usr/bin/env python3
"""Where an iteration's time goes: per-layer forward and input-gradient conv times and GFLOP/s.

    python bench/profile_layers.py [--size 400x300] [--steps 3]

Traces a few Adam steps of the notebook's graph (``nst_utils`` + ``nst.classroom.course``)
with TensorFlow's step stats and attributes each op to a VGG layer.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _trace(sess, train_step, steps, convs):
    """Run ``steps`` traced steps; (forward, backward, other) seconds per step by VGG layer or op kind."""
    import tensorflow.compat.v1 as tf

    # Conv2D ops are created in layer order: Conv2D (conv1_1), Conv2D_1 (conv1_2), ...
    layer_of = {("Conv2D" if i == 0 else f"Conv2D_{i}"): name for i, (name, *_rest) in enumerate(convs + [
        ("conv5_2",), ("conv5_3",), ("conv5_4",)])}
    forward, backward, other = collections.Counter(), collections.Counter(), collections.Counter()
    for _ in range(steps):
        options = tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE)
        metadata = tf.RunMetadata()
        sess.run(train_step, options=options, run_metadata=metadata)
        for device in metadata.step_stats.dev_stats:
            for node in device.node_stats:
                seconds = (node.op_end_rel_micros - node.op_start_rel_micros) / 1e6 / steps
                name = node.node_name.split(":")[0]
                match = re.fullmatch(r"gradients/(Conv2D(?:_\d+)?)_grad/Conv2D", name)
                if name in layer_of:
                    forward[layer_of[name]] += seconds
                elif match and match.group(1) in layer_of:
                    backward[layer_of[match.group(1)]] += seconds
                else:
                    kind = node.timeline_label.split("=")[-1].split("(")[0].strip() or name
                    other[kind] += seconds
    return forward, backward, other


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="400x300")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    width, height = (int(x) for x in args.size.split("x"))

    from bench_speed import _images
    from flops import VGG19_CONVS, _side
    import nst_utils  # the course's process: graph mode, as in the notebook
    from nst.classroom import course

    content, style = _images(height, width)
    content_n = nst_utils.reshape_and_normalize_image(content)
    with course.course_session() as sess:
        recipe = course.build_course_graph(sess, content_n, nst_utils.reshape_and_normalize_image(style))
        recipe.start_from(sess, content_n)
        for _ in range(2):
            sess.run(recipe.train_step)
        forward, backward, other = _trace(sess, recipe.train_step, args.steps, VGG19_CONVS)
    total = sum(forward.values()) + sum(backward.values()) + sum(other.values())
    print(f"{width}x{height}, mean of {args.steps} traced steps; op time {total:.3f} s")
    print(f"{'layer':8s} {'fwd s':>7s} {'fwd GF/s':>9s} {'grad s':>7s} {'grad GF/s':>9s}")
    for name, c_in, c_out, pools in VGG19_CONVS:
        flops = 2 * _side(height, pools) * _side(width, pools) * c_in * c_out * 9 / 1e9
        f, b = forward[name], backward[name]
        print(f"{name:8s} {f:7.3f} {flops / f if f else 0:9.0f} {b:7.3f} {flops / b if b else 0:9.0f}")
    print(f"{'convs':8s} {sum(forward.values()):7.3f} {'':9s} {sum(backward.values()):7.3f}")
    for kind, seconds in other.most_common(6):
        print(f"  other: {kind:24s} {seconds:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
