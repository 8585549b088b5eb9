"""The AdaIN network as TensorFlow graphs: VGG-19 encoder to relu4_1 and the trained decoder.

Each 3x3 conv runs the algorithm :mod:`nst.fast.convolutions` picks for its shape.  A
graph is built twice: plain (``tf.function``) and compiled by XLA
(``jit_compile=True``), which fuses the element-wise work and makes Winograd
pay.  XLA compiles once per input shape, which costs several seconds, so
:class:`CompileOnRepeat` runs a shape on the plain graph until it has been
seen :data:`COMPILE_AFTER` times (a batch of same-sized images, a video's
frames, a server's default size) and on the compiled graph from then on.
"""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np

from nst.fast import convolutions as fastconv

POOL_AFTER = ("conv1_2", "conv2_2", "conv3_4")  # 2x2 max pooling follows these encoder convs
UPSAMPLE_AFTER = (0, 4, 6)  # decoder conv indices followed by nearest 2x upsampling
FEATURE_CHANNELS = 512
FEATURE_STRIDE = 8  # three 2x2 poolings: features are [ceil(h/8), ceil(w/8), 512]
# A shape is compiled on its third call: one image (whose style is encoded at the
# same size) stays on the plain graph, a third image of that size pays XLA's
# compile once, measured at 10-20 s of CPU at 512x512 on the AMD host.
COMPILE_AFTER = 2
# The compile pays back only over many calls of one size: the compiled graph saves about
# 1 s per 512x512 image (1.15 s against 2.15 s, bench/bench_fast.py), so a clip or batch
# that gives one process fewer frames than this keeps the plain graph (compiled=False).
COMPILE_PAYS_FROM = 30


def compiled_for(calls) -> "bool | None":
    """FastStylizer's ``compiled`` for a run of ``calls`` images of one process (None: unknown, many):
    False (never compile) under :data:`COMPILE_PAYS_FROM`, else None (compile once a size repeats)."""
    return False if calls is not None and calls < COMPILE_PAYS_FROM else None


def conv_algorithms(encoder_shapes, decoder_shapes, precision: str, convolutions: str, compiled: bool):
    """(encoder algorithms, decoder algorithms) for kernels of the given [3, 3, in, out] shapes.

    "auto": the fastest measured per layer in fp32 (:func:`nst.fast.convolutions.choose`);
    bfloat16 keeps ``tf.nn.conv2d``, whose oneDNN kernels are the reason to ask
    for it.  "direct": ``tf.nn.conv2d`` everywhere (the reference).
    """
    if convolutions == "direct" or precision != "fp32":
        return ["direct"] * len(encoder_shapes), ["direct"] * len(decoder_shapes)
    encoder = [fastconv.choose(s[2], s[3], False, compiled) for s in encoder_shapes]
    decoder = [fastconv.choose(s[2], s[3], i - 1 in UPSAMPLE_AFTER, compiled) for i, s in enumerate(decoder_shapes)]
    return encoder, decoder


def _upsample(tf, x):
    # Nearest 2x: [n, h, w, c] -> [n, h, 1, w, 1, c] -> repeat -> [n, 2h, 2w, c].
    shape = tf.shape(x)
    x = tf.tile(tf.reshape(x, [shape[0], shape[1], 1, shape[2], 1, shape[3]]), [1, 1, 2, 1, 2, 1])
    return tf.reshape(x, [shape[0], 2 * shape[1], 2 * shape[2], shape[3]])


class Network:
    """Encoder and decoder graphs over prepared convs (``nst.fast.convolutions.PreparedConv``).

    ``encoder``: [(VGG layer name, conv)], ``decoder``: [conv]; ``mean``: the
    RGB mean [1, 1, 1, 3]; ``dtype``: the compute dtype (features and images
    cross the boundary as float32).
    """

    def __init__(self, tf, encoder, decoder, mean, dtype, compiled: bool):
        self.encoder, self.decoder, self.mean, self.dtype = encoder, decoder, mean, dtype
        image_spec = tf.TensorSpec([None, None, None, 3], tf.float32)
        feature_spec = tf.TensorSpec([None, None, None, FEATURE_CHANNELS], tf.float32)
        self.encode = tf.function(self._encode_graph, input_signature=[image_spec], jit_compile=compiled)
        self.decode = tf.function(self._decode_graph, input_signature=[feature_spec], jit_compile=compiled)

    def _encode_graph(self, images):
        """RGB 0..1 [n, h, w, 3] -> relu4_1 features [n, ceil(h/8), ceil(w/8), 512]."""
        import tensorflow as tf

        x = tf.cast(images * 255.0 - self.mean, self.dtype)
        for name, conv in self.encoder:
            x = conv(tf, x)
            if name in POOL_AFTER:
                # 'SAME' pads odd sizes at the end only: the output is ceil(h/2), as torch's ceil_mode.
                x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="SAME")
        return tf.cast(x, tf.float32)

    def _decode_graph(self, features):
        """Features [n, h, w, 512] -> RGB [n, 8h, 8w, 3], not yet clipped."""
        import tensorflow as tf

        x = tf.cast(features, self.dtype)
        for index, conv in enumerate(self.decoder):
            x = conv(tf, x)
            # An "upsampled" conv upsamples its own input: the next conv then takes x as it is.
            if index in UPSAMPLE_AFTER and self.decoder[index + 1].algorithm != "upsampled":
                x = _upsample(tf, x)
        return tf.cast(x, tf.float32)


class CompileOnRepeat:
    """Calls ``plain`` for a shape's first :data:`COMPILE_AFTER` calls, ``compiled`` (if any) after that."""

    def __init__(self, plain, compiled=None):
        self.plain, self.compiled = plain, compiled
        self._seen: Counter = Counter()
        self._lock = threading.Lock()

    def __call__(self, array: np.ndarray):
        if self.compiled is None:
            return self.plain(array)
        with self._lock:
            self._seen[array.shape] += 1
            repeated = self._seen[array.shape] > COMPILE_AFTER
        return (self.compiled if repeated else self.plain)(array)
