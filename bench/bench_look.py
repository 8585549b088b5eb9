#!/usr/bin/env python3
"""Does the result look like the painting at every viewing size?  (issue 13)

    python bench/bench_look.py [--runs before,now] [--pairs 4] [--size 512]

For each content/style pair of the project's samples (``nst.io.images.fetch_sample``) and each named run (the
command line as a user starts it, wall time including start-up), print:

* the content cost (conv4_2, the course's normalisation) between the result
  and the content image, both at the result's size;
* the style cost as a viewer sees the picture: the result and the style image
  each resized to a long side of 512, 256 and 128 px, then the course's
  style cost (0.2 x conv1_1..conv5_1) on per-position Gram matrices
  (G / (n_H n_W)), average pooling, the project's VGG-19;
* a sheet per pair and run in bench/out/: content | style | result | the same
  64 px patch of the flattest region of the content, cut from the result and
  enlarged 4x (where a lattice of specks would show).

Runs: ``before`` is the command line's defaults before issue 13 (single scale,
content 10 / style 40, 200 L-BFGS iterations); ``now`` is today's defaults (no
flags).  Add your own with ``--extra NAME='--flag value ...'``.  ``--baseline REV`` runs each of them
also with the code of git revision REV (runs named NAME@REV, each right after its twin), to see what a
change of the code does.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PAIRS = (("tubingen.jpg", "starry_night.jpg"), ("golden_gate.jpg", "the_scream.jpg"),
         ("tubingen.jpg", "shipwreck.jpg"), ("golden_gate.jpg", "woman-with-hat-matisse.jpg"))
RUNS = {
    "before": "--no-multiscale --content-weight 10 --style-weight 40 --iterations 200 --distribution-weight 0",
    "now": "",
}
VIEW_SIDES = (512, 256, 128)
# jcjohnson/neural-style's published tubingen x starry_night (1000 L-BFGS iterations), measured by
# the author with this metric: content, style at 512 / 256 / 128.
REFERENCE = (0.217, 0.0127, 0.0042, 0.0083)
PATCH = 64  # side of the flat patch, in result pixels
ZOOM = 4
GALLERY_SIDE = 384  # the README's gallery: small JPEGs, a few tens of kB each


def run_cli(content: Path, style: Path, out: Path, flags: str, size: int, code: Path = None) -> float:
    """Run the `nst` command as a user would; return its wall time in seconds.  ``code``: another copy of
    the project whose package runs instead (the weights still this checkout's)."""
    command = [str(ROOT / ".venv" / "bin" / "nst"), str(content), str(style), "-o", str(out), "--overwrite",
               "--size", str(size), "--seed", "0", "--no-pictures", "-q", *shlex.split(flags)]
    env, folder = None, None
    if code is not None:  # run from its folder: ``-m`` puts the working folder first on the path
        folder = code
        command[:1] = [str(ROOT / ".venv" / "bin" / "python"), "-m", "nst"]
        env = {**os.environ, "PYTHONPATH": str(code), "NST_HOME": str(ROOT / "pretrained-model")}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"nst failed ({done.returncode}): {done.stderr.strip()}")
    return seconds


class Judge:
    """The multi-scale look metric on one feature graph (the engine's, average pooling)."""

    def __init__(self):
        from nst.optimise import stylize

        self.layers = [name for name, _ in stylize.DEFAULT_STYLE_LAYERS]
        self.features = stylize.FeatureGraph(stylize.get_weights(), "avg", "conv4_2", self.layers)

    def content_cost(self, result, content) -> float:
        a_g, a_c = self.features.content_features(result), self.features.content_features(content)
        return float(np.sum((a_g - a_c) ** 2) / (4.0 * a_g.size))

    def style_cost(self, result, style) -> float:
        """0.2 x sum over layers of sum((g_S - g_G)^2) / (4 n_C^2), g per position (G / (n_H n_W))."""
        g_r, g_s = self.features.style_grams(result), self.features.style_grams(style)
        return sum(0.2 * float(np.sum((g_r[n] - g_s[n]) ** 2)) / (4.0 * g_r[n].shape[0] ** 2) for n in self.layers)

    def measure(self, result, content, style) -> tuple:
        from nst.io.images import resize, size_for_long_side

        h, w = result.shape[:2]
        row = [self.content_cost(result, resize(content, w, h))]
        for side in VIEW_SIDES:
            rh, rw = size_for_long_side(h, w, side)
            sh, sw = size_for_long_side(*style.shape[:2], side)  # viewed at the same size as the result
            row.append(self.style_cost(resize(result, rw, rh), resize(style, sw, sh)))
        return tuple(row)


def flattest_patch(image: np.ndarray) -> tuple:
    """(top, left) of the PATCH x PATCH window of ``image`` with the least local variation."""
    gray = image.astype(np.float64).mean(axis=2)
    best, where = None, (0, 0)
    for top in range(0, gray.shape[0] - PATCH + 1, PATCH // 4):
        for left in range(0, gray.shape[1] - PATCH + 1, PATCH // 4):
            window = gray[top:top + PATCH, left:left + PATCH]
            busy = np.abs(np.diff(window, axis=0)).mean() + np.abs(np.diff(window, axis=1)).mean()
            if best is None or busy < best:
                best, where = busy, (top, left)
    return where


def save_sheet(path: Path, content, style, result) -> None:
    from nst.optimise import pictures
    from nst.io.images import resize

    h, w = result.shape[:2]
    content = resize(content, w, h)
    top, left = flattest_patch(content)
    crop = result[top:top + PATCH, left:left + PATCH]
    zoomed = np.kron(crop, np.ones((ZOOM, ZOOM, 1), dtype=np.uint8))  # nearest neighbour: every speck shows
    zoomed = resize(zoomed, round(zoomed.shape[1] * h / zoomed.shape[0]), h)
    pictures.save_side_by_side(path, content, [style], np.concatenate(
        [result, np.full((h, 8, 3), 255, np.uint8), zoomed], axis=1))


def save_gallery_jpeg(path: Path, result, long_side: int = GALLERY_SIDE) -> None:
    from PIL import Image

    from nst.io.images import resize, size_for_long_side

    h, w = size_for_long_side(*result.shape[:2], long_side)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(resize(result, w, h)).save(path, quality=85, optimize=True)


def checkout(revision: str) -> Path:
    """The package of git ``revision`` of this repository, extracted into a temporary folder."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="nst-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "nst"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="before,now")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME='FLAGS'")
    parser.add_argument("--pairs", type=int, default=len(PAIRS))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--baseline", metavar="REV", help="also run git revision REV's code with each run's flags, "
                        "side by side with the others (runs named NAME@REV)")
    parser.add_argument("--gallery", type=Path, default=None, metavar="DIR",
                        help="also save the 'now' results as small JPEGs in DIR (the README's gallery: docs/gallery)")
    args = parser.parse_args(argv)
    runs = {name: RUNS[name] for name in args.runs.split(",") if name}
    runs.update(dict(item.split("=", 1) for item in args.extra))
    codes = {}
    if args.baseline:
        code = checkout(args.baseline)
        codes = {f"{name}@{args.baseline}": code for name in runs}
        runs = {key: flags for name, flags in runs.items() for key in (name, f"{name}@{args.baseline}")}

    from nst.io.images import fetch_sample, read_rgb

    out_dir = HERE / "out" / "look"
    out_dir.mkdir(parents=True, exist_ok=True)
    from bench_fast import cpu_description

    print(f"host: {cpu_description()}")
    print(f"{'pair':<40} {'run':<10} {'wall s':>7} {'content':>8} " + " ".join(f"{'style@' + str(s):>10}"
                                                                               for s in VIEW_SIDES))
    timings = {name: [] for name in runs}
    judge = None
    for content_name, style_name in PAIRS[:args.pairs]:
        content_path, style_path = fetch_sample(content_name), fetch_sample(style_name)  # hash-checked
        content, style = read_rgb(content_path), read_rgb(style_path)
        label = f"{Path(content_name).stem} x {Path(style_name).stem}"
        for name, flags in runs.items():  # side by side: every run of a pair before the next pair
            result_path = out_dir / f"{Path(content_name).stem}_{Path(style_name).stem}_{name}.png"
            seconds = run_cli(content_path, style_path, result_path, flags, args.size, codes.get(name))
            timings[name].append(seconds)
            judge = judge or Judge()
            result = read_rgb(result_path)
            row = judge.measure(result, content, style)
            print(f"{label:<40} {name:<10} {seconds:7.1f} {row[0]:8.3f} " + " ".join(f"{v:10.4f}" for v in row[1:]),
                  flush=True)
            save_sheet(result_path.with_name(result_path.stem + "_sheet.png"), content, style, result)
            if args.gallery and name == "now":
                save_gallery_jpeg(args.gallery / f"{result_path.stem[:-len('_now')]}.jpg", result)
    print(f"reference (jcjohnson, tubingen x starry_night): content {REFERENCE[0]}, style "
          + " / ".join(str(v) for v in REFERENCE[1:]))
    for name, values in timings.items():
        print(f"median wall time, {name}: {statistics.median(values):.1f} s over {len(values)} pairs")
    pairs = [("now", "before")] + [(name, f"{name}@{args.baseline}") for name in runs
                                   if args.baseline and name not in codes]
    for new, old in pairs:
        if new in timings and old in timings:
            ratio = statistics.median(b / a for a, b in zip(timings[new], timings[old]))
            print(f"median speed-up of {new} over {old} (same pair, same run of the bench): {ratio:.2f}x")
    print(f"sheets: {out_dir}")
    for folder in set(codes.values()):
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
