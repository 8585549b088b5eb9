#!/usr/bin/env python3
"""Where the default optimisation's time goes, scale by scale (issue 30).

    python bench/profile_engine.py [--precision fp32] [--size 512] [--trace-every 8]

Runs ``nst``'s defaults (coarse to fine, L-BFGS, ``--seed 0``) on tubingen x
starry_night and splits each scale's wall time into: building the scale's graph,
the graph evaluations (cost and gradient), and the rest (L-BFGS's own vector
work, progress events and their image copies, image conversion).  Every
``--trace-every``-th evaluation also runs with TensorFlow's step stats, whose op
times are grouped into convolutions forward and backward, matrix products (Grams
and the distribution term's projections), the distribution term's NumPy sort,
ReLU/pooling and their gradients, casts, and everything else.  Op times overlap
when TensorFlow runs two ops at once, so the groups are shares of the summed op
time, not of the wall time.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GROUPS = (("conv forward", lambda op, name: "Conv" in op and not name.startswith("gradients")),
          ("conv input gradient", lambda op, name: "Conv" in op),
          ("matmul (Grams, projections)", lambda op, name: "MatMul" in op),
          ("distribution sort (NumPy)", lambda op, name: op.startswith(("PyFunc", "EagerPyFunc"))),
          ("relu / pool and gradients", lambda op, name: "Relu" in op or "Pool" in op),
          ("casts", lambda op, name: op == "Cast"),
          ("other ops", lambda op, name: True))


def group_of(op: str, name: str) -> str:
    return next(group for group, matches in GROUPS if matches(op, name))


class Probe:
    """Wraps Problem.__init__ and Problem.evaluate to time them and trace some evaluations."""

    def __init__(self, trace_every: int):
        self.trace_every = trace_every
        self.scales = []  # one dict per Problem built, in order

    def install(self):
        from nst.optimise import graphs

        probe, original_init, original_evaluate = self, graphs.Problem.__init__, graphs.Problem.evaluate

        def init(problem, *args, **kwargs):
            started = time.perf_counter()
            original_init(problem, *args, **kwargs)
            probe.scales.append({"size": problem.shape[1:3], "build": time.perf_counter() - started,
                                 "evaluations": 0, "evaluate": 0.0, "ops": collections.Counter(), "other": collections.Counter(),
                                 "traced": 0, "first": None, "last": None})

        def evaluate(problem, image):
            scale = probe.scales[-1]
            started = time.perf_counter()
            scale["first"] = scale["first"] or started
            if scale["evaluations"] % probe.trace_every == probe.trace_every - 1:
                result = probe.traced(problem, image, scale)
            else:
                result = original_evaluate(problem, image)
            scale["evaluations"] += 1
            scale["last"] = time.perf_counter()
            scale["evaluate"] += scale["last"] - started
            return result

        graphs.Problem.__init__, graphs.Problem.evaluate = init, evaluate
        self.outside = collections.Counter()
        from nst.optimise import stylize
        for name in ("get_weights", "_scale_targets"):
            setattr(stylize, name, self.timed(name, getattr(stylize, name)))
        graphs.FeatureGraph.__init__ = self.timed("feature graph built", graphs.FeatureGraph.__init__)

    def timed(self, name, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.outside[name] += time.perf_counter() - started
        return wrapper

    def traced(self, problem, image, scale):
        import tensorflow as tf

        options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
        metadata = tf.compat.v1.RunMetadata()
        values, gradient = problem.session.run([problem.costs, problem.gradient], {problem.pixels: image[None]},
                                               options=options, run_metadata=metadata)
        for device in metadata.step_stats.dev_stats:
            for node in device.node_stats:
                # After grappler the node names are the graph's but the ops may be fused ones
                # (_FusedConv2D named after its Relu): the label "name = Op(inputs)" has the op run.
                label = node.timeline_label
                op = label.split(" = ", 1)[1].split("(", 1)[0] if " = " in label else node.node_name
                seconds = (node.op_end_rel_micros - node.op_start_rel_micros) / 1e6
                group = group_of(op, node.node_name)
                scale["ops"][group] += seconds
                if group == "other ops":
                    scale["other"][op] += seconds
        scale["traced"] += 1
        return {k: float(v) for k, v in values.items()}, gradient[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--trace-every", type=int, default=8)
    args = parser.parse_args(argv)

    from bench_fast import cpu_description

    from nst.io.images import fetch_sample, read_rgb
    from nst.optimise.stylize import Settings, stylize

    print(f"CPU: {cpu_description()}; TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}")
    probe = Probe(args.trace_every)
    probe.install()
    content, style = (read_rgb(fetch_sample(name)) for name in ("tubingen.jpg", "starry_night.jpg"))
    started = time.perf_counter()
    result = stylize(content, [style], Settings(size=args.size, seed=0, precision=args.precision))
    total = time.perf_counter() - started
    print(f"default run at {args.size} px in {args.precision}: {total:.1f} s, {result.steps} iterations")
    print(f"{'scale':<10} {'build s':>8} {'evals':>6} {'eval s':>8} {'s/eval':>7} {'rest s':>7}  op time shares")
    accounted = 0.0
    for scale in probe.scales:
        span = scale["last"] - scale["first"]
        rest = span - scale["evaluate"]
        accounted += scale["build"] + span
        ops = scale["ops"]
        shares = "  ".join(f"{group} {100 * ops[group] / sum(ops.values()):.0f}%" for group, _ in GROUPS
                           if ops[group])
        h, w = scale["size"]
        print(f"{w}x{h:<6} {scale['build']:8.1f} {scale['evaluations']:6d} {scale['evaluate']:8.1f} "
              f"{scale['evaluate'] / scale['evaluations']:7.3f} {rest:7.1f}  {shares}")
    finest = probe.scales[-1]["other"]
    print("largest 'other ops' at the finest scale: " + ", ".join(
        f"{op} {100 * seconds / sum(probe.scales[-1]['ops'].values()):.0f}%" for op, seconds in finest.most_common(6)))
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in probe.outside.items())
    print(f"outside the scales: {total - accounted:.1f} s ({parts}; _scale_targets includes the feature graph)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
