"""The NST class files follow the spec's style rules: pycodestyle 2.4, a shebang, executable."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLASS_FILES = [ROOT / "neural_style.py", *sorted((ROOT / "class_tasks").glob("*.py")),
               *sorted((ROOT / "examples" / "class_mains").glob("*.py"))]


def test_class_files_exist():
    names = {path.name for path in CLASS_FILES}
    tasks = [str(n) for n in range(10)] + ["100"]
    assert {task + "-neural_style.py" for task in tasks} <= names
    assert {str(n) + "-main.py" for n in range(11)} <= names


def test_pycodestyle_2_4_passes():
    version = subprocess.run([sys.executable, "-m", "pycodestyle", "--version"],
                             capture_output=True, text=True)
    assert version.returncode == 0, "pycodestyle is missing: pip install -r requirements.txt"
    assert version.stdout.startswith("2.4."), version.stdout  # the spec's version
    result = subprocess.run([sys.executable, "-m", "pycodestyle", *map(str, CLASS_FILES)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shebang_newline_and_executable():
    for path in CLASS_FILES:
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env python3\n"), path
        assert text.endswith("\n"), path
        assert path.stat().st_mode & 0o111, path
