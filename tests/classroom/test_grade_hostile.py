"""The grader under hostile input (issue 11, item 8): bounded memory, binary output, deep nesting, bad options."""

import contextlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from test_grade import ROOT, solution_with

# The course's public cells and hidden cases per function (tests/classroom/test_grade.py's fixture grades them all).
GRAM_CASES, TOTAL_COST_CASES = 6, 4
PRINTED_MB = 200
# A function that writes this much to stderr on every call overflows a pipe (64 KiB on Linux) many times over.
BINARY_BYTES_PER_CALL = 256 * 1024

LOUD_TOTAL_COST = ("    J = alpha * J_content + beta * J_style",
                   "    total_cost.calls = getattr(total_cost, 'calls', 0) + 1\n"
                   "    if total_cost.calls == 1:  # once: 200 MB in lines of 1000 characters\n"
                   f"        for _ in range({PRINTED_MB * 1000}):\n"
                   "            print('x' * 999)\n"
                   "    J = alpha * J_content + beta * J_style")
BINARY_GRAM = ("    GA = tf.matmul(A, tf.transpose(A))",
               "    import os\n"
               f"    os.write(2, bytes(range(256)) * {BINARY_BYTES_PER_CALL // 256})  # invalid UTF-8\n"
               "    GA = tf.matmul(A, tf.transpose(A))")

# Runs the grader and reports its own peak resident memory (not its workers'), in KiB on Linux.
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so a grader started from a
# pytest process that already holds TensorFlow and VGG-19 would report the parent's 2 GB.
PEAK_WRAPPER = ("import re, sys\n"
                "from nst.grade import main\n"
                "code = main(sys.argv[1:])\n"
                "status = open('/proc/self/status').read()\n"
                "print('PEAK_RSS_KIB', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), flush=True)\n"
                "sys.exit(code)\n")


def notebook_with_only(functions, replacements=()):
    """The solution notebook reduced to the code cells defining ``functions`` (the others are not graded)."""
    notebook = solution_with(replacements)
    notebook.cells = [cell for cell in notebook.cells if cell.cell_type == "code"
                      and any(f"def {name}(" in cell.source for name in functions)]
    return notebook


def code_notebook(source):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source)]
    return notebook


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory):
    """One grader run over a loud notebook and two deeply nested ones, with --json into its own folder."""
    folder = tmp_path_factory.mktemp("hostile")
    nbformat.write(notebook_with_only(("gram_matrix", "total_cost"), [BINARY_GRAM, LOUD_TOTAL_COST]),
                   folder / "a_loud.ipynb")
    depth = 100_000
    (folder / "b_deep_json.ipynb").write_text('{"cells": [' + "[" * depth + "]" * depth + '], "nbformat": 4}')
    nbformat.write(code_notebook("def gram_matrix(A):\n    return A" + " + A" * depth), folder / "c_deep_code.ipynb")
    out = tmp_path_factory.mktemp("out")
    json_path = out / "results.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    completed = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, str(folder), "--json", str(json_path)],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    results = json.loads(json_path.read_text()) if json_path.exists() else None
    return completed, results, out


def function_report(results, stem, name):
    report = next(r for r in results["reports"] if Path(r["path"]).stem == stem)
    return next(f for f in report["functions"] if f["name"] == name)


def test_printing_200_mb_keeps_the_graders_memory_small(hostile_batch):
    completed, results, _ = hostile_batch
    peak_mib = int(completed.stdout.rsplit("PEAK_RSS_KIB", 1)[1]) / 1024
    # The grader alone peaks near 25 MiB here; keeping the printed output would need at least 200.
    assert peak_mib < PRINTED_MB / 2, f"grader peaked at {peak_mib:.0f} MiB"
    loud = function_report(results, "a_loud", "total_cost")
    assert loud["passed"] and loud["passed_cases"] == TOTAL_COST_CASES, loud


def test_binary_bytes_on_stderr_do_not_stop_grading(hostile_batch):
    completed, results, _ = hostile_batch
    gram = function_report(results, "a_loud", "gram_matrix")
    assert gram["passed"] and gram["passed_cases"] == GRAM_CASES, gram
    assert "Traceback" not in completed.stderr and "UnicodeDecodeError" not in completed.stderr


def test_deeply_nested_notebooks_cost_only_themselves(hostile_batch):
    completed, results, out = hostile_batch
    assert completed.returncode == 2  # an unusable input
    # Only the notebook whose JSON cannot be read is an error; the folder's other notebooks were graded.
    lines = error_lines(completed.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "b_deep_json.ipynb" in lines[0], lines
    assert "nested too deeply" in lines[0]
    assert "1 could not be graded" in completed.stdout
    assert sorted(Path(r["path"]).name for r in results["reports"]) == ["a_loud.ipynb", "c_deep_code.ipynb"]
    assert len(results["problems"]) == 1 and "b_deep_json.ipynb" in results["problems"][0]
    deep_code = function_report(results, "c_deep_code", "gram_matrix")
    assert not deep_code["passed"] and "nested too deeply" in deep_code["error"], deep_code
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]  # no temporary file left beside it


@pytest.fixture
def student(tmp_path):
    """A notebook that would be graded (and print a report) if the options were accepted."""
    path = tmp_path / "student.ipynb"
    nbformat.write(notebook_with_only(("total_cost",)), path)
    return path


@pytest.mark.parametrize("options", [
    ["--timeout", "inf"], ["--timeout", "nan"], ["--timeout", "-1"], ["--timeout", "0"], ["--timeout", "1e9"],
    ["--timeout", "soon"], ["--jobs", "0"],
    ["--json", "{tmp}/missing/results.json"], ["--json", "{tmp}"], ["--json", "{tmp}/student.ipynb"],
], ids=lambda options: " ".join(options).replace("{tmp}", "TMP"))
def test_bad_options_are_refused_before_grading(student, options):
    folder = student.parent
    before = student.read_bytes()
    options = [option.replace("{tmp}", str(folder)) for option in options]
    command = [sys.executable, "-m", "nst.grade", str(student), *options]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    lines = error_lines(completed.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr
    assert completed.stdout == ""  # nothing graded
    assert sorted(p.name for p in folder.iterdir()) == ["student.ipynb"] and student.read_bytes() == before


def test_json_is_replaced_whole_or_not_at_all(tmp_path):
    from nst.classroom.grade_report import write_json_atomically

    class Unprintable:
        def __str__(self):
            raise RuntimeError("cannot be written")

    target = tmp_path / "results.json"
    target.write_text('{"reports": "previous run"}')
    # json.dump has written part of the file when it reaches the object it cannot convert.
    with pytest.raises(RuntimeError):
        write_json_atomically(target, {"reports": [{"path": "a.ipynb"}] * 1000, "problems": [Unprintable()]})
    assert target.read_text() == '{"reports": "previous run"}'
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    write_json_atomically(target, {"reports": [], "problems": ["x"]})
    assert json.loads(target.read_text()) == {"reports": [], "problems": ["x"]}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as an ordinary new file, not mkstemp's 0600


def test_an_unforeseen_failure_costs_one_notebook(tmp_path, monkeypatch, capsys):
    from nst.classroom import grade_report as grader

    # Notebooks without graded functions need no worker: grading them is instant.
    for name in ("a_fine.ipynb", "b_trips_a_bug.ipynb"):
        nbformat.write(code_notebook("x = 1"), tmp_path / name)
    real_extract = grader.extract

    def extract(path):
        if path.name == "b_trips_a_bug.ipynb":
            raise ZeroDivisionError("a bug in the grader")
        return real_extract(path)

    monkeypatch.setattr(grader, "extract", extract)
    json_path = tmp_path / "results.json"
    assert grader.main([str(tmp_path), "--json", str(json_path)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "b_trips_a_bug.ipynb: could not be graded (ZeroDivisionError" in lines[0], lines
    results = json.loads(json_path.read_text())
    assert [Path(r["path"]).name for r in results["reports"]] == ["a_fine.ipynb"]


def test_model_nn_prints_are_kept_only_up_to_a_bound():
    from nst.classroom.grade_cases import PRINTED_KEPT_CHARS, _PrintedStart

    printed = _PrintedStart()
    with contextlib.redirect_stdout(printed):
        print("Iteration 0 :\ntotal cost = 1.0")
        for _ in range(PRINTED_KEPT_CHARS // 1000 * 3):  # three times the bound
            print("y" * 999)
    kept = printed.getvalue()
    assert len(kept) == PRINTED_KEPT_CHARS and kept.startswith("Iteration 0 :\ntotal cost = 1.0\nyyy")


def test_a_fifo_is_called_a_fifo_and_never_opened(tmp_path):
    # It was reported as "no such file or folder"; opening it to read would block the grader for ever.
    fifo = tmp_path / "student.ipynb"
    os.mkfifo(fifo)
    command = [sys.executable, "-m", "nst.grade", str(fifo)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2 and completed.stdout == ""
    assert error_lines(completed.stderr) == [f"error: {fifo} is a FIFO (named pipe), not a notebook file; give a "
                                             f".ipynb file or a folder of them"], completed.stderr
    assert os.listdir(tmp_path) == ["student.ipynb"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
