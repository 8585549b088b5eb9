"""Faster 3x3 convolutions for the feed-forward mode, each exact up to float rounding.

TensorFlow's CPU convolution (Eigen) reaches well under the matrix-product
peak on the AdaIN network's layers, and least of all at full resolution with
64 channels.  These rewrite a reflection-padded 3x3 convolution so that it
does fewer multiplications or better-shaped matrix products:

* :func:`upsampled_conv`: nearest 2x upsampling, reflection padding and a 3x3
  conv (the decoder does this three times) equal one 2x2 conv with four times
  the output channels on the *small* image, followed by ``depth_to_space``:
  every output pixel of a 2x2 block sees only two distinct rows and two
  distinct columns of the small image.  16 instead of 36 multiply-adds per
  block and input channel (2.25x fewer), and no upsampled copy in memory.
* :func:`winograd_conv`: Winograd's minimal filtering F(2x2, 3x3) (Lavin and
  Gray, CVPR 2016): 16 batched matrix products [tiles, in] x [in, out] for every
  2x2 output block instead of 36 multiply-adds per block and channel pair.
* :func:`few_outputs_conv`: a conv with few output channels (the decoder's last,
  64 -> 3) as one [pixels, in] x [in, 9 * out] product and nine shifted sums,
  since Eigen's convolution is slow when the output is only 3 channels deep.
* :func:`few_inputs_conv`: a conv with few input channels (the encoder's first,
  3 -> 64) as one [pixels, 9 * in] x [9 * in, out] product (im2col).

Kernels are transformed once, in float64, by the ``*_kernel`` functions (NumPy,
[3, 3, in, out] as ``tf.nn.conv2d`` takes them).  FLOPs are still counted as
the direct convolution's (2 x 9 x in x out per pixel) wherever speeds are
reported: the GFLOP/s of these paths are *effective* rates.
"""

from __future__ import annotations

import numpy as np

# F(2x2, 3x3): output block = A^T [(G g G^T) * (B^T d B)] A, d a 4x4 input tile.
WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
# Upsampled conv: for the two output rows of a block (sub-row 0, 1), which of the
# 3x3 kernel's rows fall on the first and the second of the two small-image rows.
UPSAMPLE_TAPS = np.array([[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]],   # odd output row 2m-1: rows m-1 | m
                          [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]])  # even output row 2m: rows m-1 | m


def _padding(tf):
    return tf.constant([[0, 0], [1, 1], [1, 1], [0, 0]])


def reflect_pad(tf, x):
    """[n, h, w, c] -> [n, h + 2, w + 2, c], mirrored without repeating the edge (torch's ReflectionPad2d(1))."""
    return tf.pad(x, _padding(tf), mode="REFLECT")


# ----------------------------------------------------------------------
# Upsampling folded into the convolution


def upsampled_kernel(kernel: np.ndarray) -> np.ndarray:
    """[3, 3, in, out] -> [2, 2, in, 4 * out]: the 2x2 kernel of :func:`upsampled_conv`.

    Output channel (2 * p + q) * out + o is the output pixel at sub-row p,
    sub-column q of a 2x2 block, the order ``tf.nn.depth_to_space`` expects.
    """
    k2 = np.einsum("pai,ijco,qbj->abcpqo", UPSAMPLE_TAPS, kernel.astype(np.float64), UPSAMPLE_TAPS)
    return k2.reshape(2, 2, kernel.shape[2], 4 * kernel.shape[3])


def upsampled_conv(tf, x, kernel2, bias4, relu=True):
    """reflect_pad(upsample2x(x)) convolved 3x3, as one 2x2 conv on x: [n, h, w, in] -> [n, 2h, 2w, out].

    With x edge-padded by one pixel (xe, [n, h + 2, w + 2, in]), output rows
    2m - 1 and 2m both read only xe rows m and m + 1, and likewise for columns;
    so the 2x2 'VALID' conv at xe position m gives the whole block [2m-1..2m] x
    [2k-1..2k] as 4 * out channels.  ``depth_to_space`` lays the blocks out
    ([n, 2h + 2, 2w + 2, out]) and a one-pixel crop leaves rows 0..2h-1.
    ``bias4`` is the bias tiled four times.
    """
    shape = tf.shape(x)
    edge = tf.pad(x, _padding(tf), mode="SYMMETRIC")  # mirrored with the edge: row -1 = row 0
    blocks = tf.nn.bias_add(tf.nn.conv2d(edge, kernel2, strides=1, padding="VALID"), bias4)
    if relu:
        blocks = tf.nn.relu(blocks)
    return tf.nn.depth_to_space(blocks, 2)[:, 1:2 * shape[1] + 1, 1:2 * shape[2] + 1]


# ----------------------------------------------------------------------
# Winograd F(2x2, 3x3)


def winograd_kernel(kernel: np.ndarray) -> np.ndarray:
    """[3, 3, in, out] -> [16, in, out]: G g G^T for each channel pair, tile positions row-major."""
    transformed = np.einsum("ai,ijco,bj->abco", WINOGRAD_G, kernel.astype(np.float64), WINOGRAD_G)
    return transformed.reshape(16, kernel.shape[2], kernel.shape[3])


def _combine_input(d0, d1, d2, d3):
    # B^T applied along one axis to the four rows (or columns) of a tile.
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


def _combine_output(m0, m1, m2, m3):
    # A^T applied along one axis: four transformed rows -> two output rows.
    return m0 + m1 + m2, m1 - m2 - m3


def winograd_tiles(tf, padded):
    """Padded input [n, 2th + 2, 2tw + 2, c] -> B^T d B of every 4x4 tile at stride 2: [16, n * th * tw, c]."""
    shape = tf.shape(padded)
    rows, cols = (shape[1] - 2) // 2, (shape[2] - 2) // 2
    by_row = _combine_input(*[padded[:, k:k + 2 * rows:2] for k in range(4)])  # 4 x [n, th, 2tw + 2, c]
    tiles = []
    for part in by_row:
        tiles.extend(_combine_input(*[part[:, :, k:k + 2 * cols:2] for k in range(4)]))  # 4 x [n, th, tw, c]
    return tf.reshape(tf.stack(tiles), [16, -1, shape[3]])


def winograd_untile(tf, products, batch, rows, cols):
    """Products [16, n * th * tw, out] -> A^T m A laid out as the image [n, 2th, 2tw, out]."""
    depth = tf.shape(products)[-1]
    grid = tf.reshape(products, [4, 4, batch, rows, cols, depth])
    halves = []
    for row in _combine_output(grid[0], grid[1], grid[2], grid[3]):  # 2 x [4, n, th, tw, out]
        halves.append(tf.stack(_combine_output(row[0], row[1], row[2], row[3]), axis=3))  # [n, th, tw, 2, out]
    return tf.reshape(tf.stack(halves, axis=2), [batch, 2 * rows, 2 * cols, depth])  # from [n, th, 2, tw, 2, out]


_COMPILED = {}


def compiled_winograd_conv(tf, x, kernel16, bias, relu=True):
    """:func:`winograd_conv` compiled by XLA, one function shared by every layer and stylizer.

    XLA fuses the tile transforms into single passes over memory (unfused,
    TensorFlow's element-wise ops cost more than the products they save) and
    compiles once per input shape, so layers of the same shape share the work.
    """
    if relu not in _COMPILED:
        _COMPILED[relu] = tf.function(lambda x, k, b: winograd_conv(tf, x, k, b, relu=relu), jit_compile=True)
    return _COMPILED[relu](x, kernel16, bias)


def winograd_conv(tf, x, kernel16, bias, relu=True):
    """Reflection-padded 3x3 conv of x [n, h, w, in] with a :func:`winograd_kernel` -> [n, h, w, out].

    Odd sizes get one more (zero) row or column at the end so that the tiles
    cover the image; the extra output is cropped.
    """
    shape = tf.shape(x)
    height, width = shape[1], shape[2]
    padded = reflect_pad(tf, x)
    padded = tf.pad(padded, [[0, 0], [0, height % 2], [0, width % 2], [0, 0]])
    rows, cols = (height + 1) // 2, (width + 1) // 2
    products = tf.linalg.matmul(winograd_tiles(tf, padded), kernel16)  # [16, tiles, out]
    y = tf.nn.bias_add(winograd_untile(tf, products, shape[0], rows, cols)[:, :height, :width], bias)
    return tf.nn.relu(y) if relu else y


# ----------------------------------------------------------------------
# Few output channels, few input channels


def few_outputs_kernel(kernel: np.ndarray) -> np.ndarray:
    """[3, 3, in, out] -> [in, 9 * out]: tap (i, j) is column block 3i + j."""
    return np.transpose(kernel, (2, 0, 1, 3)).reshape(kernel.shape[2], 9 * kernel.shape[3])


def few_outputs_conv(tf, x, kernel_taps, bias, relu=True):
    """Reflection-padded 3x3 conv as one product and nine shifted sums: [n, h, w, in] -> [n, h, w, out].

    Every padded pixel is multiplied by all nine taps at once ([p, in] x
    [in, 9 out]); output (y, x) then adds tap (i, j) of padded pixel (y + i, x + j).
    """
    shape = tf.shape(x)
    padded = reflect_pad(tf, x)
    depth = tf.shape(kernel_taps)[1] // 9
    taps = tf.reshape(tf.linalg.matmul(tf.reshape(padded, [-1, shape[3]]), kernel_taps),
                      [shape[0], shape[1] + 2, shape[2] + 2, 9, depth])
    y = tf.add_n([taps[:, i:i + shape[1], j:j + shape[2], 3 * i + j] for i in range(3) for j in range(3)])
    y = tf.nn.bias_add(y, bias)
    return tf.nn.relu(y) if relu else y


def few_inputs_kernel(kernel: np.ndarray) -> np.ndarray:
    """[3, 3, in, out] -> [9 * in, out], rows in the order of :func:`few_inputs_conv`'s patches."""
    return kernel.reshape(9 * kernel.shape[2], kernel.shape[3])


def few_inputs_conv(tf, x, kernel_patches, bias, relu=True):
    """Reflection-padded 3x3 conv as im2col: [n, h, w, in] -> 9 shifted copies [n, h, w, 9 in] -> one product."""
    shape = tf.shape(x)
    padded = reflect_pad(tf, x)
    patches = tf.concat([padded[:, i:i + shape[1], j:j + shape[2]] for i in range(3) for j in range(3)], axis=3)
    y = tf.nn.bias_add(tf.linalg.matmul(tf.reshape(patches, [-1, 9 * shape[3]]), kernel_patches), bias)
    y = tf.reshape(y, [shape[0], shape[1], shape[2], -1])
    return tf.nn.relu(y) if relu else y


def direct_conv(tf, x, kernel, bias, relu=True):
    """The reference: reflection padding, then ``tf.nn.conv2d`` 'VALID': [n, h, w, in] -> [n, h, w, out]."""
    y = tf.nn.bias_add(tf.nn.conv2d(reflect_pad(tf, x), kernel, strides=1, padding="VALID"), bias)
    return tf.nn.relu(y) if relu else y


# ----------------------------------------------------------------------
# Choosing an algorithm per layer

ALGORITHMS = ("direct", "upsampled", "winograd", "winograd_xla", "few_outputs", "few_inputs")
FEW_CHANNELS = 16  # at most this many input (output) channels: im2col (tap split) beats Eigen's conv
WINOGRAD_MIN_CHANNELS = 128  # Winograd only where both sides have at least this many channels


def choose(channels_in: int, channels_out: int, after_upsample: bool, compiled: bool) -> str:
    """The algorithm for one fp32 reflection-padded 3x3 conv (see the module docstring).

    ``after_upsample``: the conv's input is a nearest 2x upsampling (then the
    conv takes the small image).  ``compiled``: the network runs under XLA
    (``jit_compile``), which fuses Winograd's transforms; unfused, they cost
    more than the products they save.
    """
    if after_upsample:
        return "upsampled"
    if channels_out <= FEW_CHANNELS:
        return "few_outputs"
    if channels_in <= FEW_CHANNELS:
        return "few_inputs"
    if compiled and min(channels_in, channels_out) >= WINOGRAD_MIN_CHANNELS:
        return "winograd"
    return "direct"


_PREPARE = {"direct": lambda k: k, "upsampled": upsampled_kernel, "winograd": winograd_kernel,
            "winograd_xla": winograd_kernel,
            "few_outputs": few_outputs_kernel, "few_inputs": few_inputs_kernel}
_APPLY = {"direct": direct_conv, "upsampled": upsampled_conv, "winograd": winograd_conv,
          "winograd_xla": compiled_winograd_conv,
          "few_outputs": few_outputs_conv, "few_inputs": few_inputs_conv}


class PreparedConv:
    """One reflection-padded 3x3 conv (+ bias, + ReLU if ``relu``) with its kernel transformed once.

    ``kernel`` [3, 3, in, out] and ``bias`` [out] are NumPy; ``dtype`` is the
    TensorFlow compute dtype.  For "upsampled", calling it with x [n, h, w, in]
    returns the conv of x's nearest 2x upsampling, [n, 2h, 2w, out].
    """

    def __init__(self, tf, kernel: np.ndarray, bias: np.ndarray, algorithm: str, dtype, relu: bool = True):
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown convolution algorithm {algorithm!r}; one of {', '.join(ALGORITHMS)}")
        self.algorithm, self.relu = algorithm, relu
        self.shape = tuple(kernel.shape)
        bias = np.tile(bias, 4) if algorithm == "upsampled" else bias
        self.kernel = tf.cast(tf.constant(_PREPARE[algorithm](np.asarray(kernel))), dtype)
        self.bias = tf.cast(tf.constant(bias), dtype)

    def __call__(self, tf, x):
        return _APPLY[self.algorithm](tf, x, self.kernel, self.bias, relu=self.relu)
