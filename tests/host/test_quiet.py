"""TensorFlow's start-up lines stay off a command's stderr (nst.host.quiet); every other line gets through."""

import os
import subprocess
import sys
from pathlib import Path

from nst.host import quiet

ROOT = Path(__file__).resolve().parents[2]
# What TensorFlow 2.21 printed at import on the project's hosts, whatever TF_CPP_MIN_LOG_LEVEL said.
START_UP_LINES = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796193858.562960    5586 port.cc:153] oneDNN custom operations are on. You may see slightly "
    b"different numerical results due to floating-point round-off errors from different computation orders. "
    b"To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    b"I0000 00:00:1796191470.612267   19973 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    b"available CPU instructions in performance-critical operations.",
    b"To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, "
    b"rebuild TensorFlow with the appropriate compiler flags.",
]


def test_the_filter_drops_the_start_up_lines_and_passes_the_rest_in_order(capfd):
    with quiet.filtered_stderr():
        os.write(2, b"first\n")
        for line in START_UP_LINES:
            os.write(2, line + b"\n")
        os.write(2, b"I0000 a line of some other library\nlast\n")
    assert capfd.readouterr().err == "first\nI0000 a line of some other library\nlast\n"


def test_a_command_process_imports_tensorflow_quietly():
    code = ("import sys; from nst.host import quiet; quiet.install(); print('before', file=sys.stderr, flush=True); "
            "import tensorflow as tf; tf.constant(1.0) + 1; print('after', file=sys.stderr)")
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}  # as in a user's shell
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0 and done.stderr == b"before\nafter\n", done.stderr.decode(errors="replace")


def test_nst_tf_log_brings_tensorflow_lines_back():
    """NST_TF_LOG=1: the user asked for TensorFlow's own lines (the start-up ones among them)."""
    code = ("import sys; from nst.host import quiet; quiet.install(); "
            "import tensorflow as tf; tf.constant(1.0) + 1")
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env[quiet.SHOW_LOGS_ENV] = "1"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0
    assert quiet.START_UP.search(done.stderr), done.stderr.decode(errors="replace")
