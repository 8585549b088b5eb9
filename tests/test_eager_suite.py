"""Run the eager NST tests (tests/eager) in a separate process.

``nst_utils`` switches TensorFlow to graph mode for the whole process
(``disable_eager_execution``), which cannot be undone; the eager ``NST`` class
needs eager mode.  So pytest's main run skips ``tests/eager`` (``norecursedirs``
in pyproject.toml) and this test runs it in a fresh interpreter instead.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_eager_suite_passes():
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/eager"],
                            cwd=ROOT, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, "tests/eager failed:\n" + output
    print(output[-2000:])
