#!/usr/bin/env python3
"""Where a short command's wall time goes (issue 31).

    python bench/bench_startup.py [--repeats 3] [--peer PATH/TO/styletransfer-lite]

Two commands as a user runs them, each in a cold process, ``--repeats`` times, alternating:

* ``nst CONTENT STYLE -o out.png --method fast`` on one 512 px image, at the precision ``auto`` picks
  and at ``fp32`` (the path of a host without bfloat16 units: ONNX Runtime in float32), each with a
  painting new to the command (its statistics store emptied first) and with the painting of the run
  before (its statistics read from the store, :mod:`nst.fast.style_store`);
* ``nst CONTENT STYLE -o out.png --size 64 --iterations 1`` (the optimisation's fixed costs);
* with ``--peer``, the styletransfer-lite command (installed in a scratch venv for the measurement
  only) on the same pair at ``--max-size 512``, the peer issue 31 compares with.

For each: the median wall time and peak RSS of the whole command, and a breakdown measured by a
second process that runs the same steps one by one with a clock between them: the interpreter's
start, importing the command line, importing the runtime (ONNX Runtime, which the command uses for a
few images in float32, with its convolutions as the command picks them and all direct; OpenVINO, which
it uses for a few images where the CPU has bfloat16 units, at the precision "auto" gives; TensorFlow),
reading and checking the weights, building the network, the first stylisation, and writing the image.
Prints the CPU model it ran on.  The commands run with ``NST_HOME`` in a scratch folder holding copies of
the weights, after one untimed run each that builds the models kept there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

# nst.fast.stylizer.RUNTIMES, and ONNX Runtime with every conv direct (FastStylizer(convolutions="direct")).
RUNTIMES = ("openvino", "onnx", "onnx-direct", "tensorflow")
# The steps of the fast command, one by one, on the runtime given; prints {step: seconds} as JSON.
FAST_STEPS = r"""
import json, sys, time
marks = [("interpreter", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import nst.commands, nst.commands.image, nst.commands.fast
mark("import the command line")
from nst.host import quiet; quiet.install()
runtime, convolutions = sys.argv[4].split("-")[0], (sys.argv[4].split("-") + ["auto"])[1]
if runtime == "onnx":
    import onnxruntime
elif runtime == "openvino":  # as the command loads it: the extension without the package's __init__
    from nst.fast.openvino_network import _compiled_core; _compiled_core()
else:
    import tensorflow
mark("import " + runtime)
from nst.weights.fetch import fast_weights_for_use
from nst.weights.load import load_decoder, load_vgg19
encoder, decoder = fast_weights_for_use()
# As the command does: TensorFlow's path reads the weights first; the others pass the paths,
# and the stylizer reads them only when no model was built from them before (nst.fast.onnx_network).
networks = (encoder, decoder) if runtime != "tensorflow" else (load_vgg19(encoder), load_decoder(decoder))
mark("find (and for TensorFlow read) the weights")
from nst.fast.stylizer import FastStylizer
stylizer = FastStylizer(*networks, runtime=runtime, convolutions=convolutions, compiled=False)
mark("build the network")
from nst.io.images import read_rgb, resize, save_rgb, size_for_long_side
content, style = read_rgb(sys.argv[1]), read_rgb(sys.argv[2])
h, w = size_for_long_side(*content.shape[:2], 512)
sh, sw = size_for_long_side(*style.shape[:2], 512)  # the command's default --style-size: the content's side
result = stylizer.stylize(resize(content, w, h), [resize(style, sw, sh)])
mark("first stylisation (512 px)")
save_rgb(sys.argv[3], result)
mark("write the image")
print(json.dumps({name: round(t - marks[i][1], 3) for i, (name, t) in enumerate(marks[1:])}))
"""


def run(command: list, env: dict) -> tuple:
    """(wall seconds, peak RSS MB, stdout) of one cold run; the peak is this child's own (``wait4``)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command[:6])} ... failed: {err.read().strip()[-500:]}")
        return wall, usage.ru_maxrss / 1024, out.read()


def scratch_home(folder: Path) -> Path:
    """A weights folder of copies of the fast method's and the optimisation's files with their records."""
    from nst.weights.fetch import ensure_fast_weights, weights_for_use

    folder.mkdir()
    for path in {*ensure_fast_weights(), weights_for_use()}:
        for source in (path, path.with_name(path.name + ".sha256")):
            shutil.copy2(source, folder / source.name)
    return folder


def timed_commands(content: Path, style: Path, out: Path) -> tuple:
    """({name: our command}, names of the runs whose painting must be new: the store is emptied before them)."""
    ours = [sys.executable, "-m", "nst", str(content), str(style), "-o", str(out), "--overwrite", "-q"]
    fast = {"nst --method fast (512 px)": [*ours, "--method", "fast"],
            # What a host without bfloat16 units (the Zen 3) runs: ONNX Runtime in float32.
            "nst --method fast --precision fp32 (512 px)": [*ours, "--method", "fast", "--precision", "fp32"]}
    commands, forget = {}, set()
    for name, command in fast.items():
        commands[name + ", new painting"] = command
        forget.add(name + ", new painting")
        commands[name + ", same painting again"] = command
    commands["nst --size 64 --iterations 1"] = [*ours, "--size", "64", "--iterations", "1", "--no-pictures"]
    return commands, forget


def main(argv=None) -> int:
    from bench_fast import cpu_description

    from nst.fast.style_store import STYLE_STORE_FOLDER
    from nst.io.images import fetch_default_pair

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer", help="the styletransfer-lite command of a scratch venv, run alternately with ours")
    args = parser.parse_args(argv)
    content, style = fetch_default_pair()
    # As a user's shell: TensorFlow's log level unset, and compiled bytecode written and read (a sandbox
    # that sets PYTHONDONTWRITEBYTECODE would otherwise compile every module of the project at each start).
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONDONTWRITEBYTECODE")}
    print(f"CPU: {cpu_description()}")
    with tempfile.TemporaryDirectory() as scratch:
        out, home = Path(scratch) / "out.png", scratch_home(Path(scratch) / "home")
        env["NST_HOME"] = str(home)
        commands, forget = timed_commands(content, style, out)
        if args.peer:
            commands["styletransfer-lite (512 px)"] = [args.peer, "stylize", str(content), "--style-image", str(style),
                                                       "--max-size", "512", "-o", str(out.with_name("peer.png"))]
        walls = {name: [] for name in commands}
        peaks = {name: [] for name in commands}
        steps = {runtime: [] for runtime in RUNTIMES}
        run([sys.executable, "-c", "pass"], env)  # warm the file cache
        baseline = statistics.median(run([sys.executable, "-c", "pass"], env)[0] for _ in range(3))
        for command in commands.values():  # builds the models kept in the weights folder, untimed
            run(command, env)
        for _ in range(args.repeats):
            for name, command in commands.items():
                if name in forget:
                    shutil.rmtree(home / STYLE_STORE_FOLDER, ignore_errors=True)
                wall, peak, _ = run(command, env)
                walls[name].append(wall)
                peaks[name].append(peak)
            for runtime in RUNTIMES:
                steps[runtime].append(json.loads(run([sys.executable, "-c", FAST_STEPS, str(content), str(style),
                                                      str(out), runtime], env)[2].strip().splitlines()[-1]))
    print(f"python -c pass: {baseline:.2f} s")
    for name in commands:
        print(f"{name}: median wall {statistics.median(walls[name]):.2f} s "
              f"({', '.join(f'{w:.2f}' for w in walls[name])}), peak RSS {max(peaks[name]):.0f} MB")
    print("one fast 512 px image step by step (median of the runs, seconds):")
    print(f"  {'step':<44} " + " ".join(f"{runtime:>10}" for runtime in RUNTIMES))
    for index in range(len(steps[RUNTIMES[0]][0])):
        names = [list(steps[runtime][0])[index] for runtime in RUNTIMES]
        label = names[0] if names[0] == names[-1] else "import the runtime"
        values = [statistics.median(list(run_.values())[index] for run_ in steps[runtime]) for runtime in RUNTIMES]
        print(f"  {label:<44} " + " ".join(f"{value:10.2f}" for value in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
