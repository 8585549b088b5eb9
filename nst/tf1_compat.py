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


def enable_course_compat() -> None:
    """TF 1.x op seeds and NumPy 1.13 printing, as the course's outputs were made."""
    import numpy as np

    _saved.setdefault("printoptions", np.get_printoptions())
    np.set_printoptions(**COURSE_PRINT_OPTIONS)
    enable_tf1_op_seeds()


def disable_course_compat() -> None:
    """Undo :func:`enable_course_compat`."""
    import numpy as np

    if "printoptions" in _saved:
        np.set_printoptions(**_saved.pop("printoptions"))
    disable_tf1_op_seeds()
