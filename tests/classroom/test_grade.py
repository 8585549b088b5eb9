"""The autograder (python -m nst.grade): marks, hints, isolation, exit codes."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILDER_PATH = ROOT / "notebooks" / "build_notebooks.py"
FUNCTIONS = ("compute_content_cost", "gram_matrix", "compute_layer_style_cost", "total_cost", "model_nn")


def load_builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", BUILDER_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solution_with(replacements, extra_cells=()):
    """The solution notebook with (old, new) source replacements, each of which must apply once."""
    notebook = load_builder().build()
    for old, new in replacements:
        hits = [cell for cell in notebook.cells if cell.cell_type == "code" and old in cell.source]
        assert len(hits) == 1, f"replacement target not found exactly once: {old!r}"
        hits[0].source = hits[0].source.replace(old, new)
    for source in extra_cells:
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    return notebook


def grade(*paths, timeout=60, jobs=2, json_path=None):
    command = [sys.executable, "-m", "nst.grade", *map(str, paths), "--timeout", str(timeout), "--jobs", str(jobs)]
    if json_path:
        command += ["--json", str(json_path)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


# Classic mistakes, each confined to one function.
STYLE_NO_TRANSPOSE = [
    ("a_S = tf.transpose(tf.reshape(a_S, [n_H * n_W, n_C]))", "a_S = tf.reshape(a_S, [n_C, n_H * n_W])"),
    ("a_G = tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C]))", "a_G = tf.reshape(a_G, [n_C, n_H * n_W])"),
    # The same shortcut in the content cost is harmless (a sum over all entries): it must still pass.
    ("a_C_unrolled = tf.transpose(tf.reshape(a_C, [n_H * n_W, n_C]))", "a_C_unrolled = tf.reshape(a_C, [n_C, n_H * n_W])"),
    ("a_G_unrolled = tf.transpose(tf.reshape(a_G, [n_H * n_W, n_C]))", "a_G_unrolled = tf.reshape(a_G, [n_C, n_H * n_W])"),
]
STYLE_NO_FOUR = [("/ (4 * n_C ** 2 * (n_H * n_W) ** 2)", "/ (n_C ** 2 * (n_H * n_W) ** 2)")]


@pytest.fixture(scope="module")
def graded_folder(tmp_path_factory):
    """One grader run over a folder: solution, exercise, two classic mistakes, and a hostile notebook."""
    folder = tmp_path_factory.mktemp("students")
    marker = folder / "MARKER_top_level_code_ran"
    builder = load_builder()
    nbformat.write(builder.build(), folder / "a_solution.ipynb")
    (folder / "b_exercise.ipynb").write_text(builder.EXERCISE.read_text())
    nbformat.write(solution_with(STYLE_NO_TRANSPOSE), folder / "c_style_no_transpose.ipynb")
    nbformat.write(solution_with(STYLE_NO_FOUR), folder / "d_style_missing_four.ipynb")
    hostile = solution_with(
        [("    GA = tf.matmul(A, tf.transpose(A))", "    while True:\n        pass")],
        extra_cells=[
            f"open({str(marker)!r}, 'w').write('top-level cell')",
            f"import pathlib\n_ = pathlib.Path({str(marker)!r}).write_text('import cell')",
            # A decorator and a default value are evaluated when a def runs: the grader must drop or refuse them.
            f"def mark(f):\n    open({str(marker)!r}, 'w').write('decorator')\n    return f\n\n"
            "@mark\ndef total_cost(J_content, J_style, alpha = 10, beta = 40):\n"
            "    return float(alpha * J_content + beta * J_style) if isinstance(J_content, float) "
            "else alpha * J_content + beta * J_style",
            f"def compute_content_cost(a_C, a_G, _=open({str(marker)!r}, 'w')):\n    return 0",
            "def model_nn(sess, input_image, num_iterations = 200):\n    import os\n    os._exit(3)",
        ])
    nbformat.write(hostile, folder / "e_hostile.ipynb")
    json_path = folder.parent / f"{folder.name}-results.json"
    completed = grade(folder, timeout=20, json_path=json_path)
    reports = {Path(r["path"]).stem: {f["name"]: f for f in r["functions"]} for r in json.loads(json_path.read_text())["reports"]}
    return completed, reports, marker


def hints(result):
    return " ".join([result.get("hint") or ""] + [case.get("hint") or "" for case in result.get("cases", [])])


@pytest.mark.slow
def test_solution_gets_full_marks(graded_folder):
    completed, reports, _ = graded_folder
    assert all(reports["a_solution"][name]["passed"] for name in FUNCTIONS), completed.stdout
    assert "score: 5/5 functions" in completed.stdout
    assert completed.returncode == 1  # other notebooks in the folder fail
    assert "1/5 notebooks pass every function" in completed.stdout


@pytest.mark.slow
def test_untouched_exercise_scores_zero_with_a_message_per_function(graded_folder):
    completed, reports, _ = graded_folder
    exercise = reports["b_exercise"]
    for name in FUNCTIONS:
        assert not exercise[name]["passed"] and exercise[name]["passed_cases"] == 0
        assert "not implemented yet" in hints(exercise[name]), (name, exercise[name])
    block = completed.stdout.split("b_exercise.ipynb")[1].split("==")[0]
    assert block.count("hint: not implemented yet") == len(FUNCTIONS)
    assert "score: 0/5 functions" in block


@pytest.mark.slow
def test_unrolling_without_transpose_fails_the_style_cost_only(graded_folder):
    _, reports, _ = graded_folder
    report = reports["c_style_no_transpose"]
    assert [name for name in FUNCTIONS if not report[name]["passed"]] == ["compute_layer_style_cost"]
    assert "unrolled without transposing" in hints(report["compute_layer_style_cost"])
    # The same shortcut in the content cost gives the same value, so it passes.
    assert report["compute_content_cost"]["passed"]


@pytest.mark.slow
def test_missing_four_fails_the_style_cost_only(graded_folder):
    _, reports, _ = graded_folder
    report = reports["d_style_missing_four"]
    assert [name for name in FUNCTIONS if not report[name]["passed"]] == ["compute_layer_style_cost"]
    style_hints = hints(report["compute_layer_style_cost"])
    assert "the 4 is missing" in style_hints and "without transposing" not in style_hints


@pytest.mark.slow
def test_hostile_notebook_is_survived(graded_folder):
    completed, reports, marker = graded_folder
    report = reports["e_hostile"]
    assert not marker.exists(), "student code outside graded function bodies was executed"
    assert "timed out" in report["gram_matrix"]["error"]
    assert "not a plain literal" in report["compute_content_cost"]["error"]
    assert "died" in report["model_nn"]["error"]
    assert report["compute_layer_style_cost"]["passed"]  # untouched, and isolated from the broken gram_matrix
    # The decorator was dropped; total_cost returns a Python float for floats and a tensor for tensors: passes.
    assert report["total_cost"]["passed"]
    assert "e_hostile.ipynb" in completed.stdout and "timed out" in completed.stdout


@pytest.mark.slow
def test_wrong_type_and_not_a_tensor_hint(tmp_path):
    notebook = solution_with([("    GA = tf.matmul(A, tf.transpose(A))",
                               "    value = tf.get_default_session().run(A)\n    GA = value @ value.T"),
                              ("    J = alpha * J_content + beta * J_style", "    J = beta * J_content + alpha * J_style")])
    nbformat.write(notebook, tmp_path / "student.ipynb")
    completed = grade(tmp_path / "student.ipynb", json_path=tmp_path / "r.json")
    report = {f["name"]: f for f in json.loads((tmp_path / "r.json").read_text())["reports"][0]["functions"]}
    assert completed.returncode == 1
    assert [name for name in FUNCTIONS if not report[name]["passed"]] == ["gram_matrix", "total_cost"]
    assert "instead of a TensorFlow tensor" in hints(report["gram_matrix"])
    assert "alpha and beta are swapped" in hints(report["total_cost"])


def test_extraction_keeps_only_top_level_defs(tmp_path):
    from nst.classroom.grade_extraction import extract

    marker = tmp_path / "marker"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%matplotlib inline\nimport numpy as np",
        f"open({str(marker)!r}, 'w')",
        "def gram_matrix(A):\n    return None",
        "def gram_matrix(A):\n    GA = tf.matmul(A, tf.transpose(A))\n    return GA",  # the last one wins
        "def helper(x: int = 3) -> int:\n    return x",
        "if True:\n    def total_cost(J_content, J_style):\n        return 0",  # not top level
        "def compute_content_cost(a_C, a_G:\n    pass",  # syntax error
    )]
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    found = extract(path)
    assert "tf.matmul" in found["gram_matrix"]["source"] and not found["gram_matrix"]["placeholders"]
    assert "total_cost" not in found
    assert "syntax error in code cell 7" in found["compute_content_cost"]["error"]
    assert found["gram_matrix"]["helpers"] == {"helper": "def helper(x=3):\n    return x"}
    assert not marker.exists()


def test_unusable_input_exit_code_2(tmp_path):
    (tmp_path / "broken.ipynb").write_text("{not json")
    completed = grade(tmp_path / "broken.ipynb")
    assert completed.returncode == 2 and "not a readable Jupyter notebook" in completed.stderr
    completed = grade(tmp_path / "missing.ipynb")
    assert completed.returncode == 2 and "no such file" in completed.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    completed = grade(empty)
    assert completed.returncode == 2 and "no .ipynb files" in completed.stderr
