#!/usr/bin/env python3
"""Does the fast mode's XLA-compiled Winograd F(4x4, 3x3) pay in the optimisation? (issue 30; it does not.)

    python bench/experiment_winograd_engine.py [VARIANT ...]   (direct winograd winograd-plain; the first is the reference)

Builds the optimisation's graph (:class:`nst.optimise.graphs.Problem`, fp32, the default costs with the
distribution term) at the default run's three sizes, once with ``tf.nn.conv2d`` and once with the wide
layers (128 channels or more on both sides: conv2_2 ... conv5_1) as XLA-compiled Winograd F(4x4, 3x3)
with bias and ReLU fused, and a gradient that is itself the Winograd convolution with the flipped kernel
(``tf.custom_gradient``).  Each variant runs in its own process; per size it prints the graph's build
time, the first evaluation (XLA compiles there) and the median of five more, and how far the Winograd
gradient is from the direct one.  The experiment's code lives here, not in the package, because the
answer was no (bench/RESULTS.md).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SIZES = ((96, 128), (192, 256), (384, 512))  # the default run's scales for the sample pair
# tf.nn.conv2d; Winograd under XLA; Winograd as plain TensorFlow ops (no compilation)
VARIANTS = ("direct", "winograd", "winograd-plain")


def conv_relu(kernel, bias, xla: bool = True):
    """x [1, h, w, in] -> relu(conv2d(x, kernel, 'SAME') + bias), Winograd F(4x4) both ways, under XLA or
    as plain TensorFlow ops."""
    import tensorflow as tf

    from nst.fast.convolutions import WINOGRAD, winograd_kernel, winograd_tiles, winograd_untile

    def same(x, tiles):  # zero 'SAME' padding, tiles of 4x4 outputs: [1, h, w, in] -> [1, h, w, out]
        _, height, width, _ = x.shape.as_list()
        rows, cols = -(-height // 4), -(-width // 4)
        padded = tf.pad(x, [[0, 0], [1, 1 + 4 * rows - height], [1, 1 + 4 * cols - width], [0, 0]])
        products = tf.linalg.matmul(winograd_tiles(tf, padded, WINOGRAD[4]), tiles)  # [36, tiles, out]
        return winograd_untile(tf, products, WINOGRAD[4], 1, rows, cols)[:, :height, :width]

    kernel = np.asarray(kernel, np.float64)
    flipped = np.transpose(kernel[::-1, ::-1], (0, 1, 3, 2))  # [3, 3, out, in]: the input gradient's kernel
    forward_tiles, backward_tiles = (tf.constant(winograd_kernel(k, 4).astype(np.float32)) for k in (kernel, flipped))
    bias = tf.constant(np.asarray(bias, np.float32))
    forward = tf.function(lambda x: tf.nn.relu(same(x, forward_tiles) + bias), jit_compile=xla, autograph=False)
    backward = tf.function(lambda up, y: same(tf.where(y > 0, up, tf.zeros_like(up)), backward_tiles),
                           jit_compile=xla, autograph=False)

    @tf.custom_gradient
    def conv(x):
        y = forward(x)
        return y, lambda upstream: backward(upstream, y)

    return conv


def winograd_layers(weights, current, pooling, last_layer, pool_key, graph, dtype="float32", xla=True):
    """nst.optimise.vgg._build_layers (fp32) with the wide layers through :func:`conv_relu`."""
    import tensorflow as tf

    from nst.weights.load import VGG19_LAYERS

    for name in VGG19_LAYERS:
        if name.startswith("conv"):
            kernel, bias = weights.kernels[name], weights.biases[name]
            if min(kernel.shape[2:]) >= 128:
                current = conv_relu(kernel, bias, xla)(current)
            else:
                current = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(current, kernel, 1, "SAME"), bias))
            graph[name] = current
        elif name.startswith("pool"):
            current = tf.nn.avg_pool2d(current, ksize=2, strides=2, padding="SAME")
            graph[pool_key.format(pooling=pooling, block=name[-1])] = current
        if name == last_layer:
            break


def measure(variant: str) -> None:
    from nst.io.images import fetch_sample, read_rgb, resize
    from nst.optimise import vgg
    from nst.optimise.graphs import Problem
    from nst.optimise.stylize import Settings, get_weights

    if variant.startswith("winograd"):
        xla = variant == "winograd"
        vgg._build_layers = lambda *args, **kwargs: winograd_layers(*args, **kwargs, xla=xla)
    weights, settings = get_weights(), Settings(size=512, precision="fp32").resolved(1)
    content = read_rgb(fetch_sample("tubingen.jpg"))
    rng = np.random.default_rng(0)
    for height, width in SIZES:
        started = time.perf_counter()
        problem = Problem(weights, settings, height, width, distribution_weight=40.0)
        built = time.perf_counter() - started
        grams = {name: np.eye(weights.kernels[name].shape[3]) for name, _ in settings.style_layers}
        projections = {name: np.sort(rng.normal(size=(height * width // 4 ** i, weights.kernels[name].shape[3])), 0)
                       for i, name in enumerate(("conv1_1", "conv2_1"))}
        image = resize(content, width, height).astype(np.float32)
        problem.start(image, problem.targets(np.zeros([1, height // 8, width // 8, 512], np.float32), grams, None,
                                             [(1.0, projections)]))
        started = time.perf_counter()
        _, gradient = problem.evaluate(image)
        first = time.perf_counter() - started
        times = []
        for _ in range(5):
            started = time.perf_counter()
            problem.evaluate(image)
            times.append(time.perf_counter() - started)
        np.save(f"/tmp/winograd_engine_{variant}_{height}.npy", gradient)
        print(f"{variant:<9} {width}x{height}: build {built:5.1f} s, first evaluation {first:5.1f} s, "
              f"median evaluation {statistics.median(times):.3f} s", flush=True)
        problem.close()


def main() -> int:
    if sys.argv[1:2] == ["--run"]:
        measure(sys.argv[2])
        return 0
    from bench_fast import cpu_description

    print(f"CPU: {cpu_description()}; TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}")
    variants = sys.argv[1:] or VARIANTS
    for variant in variants:
        subprocess.run([sys.executable, __file__, "--run", variant], check=True)
    for variant in variants[1:]:
        for height, _ in SIZES:
            direct, other = (np.load(f"/tmp/winograd_engine_{v}_{height}.npy") for v in (variants[0], variant))
            print(f"{variant} gradient at height {height}: largest difference from {variants[0]}'s "
                  f"{np.abs(other - direct).max() / np.abs(direct).max():.1e} of the largest value")
    return 0


if __name__ == "__main__":
    sys.exit(main())
