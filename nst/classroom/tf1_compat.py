"""Make cells written for TensorFlow 1 print TensorFlow 1's numbers on TensorFlow 2.

Two differences matter for the course's test cells (see ../shared/FACTS.md §1):

1. **Op seeds.** With a graph seed set and no op seed, TF 1.x gave a random op
   the id of the graph's last operation (``graph._last_id``) as its op seed;
   TF 2.x counts 0, 1, 2, ... per graph instead.  The random kernel is the same,
   so restoring the seed restores the numbers.  ``_last_id`` is gone in TF 2.21;
   the number of operations already in the graph is the same value (3 for the
   first ``random_normal`` of the cells, 9 for the second).
2. **Printing.** NumPy >= 1.14 prints float32 scalars and arrays with fewer
   digits than NumPy 1.13, which the course's expected outputs were printed with.
   ``legacy="1.13"`` restores the scalars and the column layout, but not how
   1.13 wrote an array's fractions: eight decimals of the exact value (not the
   shortest unique digits), each element's trailing zeros shown as spaces
   (``20.6864624 ]]``, where ``floatmode="fixed"`` alone gives ``20.68646240]]``).
   While the course mode is on, a small wrapper around NumPy's float
   formatter adds that last rule.

Both are opt-in and undoable: use :func:`tf1_op_seeds` as a context manager, or
:func:`enable_course_compat` / :func:`disable_course_compat` around notebook cells.
"""

from __future__ import annotations

import contextlib

_saved = {}


def _tf1_get_seed(original):
    from tensorflow.python.eager import context
    from tensorflow.python.framework import ops

    def get_seed(op_seed):
        if op_seed is None and not context.executing_eagerly():
            graph = ops.get_default_graph()
            if graph.seed is not None:
                # TF 1.x: op_seed = graph._last_id, the id of the newest op.
                op_seed = len(graph.get_operations())
        return original(op_seed)

    get_seed.tf1_semantics = True
    return get_seed


def enable_tf1_op_seeds() -> None:
    """Derive unseeded ops' seeds the TF 1.x way in graph mode (until disabled)."""
    from tensorflow.python.framework import random_seed

    if getattr(random_seed.get_seed, "tf1_semantics", False):
        return
    _saved["get_seed"] = random_seed.get_seed
    random_seed.get_seed = _tf1_get_seed(random_seed.get_seed)


def disable_tf1_op_seeds() -> None:
    """Restore TensorFlow 2's own op-seed rule."""
    from tensorflow.python.framework import random_seed

    if "get_seed" in _saved:
        random_seed.get_seed = _saved.pop("get_seed")


@contextlib.contextmanager
def tf1_op_seeds():
    """Context manager: TF 1.x op seeds inside, TF 2's outside."""
    already = "get_seed" in _saved
    enable_tf1_op_seeds()
    try:
        yield
    finally:
        if not already:
            disable_tf1_op_seeds()


# NumPy 1.13's printing: eight decimals for float32 arrays, six significant
# digits for float32 scalars (so `str(J.eval())` reads "6.76559").
COURSE_PRINT_OPTIONS = dict(legacy="1.13", floatmode="fixed", precision=8)


def _float_format_class():
    """NumPy's array float formatter (its module moved in NumPy 2)."""
    try:
        from numpy._core import arrayprint
    except ImportError:  # NumPy 1.x
        from numpy.core import arrayprint
    return arrayprint.FloatingFormat


def _numpy113_fill_format(original):
    """Wrap ``FloatingFormat.fillFormat``: in the course's print mode, trim each element's zeros.

    Applies only to positional (not exponent) formatting under
    ``COURSE_PRINT_OPTIONS`` (legacy 1.13, fixed, non-unique digits).  The
    digits stay the exact value's ``precision`` decimals; every element's
    trailing zeros are dropped and the column is padded on the right to the
    longest remaining fraction, as NumPy 1.13 did.
    """
    import numpy as np

    def fill_format(self, data):
        original(self, data)
        if self.exp_format or self.floatmode != "fixed" or self._legacy > 113:
            return
        finite = data[np.isfinite(data)]
        if finite.size == 0:
            return
        fractions = [np.format_float_positional(x, precision=self.precision, unique=False,
                                                fractional=True, trim=".").split(".")[1]
                     for x in finite]
        self.pad_right = max(len(fraction) for fraction in fractions)
        self.trim = "."
        self.min_digits = 0

    fill_format.numpy113 = True
    return fill_format


def enable_course_compat() -> None:
    """TF 1.x op seeds and NumPy 1.13 printing, as the course's outputs were made."""
    import numpy as np

    _saved.setdefault("printoptions", np.get_printoptions())
    np.set_printoptions(**COURSE_PRINT_OPTIONS)
    formatter = _float_format_class()
    if not getattr(formatter.fillFormat, "numpy113", False):
        _saved["fillFormat"] = formatter.fillFormat
        formatter.fillFormat = _numpy113_fill_format(formatter.fillFormat)
    enable_tf1_op_seeds()


def disable_course_compat() -> None:
    """Undo :func:`enable_course_compat`."""
    import numpy as np

    if "printoptions" in _saved:
        np.set_printoptions(**_saved.pop("printoptions"))
    if "fillFormat" in _saved:
        _float_format_class().fillFormat = _saved.pop("fillFormat")
    disable_tf1_op_seeds()
