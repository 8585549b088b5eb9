"""The grader's verdicts on one value: right, or which common mistake gives it (with a hint).

Each ``*_variants`` function returns {hint: the value that mistake would give}
for the same inputs, so a wrong answer can be named.  Runs in the worker only.
"""

from __future__ import annotations

PLACEHOLDER_HINT = ("not implemented yet: the placeholders (None) between ### START CODE HERE ### and "
                    "### END CODE HERE ### are still there")


def close(a, b, rtol=1e-4, atol=1e-6):
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def matches_variant(value, variants: dict):
    """The first hint whose wrong value equals ``value`` (relative 1e-3), or None."""
    import numpy as np

    for hint, wrong in variants.items():
        wrong = np.asarray(wrong, dtype=np.float64)
        if np.shape(value) == wrong.shape and np.allclose(value, wrong, rtol=1e-3, atol=1e-9):
            return hint
    return None


def _unroll(a):
    """(1, n_H, n_W, n_C) -> (n_C, n_H*n_W), the right way."""
    _, n_H, n_W, n_C = a.shape
    return a.reshape(n_H * n_W, n_C).T.astype("float64")


def content_variants(a_C, a_G):
    import numpy as np

    _, n_H, n_W, n_C = a_G.shape
    d = (a_C - a_G).astype(np.float64)
    N = n_H * n_W * n_C
    return {
        "forgot the square: square the differences (tf.square) before summing": d.sum() / (4 * N),
        "used absolute differences instead of squared ones (tf.square)": np.abs(d).sum() / (4 * N),
        "took a square root (a norm) of the sum; equation (1) uses the sum of squares itself":
            np.sqrt((d ** 2).sum()) / (4 * N),
        "no normalisation: divide the sum by 4 * n_H * n_W * n_C": (d ** 2).sum(),
        "wrong normalisation constant: the 4 is missing (or tf.reduce_mean was used without the 1/4)":
            (d ** 2).sum() / N,
        "wrong normalisation constant: n_C is missing from 4 * n_H * n_W * n_C": (d ** 2).sum() / (4 * n_H * n_W),
        "divided by the normalisation twice (tf.reduce_mean already divides by n_H * n_W * n_C)":
            (d ** 2).mean() / (4 * N),
    }


def style_variants(a_S, a_G):
    import numpy as np

    _, n_H, n_W, n_C = a_G.shape
    gram = lambda u: u @ u.T  # noqa: E731
    D = gram(_unroll(a_S)) - gram(_unroll(a_G))
    wrong_unroll = lambda a: a.reshape(n_C, n_H * n_W).astype(np.float64)  # noqa: E731
    D_wrong = gram(wrong_unroll(a_S)) - gram(wrong_unroll(a_G))
    M = n_H * n_W
    norm = 4 * n_C ** 2 * M ** 2
    return {
        "unrolled without transposing: reshaping (1, n_H, n_W, n_C) straight to (n_C, n_H*n_W) mixes channels "
        "and positions; reshape to (n_H*n_W, n_C), then tf.transpose (for the content cost this does not "
        "change the value, for the Gram matrix it does)": (D_wrong ** 2).sum() / norm,
        "wrong normalisation constant: the 4 is missing from 4 * n_C^2 * (n_H*n_W)^2": (D ** 2).sum() / (norm / 4),
        "wrong normalisation constant: n_C is not squared (use n_C**2)": (D ** 2).sum() / (4 * n_C * M ** 2),
        "wrong normalisation constant: n_H*n_W is not squared (use (n_H*n_W)**2)": (D ** 2).sum() / (4 * n_C ** 2 * M),
        "wrong normalisation constant: neither n_C nor n_H*n_W is squared": (D ** 2).sum() / (4 * n_C * M),
        "wrong normalisation constant: divided by (4 n_C n_H n_W)^2; only n_C and n_H*n_W are squared, not the 4":
            (D ** 2).sum() / (4 * n_C * M) ** 2,
        "no normalisation: divide the sum by 4 * n_C^2 * (n_H*n_W)^2": (D ** 2).sum(),
        "forgot the square: square the differences of the Gram matrices before summing": D.sum() / norm,
        "divided by the normalisation twice (tf.reduce_mean already divides by n_C^2)": (D ** 2).mean() / norm,
        "took a square root (a norm) of the sum; equation (2) uses the sum of squares itself":
            np.sqrt((D ** 2).sum()) / norm,
    }


def gram_variants(A):
    import numpy as np

    A = A.astype(np.float64)
    n_C, m = A.shape
    return {
        "computed A^T A; the Gram matrix is A A^T, of shape (n_C, n_C)": A.T @ A,
        "normalised the Gram matrix; gram_matrix returns A A^T itself (the normalisation belongs to the style cost)":
            A @ A.T / m,
        "normalised the Gram matrix by n_C * n_H*n_W; gram_matrix returns A A^T itself": A @ A.T / (n_C * m),
    }


def describe_exception(error, placeholders):
    message = (str(error).strip().splitlines() or [""])[0]
    text = f"raised {type(error).__name__}: {message}".strip()
    text = text if len(text) < 300 else text[:297] + "..."
    if placeholders:
        return text, PLACEHOLDER_HINT
    if isinstance(error, NameError):
        return text, ("uses a name the grader does not provide; graded functions may use tf, np and "
                      "functions defined with def in the notebook, not variables set in other cells")
    return text, None


def check_value(fn_result, value, want_shape, reference_value, variants, placeholders):
    """(passed, detail, hint) for a function that must return a TensorFlow tensor; ``value`` is its evaluation."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    if fn_result is None:
        return False, "returned None", PLACEHOLDER_HINT if placeholders else "returned None: is there a return statement?"
    if not isinstance(fn_result, (tf.Tensor, tf.Variable)):
        try:
            numeric = close(np.asarray(fn_result, dtype=np.float64), reference_value)
        except Exception:
            numeric = False
        kind = type(fn_result).__name__
        if numeric:
            return False, f"returned a {kind} with the right value", (
                "returned a NumPy/Python value instead of a TensorFlow tensor: build the result with TensorFlow "
                "operations (no sess.run, .eval() or NumPy inside), so it can be optimised")
        return False, f"returned a {kind}, not a TensorFlow tensor", (
            "must return a TensorFlow tensor built from its inputs with TensorFlow operations")
    shape = np.shape(value)
    if shape != tuple(want_shape):
        special = matches_variant(value, variants)
        hint = (f"returned a tensor of shape {list(shape)}, expected a scalar: sum over all entries (tf.reduce_sum)"
                if want_shape == () else f"returned a tensor of shape {list(shape)}, expected {list(want_shape)}")
        return False, f"shape {list(shape)} instead of {list(want_shape)}", special or hint
    if close(value, reference_value):
        return True, "ok", None
    hint = matches_variant(value, variants)
    detail = (f"got {np.array2string(np.asarray(value), precision=6, separator=', ')}, expected "
              f"{np.array2string(np.asarray(reference_value), precision=6, separator=', ')}").replace("\n", "")
    if hint is None and np.ndim(value) == 0 and float(reference_value) != 0:
        hint = f"value differs from the reference (ratio {float(value) / float(reference_value):.4g})"
    return False, detail, hint
