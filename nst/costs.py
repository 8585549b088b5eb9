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
    objective); ``target`` [n_H n_W, n_C]: the style's projections on them, each column sorted
    and resampled to n_H n_W quantiles.  Mean over positions and directions of the squared
    difference between the sorted projections: zero exactly when every 1-D marginal matches,
    which a Gram matrix (second moments only) does not ask.
    """
    import tensorflow as tf

    n_H, n_W, n_C = _dims(a_G)
    projections = tf.matmul(tf.reshape(a_G, [n_H * n_W, n_C]), directions)  # [N, n_C]
    ordered = tf.sort(projections, axis=0)  # [N, n_C], each column ascending
    return tf.reduce_mean(tf.square(ordered - target))


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

