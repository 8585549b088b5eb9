"""Autograder for the classroom notebook's graded functions.

    python -m nst.grade student.ipynb [more.ipynb | folder ...] [--timeout 60] [--jobs 2]

For each notebook it reads the code cells *without running them*, parses them
with :mod:`ast` and keeps only the top-level ``def`` statements (decorators and
annotations dropped, defaults must be literals).  No other student code runs:
not the imports, not the test cells, nothing at the top level.  Each graded
function is then tested in its own subprocess, with ``tf`` (TensorFlow's TF 1
interface) and ``np`` provided by the grader, a time limit on the student's
code, and a scratch working directory, so a function that raises, loops
forever, crashes the interpreter or returns the wrong type costs only its own
points.

Every function is checked against the assignment's public test cell (with
TensorFlow 1's seed rule, as in the notebook) and against hidden cases of the
grader's own (other shapes, other seeds, non-square activations, a NumPy array
where the notebook passes one), comparing with the reference solutions in
:mod:`nst.course`.  A wrong value is compared with the values that common
mistakes would give, to print a specific hint.

This isolates accidents, not attacks: the student's function runs with the
grader's permissions.  Exit status: 0 when every function of every notebook
passes, 1 when some fail, 2 when an input cannot be used.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import io
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

GRADED = ("compute_content_cost", "gram_matrix", "compute_layer_style_cost", "total_cost", "model_nn")
DEFAULT_TIMEOUT = 60.0
STARTUP_TIMEOUT = 300.0  # importing TensorFlow on a loaded 2-core machine
MAX_TIMEOUT = 86400.0  # --timeout's upper bound (one day); also keeps queue waits within their limit
OUTPUT_TAIL_BYTES = 8192  # what is kept of a worker's stderr: enough for the last lines of a traceback
RESULT_LINE_LIMIT = 1 << 20  # a worker's RESULT line is a few KB; anything longer is not the grader's
PRINTED_KEPT_CHARS = 1 << 20  # of model_nn's prints, checked for its first reports (iterations 0 and 20)
PLACEHOLDER_HINT = ("not implemented yet: the placeholders (None) between ### START CODE HERE ### and "
                    "### END CODE HERE ### are still there")


class UnusableInput(Exception):
    """A notebook that cannot be read at all."""


# ---------------------------------------------------------------------------
# Extraction (parent process): never executes anything from the notebook.

def _cell_python(source: str) -> str:
    """IPython cell text -> plain Python that ast can parse (magics and shell lines become calls or comments)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # IPython missing or confused: comment out the IPython-only lines
        return "\n".join("# " + line if line.lstrip().startswith(("%", "!")) else line
                         for line in source.split("\n"))


def _literal(node) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except Exception:
        return False


def _sanitise(node: ast.FunctionDef) -> tuple[str | None, str | None]:
    """(source, None) of a def that can be defined without running student code, else (None, reason)."""
    node.decorator_list = []
    node.returns = None
    arguments = node.args
    for argument in arguments.posonlyargs + arguments.args + arguments.kwonlyargs + \
            [a for a in (arguments.vararg, arguments.kwarg) if a is not None]:
        argument.annotation = None
    defaults = arguments.defaults + [d for d in arguments.kw_defaults if d is not None]
    if not all(_literal(default) for default in defaults):
        return None, (f"a default argument value of {node.name} is not a plain literal; "
                      "the grader does not evaluate expressions outside the function body")
    return ast.unparse(node), None


def _has_placeholders(node: ast.FunctionDef) -> bool:
    for child in ast.walk(node):
        if isinstance(child, ast.Assign) and isinstance(child.value, ast.Constant) and child.value.value is None:
            return True
        if isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant) and child.value.value is None:
            return True
    return False


def read_code_cells(path: Path) -> list[str]:
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
        cells = notebook["cells"]
        sources = []
        for cell in cells:
            if cell.get("cell_type") == "code":
                source = cell.get("source", "")
                sources.append("".join(source) if isinstance(source, list) else str(source))
        return sources
    except RecursionError:  # the JSON decoder's stack: nesting no notebook needs
        raise UnusableInput(f"{path}: not a readable Jupyter notebook (its JSON is nested too deeply to read); "
                            "re-save it from Jupyter") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, MemoryError) as error:
        raise UnusableInput(f"{path}: not a readable Jupyter notebook ({type(error).__name__}: {error})") from None


def _cell_definitions(raw: str, index: int) -> dict[str, dict]:
    """{name: {"source", "placeholders"} or {"error"}} for the top-level defs of one code cell.

    A cell that cannot be analysed (a syntax error, or nesting deep enough to
    exhaust the parser's stack) yields an error for each graded function it
    appears to define, so it costs those functions only.
    """
    try:
        definitions = {}
        for node in ast.parse(_cell_python(raw)).body:
            if not isinstance(node, ast.FunctionDef):
                continue  # imports, calls, assignments, classes...: never run
            placeholders = _has_placeholders(node)
            source, reason = _sanitise(node)
            definitions[node.name] = {"error": reason} if source is None else {"source": source,
                                                                             "placeholders": placeholders}
        return definitions
    except SyntaxError as error:
        problem = f"syntax error in code cell {index}, which defines {{}}: {error.msg} (line {error.lineno})"
    except (RecursionError, MemoryError) as error:  # ast's recursion limit or the parser's stack
        problem = (f"code cell {index}, which defines {{}}, is nested too deeply for the grader to read "
                   f"({type(error).__name__}); split the deep expression into several statements")
    return {name: {"error": problem.replace("{}", name, 1)} for name in GRADED
            if re.search(rf"^\s*def\s+{name}\s*\(", raw, re.MULTILINE)}


def extract(path: Path) -> dict:
    """{name: {"source", "helpers", "placeholders"} or {"error"}} for the graded functions of a notebook.

    The last definition of a name wins, as it would when running all cells.
    ``helpers`` holds the notebook's other top-level functions (definitions
    only), so a graded function may call a helper the student wrote.
    """
    found: dict[str, dict] = {}
    helpers: dict[str, str] = {}
    for index, raw in enumerate(read_code_cells(path), start=1):
        for name, definition in _cell_definitions(raw, index).items():
            if name in GRADED:
                found[name] = definition
            elif "source" in definition:
                helpers[name] = definition["source"]
    for entry in found.values():
        entry["helpers"] = helpers
    return found


# ---------------------------------------------------------------------------
# Running one function in a subprocess (parent side).  The worker's pipes are
# read as bytes (a student may write anything to them) and only a bounded
# amount is kept, however much the student prints.

def _read_lines(stream, lines: queue.Queue):
    """Queue each line of the worker's result channel (decoded), then None at its end.

    A line longer than RESULT_LINE_LIMIT cannot be one of the grader's and is
    skipped in pieces, so it is never held whole.
    """
    try:
        while line := stream.readline(RESULT_LINE_LIMIT):
            if not line.endswith(b"\n") and len(line) == RESULT_LINE_LIMIT:
                while line and not line.endswith(b"\n"):
                    line = stream.readline(RESULT_LINE_LIMIT)
                continue
            lines.put(line.decode("utf-8", errors="replace"))
    except (OSError, ValueError):  # the pipe went away: treated as its end
        pass
    finally:
        lines.put(None)


class _OutputTail:
    """Drains a binary stream to its end in a thread, keeping only its last ``limit`` bytes.

    Draining matters as much as bounding: a worker whose stderr pipe is full
    blocks, and would be reported as timed out.
    """

    def __init__(self, stream, limit: int = OUTPUT_TAIL_BYTES):
        self._stream, self._limit, self._kept = stream, limit, bytearray()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self):
        try:
            while chunk := self._stream.read1(1 << 16):
                self._kept += chunk
                del self._kept[:-self._limit]
        except (OSError, ValueError):
            pass

    def text(self, wait: float = 5.0) -> str:
        """The kept tail, decoded; waits up to ``wait`` s for the stream's end (a grandchild may hold it open)."""
        self._thread.join(wait)
        return bytes(self._kept).decode("utf-8", errors="replace")


def _start_worker(job: str, scratch: str) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1")
    project_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = project_root + os.pathsep + env.get("PYTHONPATH", "")
    process = subprocess.Popen([sys.executable, "-m", "nst.grade", "--worker"], cwd=scratch, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        process.stdin.write(job.encode("utf-8") + b"\n")
        process.stdin.close()
    except BrokenPipeError:  # the worker died before reading its job: reported as such by the caller
        pass
    return process


def _await_result(lines: queue.Queue, token: str, timeout: float) -> tuple[dict | None, dict | None]:
    """(result, None); (None, {"error", "hint"}) on a time-out; (None, None) when the worker ended without a result."""
    deadline, started = time.monotonic() + STARTUP_TIMEOUT, False
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            if not started:  # the grader's problem, not the student's: no hint
                return None, {"error": f"the grader's worker did not start within {STARTUP_TIMEOUT:g} s", "hint": None}
            what = f"timed out: still running after {timeout:g} s (an infinite loop? a very slow computation?); stopped"
            return None, {"error": what, "hint": what}
        if line is None:
            return None, None
        if line.strip() == f"READY {token}":
            started, deadline = True, time.monotonic() + timeout
        elif line.startswith(f"RESULT {token} "):
            return json.loads(line[len(f"RESULT {token} "):]), None


def _stop(process: subprocess.Popen):
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def run_function(name: str, entry: dict, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """Test one extracted function in a fresh interpreter; always returns a result dict."""
    if "error" in entry:
        return {"name": name, "cases": [], "error": entry["error"], "hint": entry["error"]}
    token = secrets.token_hex(8)
    job = json.dumps({"name": name, "source": entry["source"], "helpers": entry["helpers"],
                      "placeholders": entry["placeholders"], "token": token})
    with tempfile.TemporaryDirectory(prefix="nst-grade-") as scratch:
        process = _start_worker(job, scratch)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
        errors = _OutputTail(process.stderr)
        try:
            result, timed_out = _await_result(lines, token, timeout)
        finally:
            _stop(process)
        if timed_out:
            return {"name": name, "cases": [], **timed_out}
        if result is None:
            tail = errors.text().strip().splitlines()[-3:]
            what = f"the process running {name} died (exit status {process.returncode})"
            return {"name": name, "cases": [], "error": what + (": " + " | ".join(tail) if tail else ""),
                    "hint": what}
        result["name"] = name
        return result


# ---------------------------------------------------------------------------
# Worker side: tests for each function.  Runs in the subprocess only.

def _close(a, b, rtol=1e-4, atol=1e-6):
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _matches_variant(value, variants: dict):
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


def _content_variants(a_C, a_G):
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


def _style_variants(a_S, a_G):
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


def _gram_variants(A):
    import numpy as np

    A = A.astype(np.float64)
    n_C, m = A.shape
    return {
        "computed A^T A; the Gram matrix is A A^T, of shape (n_C, n_C)": A.T @ A,
        "normalised the Gram matrix; gram_matrix returns A A^T itself (the normalisation belongs to the style cost)":
            A @ A.T / m,
        "normalised the Gram matrix by n_C * n_H*n_W; gram_matrix returns A A^T itself": A @ A.T / (n_C * m),
    }


class _Case:
    def __init__(self, label, build, reference, variants=None, expected_text=None):
        self.label, self.build, self.reference = label, build, reference
        self.variants, self.expected_text = variants or {}, expected_text


def _describe_exception(error, placeholders):
    message = (str(error).strip().splitlines() or [""])[0]
    text = f"raised {type(error).__name__}: {message}".strip()
    text = text if len(text) < 300 else text[:297] + "..."
    if placeholders:
        return text, PLACEHOLDER_HINT
    if isinstance(error, NameError):
        return text, ("uses a name the grader does not provide; graded functions may use tf, np and "
                      "functions defined with def in the notebook, not variables set in other cells")
    return text, None


def _check_value(fn_result, value, want_shape, reference_value, variants, placeholders):
    """(passed, detail, hint) for a function that must return a TensorFlow tensor; ``value`` is its evaluation."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    if fn_result is None:
        return False, "returned None", PLACEHOLDER_HINT if placeholders else "returned None: is there a return statement?"
    if not isinstance(fn_result, (tf.Tensor, tf.Variable)):
        try:
            numeric = _close(np.asarray(fn_result, dtype=np.float64), reference_value)
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
        special = _matches_variant(value, variants)
        hint = (f"returned a tensor of shape {list(shape)}, expected a scalar: sum over all entries (tf.reduce_sum)"
                if want_shape == () else f"returned a tensor of shape {list(shape)}, expected {list(want_shape)}")
        return False, f"shape {list(shape)} instead of {list(want_shape)}", special or hint
    if _close(value, reference_value):
        return True, "ok", None
    hint = _matches_variant(value, variants)
    detail = (f"got {np.array2string(np.asarray(value), precision=6, separator=', ')}, expected "
              f"{np.array2string(np.asarray(reference_value), precision=6, separator=', ')}").replace("\n", "")
    if hint is None and np.ndim(value) == 0 and float(reference_value) != 0:
        hint = f"value differs from the reference (ratio {float(value) / float(reference_value):.4g})"
    return False, detail, hint


def _cost_case(name, fn, placeholders, label, make_inputs, seeded=False, expected=None) -> dict:
    """One case of gram_matrix or a cost function, in a fresh graph: {"case", "passed", "detail", "hint"}.

    ``make_inputs`` builds the arguments (tensors or NumPy arrays); with
    ``seeded`` it runs under TensorFlow 1's op-seed rule, as the notebook's
    test cells do.  ``expected`` is the value the assignment prints, if any.
    """
    import numpy as np
    import tensorflow.compat.v1 as tf

    from nst import course
    from nst.tf1_compat import tf1_op_seeds

    tf.reset_default_graph()
    with tf.Session() as session:
        with tf1_op_seeds() if seeded else contextlib.nullcontext():
            inputs = make_inputs()
        reference_tensor = getattr(course, name)(*inputs)
        try:
            output = fn(*inputs)
        except Exception as error:  # the student's code raised
            detail, hint = _describe_exception(error, placeholders)
            return {"case": label, "passed": False, "detail": detail, "hint": hint}
        # One session.run for everything: random inputs are drawn once and shared, as in the test cell.
        tensors = [reference_tensor] + [i for i in inputs if not isinstance(i, np.ndarray)]
        student_tensor = isinstance(output, (tf.Tensor, tf.Variable))
        try:
            values = session.run(tensors + ([output] if student_tensor else []))
        except Exception as error:  # evaluating the student's tensor failed
            detail, hint = _describe_exception(error, placeholders)
            return {"case": label, "passed": False, "detail": detail, "hint": hint}
        reference_value, drawn = values[0], iter(values[1:len(tensors)])
        numeric_inputs = [i if isinstance(i, np.ndarray) else next(drawn) for i in inputs]
        if name == "gram_matrix":
            variants, want_shape = _gram_variants(numeric_inputs[0]), (numeric_inputs[0].shape[0],) * 2
        else:
            variants_of = {"compute_content_cost": _content_variants, "compute_layer_style_cost": _style_variants}
            variants, want_shape = variants_of[name](*numeric_inputs), ()
        passed, detail, hint = _check_value(output, values[-1] if student_tensor else None, want_shape,
                                            reference_value, variants, placeholders)
        if passed and expected is not None:
            tolerance = 5e-6 if np.ndim(expected) == 0 else 5e-7
            if not _close(reference_value, expected, rtol=0, atol=tolerance):
                passed, detail = False, "internal: the reference does not give the expected output"
            elif not _close(values[-1], expected, rtol=0, atol=tolerance):
                passed, detail = False, f"got {values[-1]}, the assignment expects {expected}"
        return {"case": label, "passed": passed, "detail": detail, "hint": hint}


def _gram_cases(case, activation) -> list[dict]:
    """gram_matrix's public test cell and hidden cases; ``case(label, make_inputs, ...)`` runs one."""
    import tensorflow.compat.v1 as tf

    from nst.notebook_helpers import EXPECTED_GA

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

    from nst import course

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
                detail, hint = _describe_exception(error, placeholders)
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
                detail, hint = _describe_exception(error, placeholders)
                return results.append({"case": label, "passed": False, "detail": detail, "hint": hint})
            passed = value.shape == () and _close(value, reference, rtol=1e-6, atol=1e-9)
            if passed and expected is not None and abs(float(value) - expected) > 1e-12:
                passed = False
            detail = "ok" if passed else f"got {value}, expected {reference}"
            hint = None if passed else (_matches_variant(value, variants) or "value differs from alpha * J_content + beta * J_style")
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
    if _close(output, expected, rtol=1e-4, atol=1e-3):
        return True, "ok", None
    if _close(output, start, rtol=1e-4, atol=1e-3):
        return False, "returned the starting image", ("the image never changed: run train_step in the loop "
                                                      "and read the result back from model['input']")
    return False, "returned an image other than the trained one", (
        "read the generated image back with sess.run(model['input']) after train_step (a new noise image "
        "or a stale copy is not the result of the optimisation)")


def _grade_model_nn(fn, namespace, placeholders):
    """model_nn on a tiny graph: same image as the reference after the same Adam steps, files and prints."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    import nst_utils
    from nst import course

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
        detail, hint = _describe_exception(error, placeholders)
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

    import nst_utils
    from nst import course

    tf = nst_utils.tf
    namespace = {"__name__": "student", "tf": tf, "np": np, "os": os,
                 "save_image": nst_utils.save_image, "generate_noise_image": nst_utils.generate_noise_image,
                 "reshape_and_normalize_image": nst_utils.reshape_and_normalize_image, "CONFIG": nst_utils.CONFIG}
    name, placeholders = job["name"], job["placeholders"]
    print(f"READY {token}", file=result_stream, flush=True)
    try:
        for helper in job["helpers"].values():
            exec(compile(helper, "<student helper>", "exec"), namespace)
        # Other graded functions come from the reference, so one mistake costs one function only.
        for other in ("compute_content_cost", "gram_matrix", "compute_layer_style_cost", "total_cost"):
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
        detail, hint = _describe_exception(error, placeholders)
        result = {"cases": [], "error": detail, "hint": hint or detail}
    print(f"RESULT {token} " + json.dumps(result, default=str), file=result_stream, flush=True)
    result_stream.close()
    return 0


# ---------------------------------------------------------------------------
# Reporting

def grade_notebook(path: Path, timeout: float = DEFAULT_TIMEOUT, jobs: int = 2) -> dict:
    """Grade one notebook; returns {"path", "functions": [result...], "seconds", "passed"}."""
    start = time.monotonic()
    found = extract(path)
    entries = {name: found.get(name, {"error": f"{name} is not defined with def at the top level of a code cell"})
               for name in GRADED}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(lambda item: run_function(item[0], item[1], timeout), entries.items()))
    for result in results:
        cases = result.get("cases", [])
        result["passed_cases"] = sum(case["passed"] for case in cases)
        result["total_cases"] = len(cases)
        result["passed"] = bool(cases) and "error" not in result and all(case["passed"] for case in cases)
    return {"path": str(path), "functions": results, "seconds": time.monotonic() - start,
            "passed": all(r["passed"] for r in results)}


def format_report(report: dict) -> str:
    lines = [f"== {report['path']}"]
    for result in report["functions"]:
        status = "PASS" if result["passed"] else "FAIL"
        score = f"{result['passed_cases']}/{result['total_cases']}" if result["total_cases"] else "0/-"
        lines.append(f"  {result['name']:<26} {status}  {score} cases")
        if result.get("error"):
            lines.append(f"      error: {result['error']}")
        hints, shown = [], {}
        for case in result.get("cases", []):
            if not case["passed"]:
                if case["detail"] in shown:  # the same failure again: count it instead of repeating it
                    shown[case["detail"]] += 1
                    continue
                shown[case["detail"]] = 0
                lines.append(f"      x {case['case']}: {case['detail']}")
                if case.get("hint") and case["hint"] not in hints:
                    hints.append(case["hint"])
        repeated = sum(shown.values())
        if repeated:
            lines.append(f"      x ... and {repeated} more case{'s' if repeated > 1 else ''} failing the same way")
        if result.get("hint") and result["hint"] not in hints and result["hint"] != result.get("error"):
            hints.append(result["hint"])
        for hint in hints:
            lines.append(f"      hint: {hint}")
    passed = sum(r["passed"] for r in report["functions"])
    lines.append(f"  score: {passed}/{len(report['functions'])} functions "
                 f"({sum(r['passed_cases'] for r in report['functions'])}/"
                 f"{sum(r['total_cases'] for r in report['functions'])} cases) in {report['seconds']:.1f} s")
    return "\n".join(lines)


def collect(arguments) -> tuple[list[Path], list[str]]:
    notebooks, problems = [], []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.ipynb") if p.is_file())
            if not found:
                problems.append(f"{path}: no .ipynb files in this folder")
            notebooks.extend(found)
        elif path.is_file():
            notebooks.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    return notebooks, problems


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line ``error: ...`` and exit status 2 (no usage dump)."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _seconds(text: str) -> float:
    """--timeout's value: a finite number of seconds in (0, MAX_TIMEOUT] (inf, nan and -1 are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not 0 < value <= MAX_TIMEOUT:  # also false for nan
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_TIMEOUT:g} seconds, not {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return value


def _json_path_problem(target: Path, notebooks: list[Path]) -> str | None:
    """Why --json cannot be written to ``target`` (checked before grading), or None."""
    folder = target.parent
    if not folder.is_dir():
        return f"--json {target}: the folder {folder} does not exist; create it or choose another path"
    if target.is_dir():
        return f"--json {target} is a folder; give a file name"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"--json {target}: the folder {folder} is not writable; choose another path"
    for notebook in notebooks:
        try:
            if target.samefile(notebook):
                return f"--json {target} is one of the notebooks to grade; choose another path"
        except OSError:  # one of the two does not exist (yet): not the same file
            pass
    return None


def write_json_atomically(target: Path, data) -> None:
    """Write ``data`` as JSON to a temporary file beside ``target``, then rename it over ``target``.

    Readers see the old file or the complete new one, never a partial one;
    on any failure the temporary file is removed and ``target`` is untouched.
    """
    from .files import atomic_path

    with atomic_path(target) as temporary, open(temporary, "w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=1, default=str)
        stream.flush()
        os.fsync(stream.fileno())


def _grade_each(notebooks: list[Path], timeout: float, jobs: int, problems: list[str]) -> list[dict]:
    """Reports of the notebooks that could be graded; each failure is added to ``problems`` and the rest go on."""
    reports = []
    for path in notebooks:
        try:
            report = grade_notebook(path, timeout, jobs)
        except UnusableInput as error:
            problems.append(str(error))
            continue
        except Exception as error:  # one notebook's unforeseen failure must not cost the others their marks
            message = (str(error).strip().splitlines() or [""])[0][:200]
            problems.append(f"{path}: could not be graded ({type(error).__name__}: {message}); "
                            "the other notebooks were graded")
            continue
        reports.append(report)
        print(format_report(report), flush=True)
    return reports


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker()
    parser = _Parser(prog="python -m nst.grade", description="Grade the graded functions of classroom notebooks.")
    parser.add_argument("paths", nargs="+", help="student notebooks (.ipynb) or folders of them")
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT,
                        help="seconds a student's function may run per function (default: %(default)s)")
    parser.add_argument("--jobs", type=_positive_int, default=2,
                        help="functions graded in parallel (default: %(default)s)")
    parser.add_argument("--json", metavar="FILE", type=Path,
                        help="also write the full results as JSON (replaced whole, never left partial)")
    args = parser.parse_args(argv)
    notebooks, problems = collect(args.paths)
    if args.json is not None and (why := _json_path_problem(args.json, notebooks)):
        parser.error(why)
    reports = _grade_each(notebooks, args.timeout, args.jobs, problems)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if len(notebooks) > 1:
        ungraded = len(notebooks) - len(reports)
        print(f"== {sum(r['passed'] for r in reports)}/{len(reports)} notebooks pass every function"
              + (f"; {ungraded} could not be graded (see the error lines)" if ungraded else ""))
    if args.json is not None:
        try:
            write_json_atomically(args.json, {"reports": reports, "problems": problems})
        except OSError as error:
            print(f"error: could not write --json {args.json} ({error.strerror or error}); the report above "
                  "is complete", file=sys.stderr)
            return 2
    if problems:
        return 2
    return 0 if all(r["passed"] for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
