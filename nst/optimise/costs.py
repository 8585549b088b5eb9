"""The costs of neural style transfer as small pure functions of tensors.

Normalisations follow the deeplearning.ai assignment (Gatys et al. 2015, eqs. 1
and 2 with the course's constants). Shapes: activations are ``[1, n_H, n_W, n_C]``.
"""

from __future__ import annotations


def _dims(activation):
    _, n_H, n_W, n_C = activation.shape.as_list()
    return n_H, n_W, n_C


def content_cost(a_C, a_G):
    """J_content = sum((a_C - a_G)^2) / (4 n_H n_W n_C)   (course, eq. 1)."""
    import tensorflow as tf

    n_H, n_W, n_C = _dims(a_G)
    return tf.reduce_sum(tf.square(a_C - a_G)) / (4.0 * n_H * n_W * n_C)


def style_gram(activation):
    """Gram matrix of an activation [1, n_H, n_W, n_C] -> [n_C, n_C], computed as F^T F.

    F is the activation reshaped to [n_H * n_W, n_C] (no transpose op).  The
    gradient is written out, dF = F (dG + dG^T): one matmul where TensorFlow's
    generic MatMul gradient would do two (one per operand) plus a sum.
    """
    import tensorflow as tf

    n_H, n_W, n_C = _dims(activation)
    return _gram_of_rows(tf.reshape(activation, [n_H * n_W, n_C]))


def _gram_of_rows(features):
    import tensorflow as tf

    @tf.custom_gradient
    def gram(F):  # F: [positions, n_C]
        def grad(dG):  # dG: [n_C, n_C]
            return tf.matmul(F, dG + tf.transpose(dG))  # [positions, n_C]
        return tf.matmul(F, F, transpose_a=True), grad

    return gram(features)


def layer_style_cost_from_gram(gram_S, a_G):
    """Style cost of one layer against a precomputed style Gram matrix [n_C, n_C]   (course, eq. 2)."""
    import tensorflow as tf

    n_H, n_W, n_C = _dims(a_G)
    return tf.reduce_sum(tf.square(gram_S - style_gram(a_G))) / (4.0 * n_C ** 2 * (n_H * n_W) ** 2)


def layer_style_cost(a_S, a_G):
    """J_style^[l] = sum((G_S - G_G)^2) / (4 n_C^2 (n_H n_W)^2)   (course, eq. 2)."""
    return layer_style_cost_from_gram(style_gram(a_S), a_G)


def distribution_cost(a_G, target, directions):
    """Sliced-Wasserstein distance (Heitz et al. 2021) of one layer's features to the style's.

    a_G [1, n_H, n_W, n_C]; ``directions`` [n_C, n_C] orthonormal (fixed, so L-BFGS sees one
    objective); ``target`` [n_C, n_H n_W]: the style's projections on them, each row sorted
    and resampled to n_H n_W quantiles.  Mean over positions and directions of the squared
    difference between the sorted projections: zero exactly when every 1-D marginal matches,
    which a Gram matrix (second moments only) does not ask.

    Written as mean((P - M)^2), M being each projection's target of the same rank (held constant):
    the same value and gradient as sorting P, with NumPy's sort (see :func:`rank_matched`), which
    is 2 to 4 times faster on a CPU than TensorFlow's (a top-k of every element) and its gradient.
    """
    import tensorflow as tf

    n_H, n_W, n_C = _dims(a_G)
    features = tf.reshape(a_G, [n_H * n_W, n_C])
    projections = tf.matmul(directions, features, transpose_a=True, transpose_b=True)  # [n_C, N]
    matched = tf.numpy_function(rank_matched, [projections, target], tf.float32, stateful=False)
    matched = tf.stop_gradient(tf.ensure_shape(matched, projections.shape))  # [n_C, N]
    return tf.reduce_mean(tf.square(projections - matched))


def rank_matched(values, target, argsort=None):
    """values, target float32 [rows, N], each row of ``target`` sorted -> [rows, N]: every value
    replaced by its row's target at the value's rank (ties, and in long rows values within one quantum of
    :func:`_argsort_rows`, by position).  Rows are split over threads.  ``argsort``: another ranking of
    rows (:func:`_argsort_rows_exact` for the exact one), for measurements and tests."""
    import numpy as np

    matched = np.empty_like(values)
    argsort = argsort or _argsort_rows

    def rows(part):
        np.put_along_axis(matched[part], argsort(values[part]), target[part], axis=1)

    pool, workers = sort_threads()
    bounds = np.linspace(0, len(values), min(workers, len(values)) + 1).astype(int)
    parts = [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]
    list(pool.map(rows, parts))
    return matched


# Rows of at least QUANTISED_MIN_VALUES values are ranked on 32-bit keys (the value quantised linearly over
# its row, above its position) where at least QUANTISED_MIN_BITS bits are left for the value: at the
# default run's finest scale (64 rows of 196,608 at conv1_1, 14 bits; 128 of 49,152 at conv2_1, 16 bits)
# one sort of half the bytes, 1.4-2.1x faster than the 64-bit exact keys, for matched targets well under
# 1 % (rms) of the term's gradient away from the exact ones (bench/experiment_rank_keys.py, issue 30).
# Shorter rows are cheap to sort exactly; longer ones would leave too few bits.
QUANTISED_MIN_VALUES, QUANTISED_MIN_BITS = 2 ** 15, 14


def _argsort_rows(values):
    """argsort of each row of float32 [rows, N] (integers), by one in-place integer sort: NumPy sorts
    integers with SIMD, several times faster than an argsort.  Exact for short rows; long rows are
    ranked on their values quantised to 14 bits or more (:data:`QUANTISED_MIN_BITS`), values inside one
    quantum by position."""
    position_bits = max(1, (values.shape[1] - 1).bit_length())
    if values.shape[1] >= QUANTISED_MIN_VALUES and 32 - position_bits >= QUANTISED_MIN_BITS:
        return _argsort_rows_quantised(values, 32 - position_bits, position_bits)
    return _argsort_rows_exact(values)


def _argsort_rows_exact(values):
    """64-bit keys: the value's bits made order-preserving as an int32 (IEEE 754: flip the magnitude of
    negatives), then the position."""
    import numpy as np

    bits = values.view(np.int32)
    keys = (bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))).astype(np.int64)
    keys <<= 32
    keys |= np.arange(values.shape[1], dtype=np.int64)
    keys.sort(axis=1)
    keys &= 0xFFFFFFFF
    return keys


def _argsort_rows_quantised(values, value_bits: int, position_bits: int):
    """uint32 keys: each row's value mapped linearly from [row min, row max] onto 0 .. 2^value_bits - 1,
    shifted above its position (value_bits + position_bits <= 32)."""
    import numpy as np

    top = np.float32((1 << value_bits) - 1)
    low, high = values.min(axis=1, keepdims=True), values.max(axis=1, keepdims=True)  # [rows, 1]
    quantum = values - low  # [rows, N], one temporary, scaled and clipped in place
    quantum *= top / np.maximum(high - low, np.float32(1e-30))
    np.minimum(quantum, top, out=quantum)  # rounding may step past the top
    keys = quantum.astype(np.uint32) << np.uint32(position_bits)  # [rows, N]
    keys |= np.arange(values.shape[1], dtype=np.uint32)
    keys.sort(axis=1)
    keys &= np.uint32((1 << position_bits) - 1)
    return keys


_SORT_POOL = []  # [(ThreadPoolExecutor, its number of threads)], made at the first use


def sort_threads():
    """A small thread pool for :func:`rank_matched` (NumPy releases the GIL while it sorts)."""
    if not _SORT_POOL:
        import os
        from concurrent.futures import ThreadPoolExecutor

        workers = max(1, min(4, os.cpu_count() or 1))
        _SORT_POOL.append((ThreadPoolExecutor(workers, thread_name_prefix="nst-sort"), workers))
        os.register_at_fork(after_in_child=_SORT_POOL.clear)  # a forked worker has none of the threads
    return _SORT_POOL[0]


def total_variation(image):
    """Sum of squared differences between neighbouring pixels of [1, h, w, 3], per pixel.

    Not in the course: a smoothness prior (Mahendran and Vedaldi 2015) that the
    command line offers as ``--tv-weight``.
    """
    import tensorflow as tf

    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    pixels = float(image.shape[1] * image.shape[2])
    return (tf.reduce_sum(tf.square(dy)) + tf.reduce_sum(tf.square(dx))) / pixels

