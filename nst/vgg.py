"""VGG-19 as a TensorFlow graph (conv1_1 ... conv5_4), built from :mod:`nst.weights`.

Works in graph mode (``tf.compat.v1``) and eagerly: it only calls ``tf.nn`` ops.
Following Gatys et al. (2015) and the course, pooling defaults to *average*
pooling, which gives smoother gradients than VGG's max pooling.
"""

from __future__ import annotations

from .weights import VGG19_LAYERS, VGGWeights

POOLING = ("avg", "max")


def build_vgg19(weights: VGGWeights, image, pooling: str = "avg", last_layer: str = "conv5_4",
                pool_key: str = "{pooling}pool{block}") -> dict:
    """Run ``image`` ([1, h, w, 3], RGB 0..255 minus the mean) through VGG-19.

    Returns ``{layer name: tensor}`` with ``conv*_*`` after the ReLU (as in the
    course) and pooling outputs under ``pool_key`` (``avgpool1`` ... by default).
    Layers after ``last_layer`` are not built, so their cost is never paid.
    """
    import tensorflow as tf

    if pooling not in POOLING:
        raise ValueError(f"pooling must be one of {POOLING}, not {pooling!r}")
    pool = tf.nn.avg_pool2d if pooling == "avg" else tf.nn.max_pool2d
    pool_op_name = "AvgPool" if pooling == "avg" else "MaxPool"  # the course's TF 1 op names
    graph = {}
    current = image
    for name in VGG19_LAYERS:
        if name.startswith("conv"):
            kernel = tf.constant(weights.kernels[name])  # [3, 3, in, out]
            bias = tf.constant(weights.biases[name])  # [out]
            current = tf.nn.relu(tf.nn.conv2d(current, kernel, strides=1, padding="SAME") + bias)
            graph[name] = current
        elif name.startswith("pool"):
            current = pool(current, ksize=2, strides=2, padding="SAME", name=pool_op_name)
            graph[pool_key.format(pooling=pooling, block=name[-1])] = current
        if name == last_layer:
            break
    return graph
