#!/usr/bin/env python3
"""Every conv layer of the fast (AdaIN) network, timed with each algorithm of nst.fast.convolutions side by side.

    PYTHONPATH=$PWD .venv/bin/python bench/profile_fast.py [--size 512] [--repeats 3] [--xla]

For each layer (random input and kernel of the layer's shape at its
resolution) the algorithms run interleaved, ``--repeats`` times each after a
warm-up; the table gives the best wall time, the process CPU time of that
call (robust on a shared host: other jobs do not add to it), the effective
GFLOP/s (the direct conv's FLOPs over the wall time) and the largest
difference from the direct conv relative to the output's largest value.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench_fast import DECODER_CONVS, ENCODER_CONVS, cpu_description  # noqa: E402

# Decoder conv indices whose input is the upsampled output of the previous conv.
AFTER_UPSAMPLE = (1, 5, 7)


def _algorithms(tf, fastconv, kernel, upsampled, xla):
    """name -> (callable(x), kernel-prepared) for one layer; x is the conv's *input* (small if upsampled)."""
    k32 = lambda a: tf.constant(a.astype("float32"))  # noqa: E731
    bias = tf.zeros([kernel.shape[3]])
    if upsampled:
        def direct(x):
            shape = tf.shape(x)
            x = tf.reshape(tf.tile(x[:, :, None, :, None], [1, 1, 2, 1, 2, 1]),
                           [shape[0], 2 * shape[1], 2 * shape[2], shape[3]])
            return fastconv.direct_conv(tf, x, kernel_tf, bias)
        kernel_tf, k2, b4 = k32(kernel), k32(fastconv.upsampled_kernel(kernel)), tf.zeros([4 * kernel.shape[3]])
        found = {"direct": direct, "upsampled": lambda x: fastconv.upsampled_conv(tf, x, k2, b4)}
    else:
        kernel_tf, k16, k36 = k32(kernel), k32(fastconv.winograd_kernel(kernel)), k32(fastconv.winograd_kernel(kernel, 4))
        kt, kp = k32(fastconv.few_outputs_kernel(kernel)), k32(fastconv.few_inputs_kernel(kernel))
        found = {"direct": lambda x: fastconv.direct_conv(tf, x, kernel_tf, bias),
                 "winograd": lambda x: fastconv.winograd_conv(tf, x, k16, bias),
                 "winograd4": lambda x: fastconv.winograd_conv(tf, x, k36, bias)}
        if kernel.shape[3] <= 16:
            found["few_outputs"] = lambda x: fastconv.few_outputs_conv(tf, x, kt, bias)
        if kernel.shape[2] <= 16:
            found["few_inputs"] = lambda x: fastconv.few_inputs_conv(tf, x, kp, bias)
    compiled = {name: tf.function(fn) for name, fn in found.items()}
    if xla:
        compiled.update({f"{name}+xla": tf.function(fn, jit_compile=True) for name, fn in found.items()})
    return compiled


def _time(fn, x):
    wall, cpu = time.perf_counter(), time.process_time()
    fn(x).numpy()
    return time.perf_counter() - wall, time.process_time() - cpu


def profile_layer(tf, fastconv, cin, cout, side, upsampled, repeats, xla):
    import numpy as np

    rng = np.random.default_rng(0)
    small = side // 2 if upsampled else side
    x = tf.constant(rng.random((1, small, small, cin), dtype=np.float32))
    kernel = rng.standard_normal((3, 3, cin, cout)) * (2.0 / (9 * cin)) ** 0.5
    algorithms = _algorithms(tf, fastconv, kernel, upsampled, xla)
    reference = algorithms["direct"](x).numpy()
    errors = {name: float(np.abs(fn(x).numpy() - reference).max() / np.abs(reference).max())
              for name, fn in algorithms.items()}
    best = {name: (float("inf"), 0.0) for name in algorithms}
    for _ in range(repeats):
        for name, fn in algorithms.items():
            best[name] = min(best[name], _time(fn, x))
    return best, errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--xla", action="store_true", help="also each algorithm under jit_compile=True")
    parser.add_argument("--only", default="", help="comma-separated layer labels, e.g. enc1,dec7")
    args = parser.parse_args(argv)
    import tensorflow as tf

    from nst.fast import convolutions as fastconv

    print(f"CPU: {cpu_description()}; TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}; "
          f"load average {os.getloadavg()[0]:.2f}; effective GFLOP/s = the direct conv's FLOPs / wall time")
    layers = [(f"enc{i}", c, False) for i, c in enumerate(ENCODER_CONVS)]
    layers += [(f"dec{i}", c, i in AFTER_UPSAMPLE) for i, c in enumerate(DECODER_CONVS)]
    chosen = set(filter(None, args.only.split(",")))
    for label, (_, cin, cout, stride), upsampled in layers:
        if chosen and label not in chosen:
            continue
        side = -(-args.size // stride)
        flops = 2 * 9 * cin * cout * side * side
        best, errors = profile_layer(tf, fastconv, cin, cout, side, upsampled, args.repeats, args.xla)
        cells = [f"{name} {wall * 1e3:6.1f} ms (cpu {cpu * 1e3:6.1f}) {flops / wall / 1e9:4.0f} GF/s "
                 f"err {errors[name]:.0e}" for name, (wall, cpu) in best.items()]
        print(f"{label} {cin:3d}->{cout:3d} @{side:3d}{' up' if upsampled else '   '}: " + " | ".join(cells),
              flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
