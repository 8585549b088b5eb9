"""VGG-19 as a TensorFlow graph (conv1_1 ... conv5_4), built from :mod:`nst.weights.load`.

Works in graph mode (``tf.compat.v1``) and eagerly: it only calls ``tf.nn`` ops.
Following Gatys et al. (2015) and the course, pooling defaults to *average*
pooling, which gives smoother gradients than VGG's max pooling.
"""

from __future__ import annotations

import contextlib

from nst.weights.load import VGG19_LAYERS, VGGWeights

# The pooling kinds the network can be built with (average is the course's); the one list of them.
POOLINGS = ("avg", "max")
INPUT_ONLY_CONV_GRAD = "NSTConv2DInputGradOnly"
INPUT_ONLY_BIAS_GRAD = "NSTBiasAddInputGradOnly"


def _register_input_only_conv_grad():
    """Register a Conv2D gradient that skips the filter gradient (the weights are constants).

    TF 1 optimisers' ``minimize`` gates gradients (GATE_OP): every output of an
    op's gradient is computed before any is used, so the stock Conv2D gradient
    also runs Conv2DBackpropFilter for every layer -- about half the time of an
    iteration, for a result nobody reads.  Style transfer only needs the
    gradient with respect to the image.
    """
    import tensorflow as tf

    def conv2d_input_grad(op, grad):
        # grad: [1, h, w, out] -> d(cost)/d(input): [1, h, w, in]; no gradient for the constant filter.
        # For a stride-1 'SAME' 3x3 conv, the input gradient is itself a 'SAME' conv of
        # grad with the kernel rotated 180 degrees and its in/out axes swapped; CPU kernels
        # run a forward conv two to three times faster than Conv2DBackpropInput.
        kernel = op.inputs[1]  # [3, 3, in, out]
        flipped = tf.transpose(tf.reverse(kernel, axis=[0, 1]), [0, 1, 3, 2])  # [3, 3, out, in]
        return [tf.nn.conv2d(grad, flipped, strides=1, padding="SAME"), None]

    def bias_add_input_grad(op, grad):
        # The stock gradient also sums grad over every position for the constant bias
        # (a full pass over each activation, forced by GATE_OP); only the input's is needed.
        return [grad, None]

    for name, function in ((INPUT_ONLY_CONV_GRAD, conv2d_input_grad), (INPUT_ONLY_BIAS_GRAD, bias_add_input_grad)):
        try:
            tf.RegisterGradient(name)(function)
        except KeyError:
            pass  # already registered in this process


def _input_only_conv_gradients():
    """Context in which new Conv2D and BiasAdd ops get input-only gradients (graph mode only)."""
    import tensorflow as tf

    if tf.executing_eagerly():
        return contextlib.nullcontext()  # tapes only compute what is asked for
    _register_input_only_conv_grad()
    return tf.compat.v1.get_default_graph().gradient_override_map(
        {"Conv2D": INPUT_ONLY_CONV_GRAD, "BiasAdd": INPUT_ONLY_BIAS_GRAD})


def build_vgg19(weights: VGGWeights, image, pooling: str = "avg", last_layer: str = "conv5_4",
                pool_key: str = "{pooling}pool{block}", dtype: str = "float32") -> dict:
    """Run ``image`` ([1, h, w, 3], RGB 0..255 minus the mean) through VGG-19.

    Returns ``{layer name: tensor}`` with ``conv*_*`` after the ReLU (as in the
    course) and pooling outputs under ``pool_key`` (``avgpool1`` ... by default).
    Layers after ``last_layer`` are not built, so their cost is never paid.
    ``dtype`` "bfloat16" runs the convolutions in bfloat16 (:mod:`nst.host.precision`);
    the returned tensors are float32 either way, so Grams and costs stay float32.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
    graph = {}
    current = image
    with _input_only_conv_gradients():
        _build_layers(weights, current, pooling, last_layer, pool_key, graph, dtype)
    return graph


def _build_layers(weights, current, pooling, last_layer, pool_key, graph, dtype="float32"):
    import tensorflow as tf

    pool = tf.nn.avg_pool2d if pooling == "avg" else tf.nn.max_pool2d
    pool_op_name = "AvgPool" if pooling == "avg" else "MaxPool"  # the course's TF 1 op names
    mixed = dtype != "float32"

    def exposed(tensor):  # what callers see: float32, whatever the convolutions ran in
        return tf.cast(tensor, tf.float32) if mixed else tensor

    for name in VGG19_LAYERS:
        if name.startswith("conv"):
            # In mixed precision conv1_1 still runs in float32 (issue 29): its input is the picture
            # being optimised, and bfloat16's 8 bits would round a pixel near white to steps of a
            # whole grey level, so the cost became a staircase in each pixel with a gradient
            # constant on each tread; L-BFGS then saw no curvature along those pixels and let a few
            # of them run away (rainbow specks).  With 3 input channels conv1_1 is about 0.5 % of the
            # multiply-adds up to conv5_1 (1,728 of 361,152 per pixel), so float32 there costs little.
            layer_dtype = "float32" if name == "conv1_1" else dtype
            current = tf.cast(current, layer_dtype) if current.dtype != layer_dtype else current
            kernel = tf.cast(tf.constant(weights.kernels[name]), layer_dtype)  # [3, 3, in, out]
            bias = tf.cast(tf.constant(weights.biases[name]), layer_dtype)  # [out]
            # BiasAdd (not "+"), so that grappler's remapper fuses Conv2D + BiasAdd + Relu
            # into one _FusedConv2D kernel: one pass over the activation instead of three.
            current = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(current, kernel, strides=1, padding="SAME"), bias))
            graph[name] = exposed(current)
        elif name.startswith("pool"):
            current = pool(current, ksize=2, strides=2, padding="SAME", name=pool_op_name)
            graph[pool_key.format(pooling=pooling, block=name[-1])] = exposed(current)
        if name == last_layer:
            break
