"""The grader's cases for each graded function, and the worker process that runs them.

``python -m nst.classroom.grade_cases`` is the worker: it reads one job (a
function's source, the notebook's helper functions) from stdin, prints
``READY``, runs the cases and prints ``RESULT`` with a JSON verdict.  Every
function is checked against the assignment's public test cell (with
TensorFlow 1's seed rule, as in the notebook) and against hidden cases of the
grader's own (other shapes, other seeds, non-square activations, a NumPy array
where the notebook passes one), comparing with the reference solutions in
:mod:`nst.classroom.course`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import sys
from pathlib import Path

from nst.classroom import GRADED_COST_FUNCTIONS
from nst.classroom.grade_hints import (PLACEHOLDER_HINT, check_value, close, content_variants, describe_exception,
                          gram_variants, matches_variant, style_variants)

PRINTED_KEPT_CHARS = 1 << 20  # of model_nn's prints, checked for its first reports (iterations 0 and 20)


def _cost_case(name, fn, placeholders, label, make_inputs, seeded=False, expected=None) -> dict:
    """One case of gram_matrix or a cost function, in a fresh graph: {"case", "passed", "detail", "hint"}.

    ``make_inputs`` builds the arguments (tensors or NumPy arrays); with
    ``seeded`` it runs under TensorFlow 1's op-seed rule, as the notebook's
    test cells do.  ``expected`` is the value the assignment prints, if any.
    """
    import numpy as np
    import tensorflow.compat.v1 as tf

    from nst.classroom import course
    from nst.classroom.tf1_compat import tf1_op_seeds

    tf.reset_default_graph()
    with tf.Session() as session:
        with tf1_op_seeds() if seeded else contextlib.nullcontext():
            inputs = make_inputs()
        reference_tensor = getattr(course, name)(*inputs)
        try:
            output = fn(*inputs)
        except Exception as error:  # the student's code raised
            detail, hint = describe_exception(error, placeholders)
            return {"case": label, "passed": False, "detail": detail, "hint": hint}
        # One session.run for everything: random inputs are drawn once and shared, as in the test cell.
        tensors = [reference_tensor] + [i for i in inputs if not isinstance(i, np.ndarray)]
        student_tensor = isinstance(output, (tf.Tensor, tf.Variable))
        try:
            values = session.run(tensors + ([output] if student_tensor else []))
        except Exception as error:  # evaluating the student's tensor failed
            detail, hint = describe_exception(error, placeholders)
            return {"case": label, "passed": False, "detail": detail, "hint": hint}
        reference_value, drawn = values[0], iter(values[1:len(tensors)])
        numeric_inputs = [i if isinstance(i, np.ndarray) else next(drawn) for i in inputs]
        if name == "gram_matrix":
            variants, want_shape = gram_variants(numeric_inputs[0]), (numeric_inputs[0].shape[0],) * 2
        else:
            variants_of = {"compute_content_cost": content_variants, "compute_layer_style_cost": style_variants}
            variants, want_shape = variants_of[name](*numeric_inputs), ()
        passed, detail, hint = check_value(output, values[-1] if student_tensor else None, want_shape,
                                            reference_value, variants, placeholders)
        if passed and expected is not None:
            tolerance = 5e-6 if np.ndim(expected) == 0 else 5e-7
            if not close(reference_value, expected, rtol=0, atol=tolerance):
                passed, detail = False, "internal: the reference does not give the expected output"
            elif not close(values[-1], expected, rtol=0, atol=tolerance):
                passed, detail = False, f"got {values[-1]}, the assignment expects {expected}"
        return {"case": label, "passed": passed, "detail": detail, "hint": hint}


def _gram_cases(case, activation) -> list[dict]:
    """gram_matrix's public test cell and hidden cases; ``case(label, make_inputs, ...)`` runs one."""
    import tensorflow.compat.v1 as tf

    from nst.classroom.notebook_helpers import EXPECTED_GA

    def public():
        tf.set_random_seed(1)
        return (tf.random_normal([3, 2 * 1], mean=1, stddev=4),)

    def other_seed():
        tf.set_random_seed(5)
        return (tf.random_normal([5, 3], mean=1, stddev=4),)

    results = [case("public test cell (seed 1, A of shape 3x2)", public, seeded=True, expected=EXPECTED_GA)]
    for shape in ((3, 5), (7, 2), (4, 4), (1, 6)):
        results.append(case(f"hidden: A of shape {shape[0]}x{shape[1]}",
                            lambda s=shape: (tf.constant(activation(*s)),)))
    results.append(case("hidden: seed 5, A of shape 5x3", other_seed, seeded=True))
    return results


def _grade_cost_function(name, fn, placeholders):
    """Cases for compute_content_cost, compute_layer_style_cost and gram_matrix."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    rng = np.random.default_rng(2024)
    activation = lambda *shape: rng.normal(1, 4, shape).astype(np.float32)  # noqa: E731
    case = functools.partial(_cost_case, name, fn, placeholders)
    if name == "gram_matrix":
        return _gram_cases(case, activation)

    def public():
        tf.set_random_seed(1)
        first = tf.random_normal([1, 4, 4, 3], mean=1, stddev=4)
        second = tf.random_normal([1, 4, 4, 3], mean=1, stddev=4)
        return first, second

    def other_seed():
        tf.set_random_seed(42)
        first = tf.random_normal([1, 5, 3, 4], mean=1, stddev=4)
        second = tf.random_normal([1, 5, 3, 4], mean=1, stddev=4)
        return first, second

    def numpy_first():
        # As in section 4: the first argument is a NumPy array (sess.run's result), the second a tensor.
        return activation(1, 4, 6, 3), tf.constant(activation(1, 4, 6, 3))

    expected = {"compute_content_cost": 6.76559, "compute_layer_style_cost": 9.19028}[name]
    results = [case("public test cell (seed 1, activations 1x4x4x3)", public, seeded=True, expected=expected)]
    for shape in ((1, 3, 5, 7), (1, 6, 4, 2), (1, 2, 9, 5)):
        results.append(case(f"hidden: activations {'x'.join(map(str, shape))}",
                            lambda s=shape: (tf.constant(activation(*s)), tf.constant(activation(*s)))))
    results.append(case("hidden: seed 42, activations 1x5x3x4", other_seed, seeded=True))
    results.append(case("hidden: first argument a NumPy array, as in section 4 (1x4x6x3)", numpy_first))
    return results


def _grade_total_cost(fn, placeholders):
    import numpy as np
    import tensorflow.compat.v1 as tf

    from nst.classroom import course

    results = []

    def run_case(label, args, kwargs, want_tensor=False, expected=None):
        tf.reset_default_graph()
        with tf.Session() as session:
            args = args() if callable(args) else args
            reference = course.total_cost(*args, **kwargs)
            reference = session.run(reference) if isinstance(reference, tf.Tensor) else reference
            J_content, J_style = [session.run(a) if isinstance(a, tf.Tensor) else a for a in args[:2]]
            alpha, beta = (list(args[2:]) + [kwargs.get("alpha", 10), kwargs.get("beta", 40)][len(args[2:]):])[:2]
            variants = {
                "alpha and beta are swapped: J = alpha * J_content + beta * J_style": alpha * J_style + beta * J_content,
                "ignores the alpha and beta arguments (uses 10 and 40 whatever is passed)": 10 * J_content + 40 * J_style,
                "wrong default values: alpha defaults to 10 and beta to 40": J_content + J_style,
                "multiplied instead of adding the weighted costs": alpha * J_content * beta * J_style,
                "forgot alpha: the content cost is multiplied by alpha": J_content + beta * J_style,
                "forgot beta: the style cost is multiplied by beta": alpha * J_content + J_style,
            }
            try:
                output = fn(*args, **kwargs)
            except Exception as error:
                detail, hint = describe_exception(error, placeholders)
                return results.append({"case": label, "passed": False, "detail": detail, "hint": hint})
            if output is None:
                hint = PLACEHOLDER_HINT if placeholders else "returned None: is there a return statement?"
                return results.append({"case": label, "passed": False, "detail": "returned None", "hint": hint})
            if want_tensor and not isinstance(output, (tf.Tensor, tf.Variable)):
                return results.append({"case": label, "passed": False, "detail": f"returned a {type(output).__name__}",
                                       "hint": "with tensors as costs, total_cost must return a tensor (no sess.run "
                                               "or NumPy inside)"})
            try:
                value = session.run(output) if isinstance(output, (tf.Tensor, tf.Variable)) else np.asarray(output)
                value = np.asarray(value, dtype=np.float64)
            except Exception as error:
                detail, hint = describe_exception(error, placeholders)
                return results.append({"case": label, "passed": False, "detail": detail, "hint": hint})
            passed = value.shape == () and close(value, reference, rtol=1e-6, atol=1e-9)
            if passed and expected is not None and abs(float(value) - expected) > 1e-12:
                passed = False
            detail = "ok" if passed else f"got {value}, expected {reference}"
            hint = None if passed else (matches_variant(value, variants) or "value differs from alpha * J_content + beta * J_style")
            results.append({"case": label, "passed": passed, "detail": detail, "hint": hint})

    np.random.seed(3)
    J_content, J_style = np.random.randn(), np.random.randn()
    run_case("public test cell (np.random.seed(3), default alpha and beta)", (J_content, J_style), {},
             expected=35.34667875478276)
    run_case("hidden: alpha=3, beta=7 as keywords", (2.5, -1.25), {"alpha": 3, "beta": 7})
    run_case("hidden: alpha=0.5, beta=2 positionally", (1.5, 4.0, 0.5, 2), {})
    run_case("hidden: tensors in, tensor out", lambda: (tf.constant(1.5), tf.constant(0.25)), {}, want_tensor=True)
    return results


class _PrintedStart(io.TextIOBase):
    """A write-only text stream that keeps only the first ``limit`` characters written to it.

    model_nn's prints are captured with it, so a loop that prints until the
    time limit cannot fill the worker's memory.
    """

    def __init__(self, limit: int = PRINTED_KEPT_CHARS):
        super().__init__()
        self._parts, self._room = [], limit

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        kept = text[:self._room]
        self._parts.append(kept)
        self._room -= len(kept)
        return len(text)

    def getvalue(self) -> str:
        return "".join(self._parts)


def _image_verdict(output, expected, start, placeholders):
    """(passed, detail, hint) for the image model_nn returned, against the reference's after the same steps."""
    import numpy as np

    if output is None:
        return False, "returned None", PLACEHOLDER_HINT if placeholders else "returned None"
    if np.shape(output) != expected.shape:
        return (False, f"returned shape {np.shape(output)}, expected {expected.shape}",
                "return the generated image, the value of model['input'] (shape (1, n_H, n_W, 3))")
    if close(output, expected, rtol=1e-4, atol=1e-3):
        return True, "ok", None
    if close(output, start, rtol=1e-4, atol=1e-3):
        return False, "returned the starting image", ("the image never changed: run train_step in the loop "
                                                      "and read the result back from model['input']")
    return False, "returned an image other than the trained one", (
        "read the generated image back with sess.run(model['input']) after train_step (a new noise image "
        "or a stale copy is not the result of the optimisation)")


def _grade_model_nn(fn, namespace, placeholders):
    """model_nn on a tiny graph: same image as the reference after the same Adam steps, files and prints."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    from nst.classroom import course

    iterations = 25
    tf.reset_default_graph()
    rng = np.random.default_rng(7)
    target = rng.normal(0, 10, (1, 6, 8, 3)).astype(np.float32)
    start = rng.normal(0, 10, (1, 6, 8, 3)).astype(np.float32)
    model = {"input": tf.Variable(np.zeros((1, 6, 8, 3)), dtype="float32", use_resource=False)}
    J_content = tf.reduce_mean(tf.square(model["input"] - target))
    J_style = tf.reduce_mean(tf.square(model["input"])) * 0.01
    J = total = J_content + 3.0 * J_style
    train_step = tf.train.AdamOptimizer(0.5).minimize(total)
    namespace.update(model=model, J=J, J_content=J_content, J_style=J_style, train_step=train_step,
                     OUTPUT_DIR="output")
    sess = tf.InteractiveSession()
    results = []

    def add(label, passed, detail="ok", hint=None):
        results.append({"case": label, "passed": passed, "detail": detail, "hint": hint})

    printed = _PrintedStart()
    try:
        with contextlib.redirect_stdout(printed):
            output = fn(sess, start.copy(), iterations)
    except Exception as error:
        detail, hint = describe_exception(error, placeholders)
        add(f"hidden: {iterations} Adam steps on a small graph", False, detail, hint)
        sess.close()
        return results
    with contextlib.redirect_stdout(_PrintedStart(0)):
        expected = course.model_nn(sess, start.copy(), iterations, model=model, train_step=train_step, J=J,
                                   J_content=J_content, J_style=J_style, output_dir="reference-output")
    sess.close()
    add(f"hidden: {iterations} Adam steps on a small graph return the trained image",
        *_image_verdict(output, expected, start, placeholders))
    text = printed.getvalue()
    reports = re.findall(r"Iteration (\d+)", text)
    add("prints the costs at iterations 0 and 20", reports[:2] == ["0", "20"] and "total cost" in text,
        f"printed iterations {reports}" if reports[:2] != ["0", "20"] else "ok",
        None if reports[:2] == ["0", "20"] else "print the three costs when i % 20 == 0")
    files = [Path("output") / name for name in ("0.png", "20.png", "generated_image.jpg")]
    missing = [str(f) for f in files if not f.is_file()]
    add("saves output/0.png, output/20.png and output/generated_image.jpg", not missing,
        "ok" if not missing else "missing " + ", ".join(missing),
        None if not missing else "save the image every 20 iterations and at the end with save_image")
    return results


def worker() -> int:
    """Subprocess entry: read one job from stdin, print READY, grade, print RESULT."""
    job = json.loads(sys.stdin.readline())
    token = job["token"]
    result_stream = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the student's code prints goes to stderr, never into the result channel
    sys.stdout = sys.stderr

    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np

    import tensorflow.compat.v1 as tf

    from nst.classroom import course, course_utils

    # The student's functions run as in the notebook, where nst_utils switched eager execution off.
    tf.disable_eager_execution()
    namespace = {"__name__": "student", "tf": tf, "np": np, "os": os,
                 "save_image": course_utils.save_image, "generate_noise_image": course_utils.generate_noise_image,
                 "reshape_and_normalize_image": course_utils.reshape_and_normalize_image,
                 "CONFIG": course_utils.CONFIG}
    name, placeholders = job["name"], job["placeholders"]
    print(f"READY {token}", file=result_stream, flush=True)
    try:
        for helper in job["helpers"].values():
            exec(compile(helper, "<student helper>", "exec"), namespace)
        # Other graded functions come from the reference, so one mistake costs one function only.
        for other in GRADED_COST_FUNCTIONS:
            namespace[other] = getattr(course, other)
        namespace["compute_style_cost"] = course.compute_style_cost
        exec(compile(job["source"], f"<student {name}>", "exec"), namespace)
        fn = namespace[name]
        if name == "total_cost":
            cases = _grade_total_cost(fn, placeholders)
        elif name == "model_nn":
            cases = _grade_model_nn(fn, namespace, placeholders)
        else:
            cases = _grade_cost_function(name, fn, placeholders)
        result = {"cases": cases}
    except Exception as error:  # anything outside the per-case guards
        detail, hint = describe_exception(error, placeholders)
        result = {"cases": [], "error": detail, "hint": hint or detail}
    print(f"RESULT {token} " + json.dumps(result, default=str), file=result_stream, flush=True)
    result_stream.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(worker())
