"""The second course's task files: generated from one template, current, standalone.

The spec's rule (each file imports only numpy and tensorflow, and runs with
its main beside it) is checked on the files as committed, and each main is run
in a fresh folder that holds only the task file, the main, the Keras weights
file and the two images, with nothing of the project on the path.
"""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nst.classroom import eager_tasks

ROOT = Path(__file__).resolve().parents[2]
MAINS_DIR = ROOT / "examples" / "class_mains"
ALLOWED_IMPORTS = {"numpy", "tensorflow"}


def imported_modules(path: Path) -> set:
    """Top-level names of every module a file imports, anywhere in it (including __import__ calls)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add((node.module or ".").split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("__import__", "import_module"):
            found.add("<dynamic import>")
    return found


def test_the_generated_files_are_current():
    result = subprocess.run([sys.executable, "-m", "nst.classroom.eager_tasks", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_names_a_stale_file(tmp_path):
    (tmp_path / "class_tasks").mkdir()
    for path, text in eager_tasks.targets(tmp_path).items():
        path.write_text(text)
    assert eager_tasks.stale(tmp_path) == []
    edited = tmp_path / "class_tasks" / "4-neural_style.py"
    edited.write_text(edited.read_text().replace("mean squared", "mean"))
    assert eager_tasks.stale(tmp_path) == [edited]


@pytest.mark.parametrize("task", eager_tasks.TASKS)
def test_each_task_file_imports_only_numpy_and_tensorflow(task):
    path = ROOT / "class_tasks" / eager_tasks.file_name(task)
    assert imported_modules(path) == ALLOWED_IMPORTS, path
    text = path.read_text()
    assert "#%" not in text and "@TASK@" not in text and "@SUMMARY@" not in text


def test_later_tasks_leave_no_trace_in_earlier_files():
    """A task file holds nothing a later task adds: method names and the var weight."""
    later = {7: ("compute_grads", "_gradients_and_costs"), 8: ("generate_image", "adam_update"),
             9: ("variational_cost", "self.var", "J_var")}
    for task, names in later.items():
        text = (ROOT / "class_tasks" / eager_tasks.file_name(task)).read_text()
        assert not [name for name in names if name in text], task
    assert "iterations must be positive and less" not in (ROOT / "class_tasks" / "9-neural_style.py").read_text()


@pytest.mark.parametrize("template, message", [
    ("a\n#% if task >= 3\nb\n", "not closed"),
    ("#% end\n", "unexpected"),
    ("#% if size > 2\n#% end\n", "cannot read the condition"),
    ("#% loop\n", "unexpected"),
])
def test_a_malformed_template_is_refused(template, message):
    with pytest.raises(eager_tasks.TemplateError, match=message):
        eager_tasks.render(3, template)


def test_blocks_nest_and_branch():
    template = "#% if task >= 2\nA\n#% if task == 3\nB\n#% elif task > 3\nC\n#% else\nD\n#% end\n#% end\nE\n"
    assert [eager_tasks.render(task, template) for task in (1, 2, 3, 4)] == ["E\n", "A\nD\nE\n", "A\nB\nE\n",
                                                                             "A\nC\nE\n"]


@pytest.mark.parametrize("bad", [-1, 11, 1.0, "7"])
def test_render_rejects_unknown_tasks(bad):
    with pytest.raises(ValueError, match="task must be an integer from 0 to 10"):
        eager_tasks.render(bad)


@pytest.fixture(scope="session")
def keras_weights_file(weights_path):
    from nst.weights.keras_vgg import ensure_keras_vgg19
    from nst.weights.load import WEIGHTS_DIR

    return ensure_keras_vgg19(weights_path, WEIGHTS_DIR)


@pytest.mark.parametrize("task", eager_tasks.TASKS)
def test_each_main_runs_with_only_its_task_file_beside_it(task, tmp_path, keras_weights_file):
    from nst.io.images import fetch_sample

    shutil.copy(ROOT / "class_tasks" / eager_tasks.file_name(task), tmp_path)
    shutil.copy(MAINS_DIR / f"{task}-main.py", tmp_path)
    shutil.copy(keras_weights_file, tmp_path / keras_weights_file.name)
    (tmp_path / "images").mkdir()
    for name in ("starry_night.jpg", "golden_gate.jpg"):
        shutil.copy(fetch_sample(name), tmp_path / "images" / name)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment.update(MPLBACKEND="Agg", NST_MAIN_ITERATIONS="2", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, f"{task}-main.py"], cwd=tmp_path, env=environment,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()
    if task >= 1:  # the model loaded the file beside it, not Keras' download
        assert "Downloading" not in result.stdout + result.stderr
