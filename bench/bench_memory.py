#!/usr/bin/env python3
"""Peak resident memory of the command line at several sizes.

    python bench/bench_memory.py [--sizes 512,1024,2048]

Each size runs ``nst`` in a fresh process on tubingen.jpg / starry_night.jpg,
coarse to fine as by default (the peak is the finest scale's).  Adam's memory peaks in the first step;
L-BFGS' grows until its history is full, so by default it runs two iterations
more than the history holds.  Peak RSS comes from the child's ``ru_maxrss``.

``--malloc both`` (issue 30) runs each size twice, side by side: with the command's
``tune_malloc`` (two arenas, a fixed 1 MiB mmap threshold) and with glibc's own
settings (the function replaced by a no-op before the command starts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_of(command) -> tuple:
    """Run ``command``; return (exit code, peak RSS in MiB of that process, seconds)."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child: exec the command with output captured to a file
        with open(os.environ.get("NST_BENCH_LOG", os.devnull), "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        os.execv(command[0], command)
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,1024,2048")
    parser.add_argument("--iterations", type=int, help="per scale (default: 2 with adam, "
                        "history + 2 with lbfgs)")
    parser.add_argument("--optimizer", default="lbfgs", choices=("adam", "lbfgs"))
    parser.add_argument("--malloc", default="tuned", choices=("tuned", "glibc", "both"),
                        help="the command's malloc tuning, glibc's defaults, or each size both ways")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_fast import cpu_description

    from nst.io import images
    from nst.optimise import stylize

    if args.iterations is None:
        args.iterations = stylize.LBFGS_HISTORY + 2 if args.optimizer == "lbfgs" else 2
    content, style = images.fetch_default_pair()
    starts = {"tuned": [str(Path(sys.executable).with_name("nst"))],
              "glibc": [sys.executable, "-c", "import sys, nst.commands.common as common; "
                        "common.tune_malloc = lambda *a, **k: None; from nst.commands import main; "
                        "sys.argv[0] = 'nst'; sys.exit(main())"]}
    ways = ("tuned", "glibc") if args.malloc == "both" else (args.malloc,)
    print(f"CPU: {cpu_description()}")
    report = {}
    with tempfile.TemporaryDirectory() as scratch:
        for size in (int(s) for s in args.sizes.split(",")):
            for way in ways:
                out = Path(scratch) / f"out{size}.png"
                command = starts[way] + [str(content), str(style), "-o", str(out), "--size", str(size), "--overwrite",
                                         "--iterations", str(args.iterations), "--optimizer", args.optimizer,
                                         "--no-pictures", "-q"]
                code, peak, seconds = peak_rss_of(command)
                state = "ok" if code == 0 and out.exists() else f"FAILED (exit {code})"
                print(f"{size:5d} px, malloc {way:<5} {args.optimizer}: peak RSS {peak:7.0f} MiB, "
                      f"{seconds:6.1f} s for {args.iterations} iterations per scale: {state}", flush=True)
                report[f"{size} {way}"] = {"peak_rss_mib": peak, "seconds": seconds, "ok": code == 0}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
