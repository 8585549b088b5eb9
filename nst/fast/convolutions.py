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
* :func:`winograd_conv`: Winograd's minimal filtering F(m x m, 3x3) (Lavin and
  Gray, CVPR 2016): (m + 2)^2 batched matrix products [tiles, in] x [in, out]
  per m x m output block instead of 9 m^2 multiply-adds per channel pair;
  m = 2 (16 for 36, "winograd") or m = 4 (36 for 144, "winograd4").
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
# Winograd F(m x m, 3x3), m = 2 or 4: output block = A^T [(G g G^T) * (B^T d B)] A


class WinogradScheme:
    """The matrices of F(m x m, 3x3) (Lavin and Gray, CVPR 2016): tiles of m + 2 pixels at stride m."""

    def __init__(self, output_tile: int, b_t, g, a_t):
        self.output_tile, self.tile = output_tile, output_tile + 2
        self.b_t, self.g, self.a_t = (np.array(m, dtype=np.float64) for m in (b_t, g, a_t))


WINOGRAD = {
    2: WinogradScheme(2, b_t=[[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
                      g=WINOGRAD_G, a_t=[[1, 1, 1, 0], [0, 1, -1, -1]]),
    # Interpolation points 0, 1, -1, 2, -2 and infinity.
    4: WinogradScheme(4, b_t=[[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                              [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
                      g=[[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
                      a_t=[[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
}


def winograd_kernel(kernel: np.ndarray, output_tile: int = 2) -> np.ndarray:
    """[3, 3, in, out] -> [(m + 2)^2, in, out]: G g G^T for each channel pair, tile positions row-major."""
    g = WINOGRAD[output_tile].g
    transformed = np.einsum("ai,ijco,bj->abco", g, kernel.astype(np.float64), g)
    return transformed.reshape(-1, kernel.shape[2], kernel.shape[3])


def _combine(matrix, parts):
    """matrix [rows, len(parts)] applied along one axis: one weighted sum of ``parts`` per row, zeros skipped."""
    sums = []
    for row in matrix:
        terms = [part if c == 1 else -part if c == -1 else part * float(c) for c, part in zip(row, parts) if c]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        sums.append(total)
    return sums


def winograd_tiles(tf, padded, scheme):
    """Padded input [n, m th + 2, m tw + 2, c] -> B^T d B of every tile: [(m + 2)^2, n * th * tw, c]."""
    shape, m = tf.shape(padded), scheme.output_tile
    rows, cols = (shape[1] - 2) // m, (shape[2] - 2) // m
    by_row = _combine(scheme.b_t, [padded[:, k:k + m * rows:m] for k in range(scheme.tile)])  # [n, th, ., c]
    tiles = []
    for part in by_row:
        tiles.extend(_combine(scheme.b_t, [part[:, :, k:k + m * cols:m] for k in range(scheme.tile)]))
    return tf.reshape(tf.stack(tiles), [scheme.tile ** 2, -1, shape[3]])


def winograd_untile(tf, products, scheme, batch, rows, cols):
    """Products [(m + 2)^2, n * th * tw, out] -> A^T M A laid out as the image [n, m th, m tw, out]."""
    depth, t, m = tf.shape(products)[-1], scheme.tile, scheme.output_tile
    grid = tf.reshape(products, [t, t, batch, rows, cols, depth])
    blocks = []
    for row in _combine(scheme.a_t, [grid[a] for a in range(t)]):  # m x [t, n, th, tw, out]
        blocks.append(tf.stack(_combine(scheme.a_t, [row[b] for b in range(t)]), axis=3))  # [n, th, tw, m, out]
    return tf.reshape(tf.stack(blocks, axis=2), [batch, m * rows, m * cols, depth])  # from [n, th, m, tw, m, out]


def winograd_conv(tf, x, kernel_tiles, bias, relu=True):
    """Reflection-padded 3x3 conv of x [n, h, w, in] with a :func:`winograd_kernel` -> [n, h, w, out].

    The scheme follows from the kernel's first axis (16: F(2x2), 36: F(4x4)).
    Sizes that are not a multiple of m get zero rows or columns at the end so
    that the tiles cover the image; the extra output is cropped.
    """
    scheme = WINOGRAD[int(round(kernel_tiles.shape[0] ** 0.5)) - 2]
    m, shape = scheme.output_tile, tf.shape(x)
    height, width = shape[1], shape[2]
    rows, cols = (height + m - 1) // m, (width + m - 1) // m
    padded = tf.pad(reflect_pad(tf, x), [[0, 0], [0, m * rows - height], [0, m * cols - width], [0, 0]])
    products = tf.linalg.matmul(winograd_tiles(tf, padded, scheme), kernel_tiles)  # [t^2, tiles, out]
    y = tf.nn.bias_add(winograd_untile(tf, products, scheme, shape[0], rows, cols)[:, :height, :width], bias)
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

ALGORITHMS = ("direct", "upsampled", "winograd", "winograd4", "few_outputs", "few_inputs")
FEW_CHANNELS = 16  # at most this many input (output) channels: im2col (tap split) beats Eigen's conv
# Winograd only where both sides have at least this many channels: with 64, its products are too thin
# to pay for the transforms (measured on the whole network at 512x512, XLA-compiled, AMD EPYC).
# F(4x4) rather than F(2x2): 4x instead of 2.25x fewer multiplications, 0.82x the CPU time of the
# whole network in the same comparison, at 1e-5 instead of 1e-6 relative rounding error.
WINOGRAD_MIN_CHANNELS = 128


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
        return "winograd4"
    return "direct"


_PREPARE = {"direct": lambda k: k, "upsampled": upsampled_kernel, "winograd": winograd_kernel,
            "winograd4": lambda k: winograd_kernel(k, 4),
            "few_outputs": few_outputs_kernel, "few_inputs": few_inputs_kernel}
_APPLY = {"direct": direct_conv, "upsampled": upsampled_conv, "winograd": winograd_conv, "winograd4": winograd_conv,
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
