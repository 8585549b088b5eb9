#!/usr/bin/env python3
"""The 4 px lattice of a print run (issue 32): where it forms, and what removes it, at sizes one can repeat.

    PYTHONPATH=$PWD .venv/bin/python bench/experiment_print_lattice.py --print-pipeline [--tv-schedules 0,0,0,0 ...]
    PYTHONPATH=$PWD .venv/bin/python bench/experiment_print_lattice.py --print-crop [--iterations 25] [--tv 0 1e-2]
    PYTHONPATH=$PWD .venv/bin/python bench/experiment_print_lattice.py --compare-prints BEFORE.png AFTER.png
    PYTHONPATH=$PWD .venv/bin/python bench/experiment_print_lattice.py [--size 1024] [--source-side 256]
                                                                       [--iterations 6 25] [--tv 0 1e-4 1e-3]

A 4096 px run leaves rows and columns at multiples of 4 px more different from their neighbours than the
others (1.59x, bench/RESULTS.md; bench_print.lattice), seen at 100 % as a mesh of bright specks.

* ``--print-pipeline``: the faithful copy.  The print run's scales 512-4096 px on a 256x192 crop of the
  sources, run at 128-1024 px with ``--style-scale 4`` so that the picture and the painting are enlarged as
  at 4096 px; one scale at a time, each stage's picture saved and measured, with each schedule of TV
  weights; a sheet of the last stage against the same region of bench/out/print/opt_4096.png.
* ``--print-crop``: the last scale only, started from the 4096 px result's crop halved and enlarged (so
  the start already carries the mesh).
* ``--compare-prints BEFORE AFTER``: two 4096 px results (bench_print's opt_4096.png before and after a
  change): each one's lattice figure, a sheet of both at the 128 px block where each one's lattice is
  strongest (enlarged 3x), a sheet of both at 100 % over the README's crop region, and that crop of AFTER
  as the README's JPEG (docs/gallery/tubingen_starry_opt_4096_crop.jpg).
* Otherwise: the last scale at ``--size`` after the default run at half the size (cached), from sources
  shrunk to ``--source-side``.

Each variant prints its costs (content, style, distribution, TV), lattice and time, and saves its picture
in bench/out/print/; the sheets (lattice_*_sheet.png) show each variant's 128 px crop where the first
picture's lattice is strongest (the 128 px block with the largest lattice figure), enlarged 3x.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
OUT = HERE / "out" / "print"
BLOCK = 128


def block_lattice(image: np.ndarray, block: int = BLOCK) -> tuple:
    """(top, left) of the ``block`` px square whose own lattice figure is the largest."""
    from bench_print import lattice

    best, where = -1.0, (0, 0)
    for top in range(0, image.shape[0] - block + 1, block // 2):
        for left in range(0, image.shape[1] - block + 1, block // 2):
            figure = lattice(image[top:top + block, left:left + block])
            if figure > best:
                best, where = figure, (top, left)
    return where


def save_sheet(path: Path, named: list, where: tuple) -> None:
    """One row: each (name, uint8 image) cropped at ``where``, BLOCK px, enlarged 3x, labelled."""
    from PIL import Image, ImageDraw

    top, left = where
    tiles = []
    for name, image in named:
        crop = Image.fromarray(image[top:top + BLOCK, left:left + BLOCK]).resize((3 * BLOCK, 3 * BLOCK), Image.NEAREST)
        canvas = Image.new("RGB", (3 * BLOCK, 3 * BLOCK + 20), "white")
        canvas.paste(crop, (0, 20))
        ImageDraw.Draw(canvas).text((4, 4), name, fill="black")
        tiles.append(canvas)
    sheet = Image.new("RGB", (sum(t.width for t in tiles), tiles[0].height), "white")
    for index, tile in enumerate(tiles):
        sheet.paste(tile, (index * tile.width, 0))
    sheet.save(path)


def run_variants(content, style, start, args, **settings) -> list:
    """[(name, uint8 result)] of N iterations from ``start`` at ``args.size`` for each N and TV weight."""
    from bench_print import lattice

    from nst.io.images import save_rgb
    from nst.optimise.stylize import Settings, stylize

    named = []
    for count in args.iterations:
        for tv in args.tv:
            result = stylize(content, [style], Settings(size=args.size, multiscale=False, iterations=count, init=start,
                                                        tv_weight=tv, seed=0, **settings))
            c = result.costs
            shown = {key: float(c[key]) for key in ("content", "style", "distribution", "tv") if c.get(key) is not None}
            named.append((f"N={count} tv={tv:g}", result.image))
            save_rgb(OUT / f"lattice_{args.tag}_N{count}_tv{tv:g}.png", result.image)
            print(f"N={count} tv={tv:g}: lattice {lattice(result.image):.3f}, "
                  + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()) + f", {result.elapsed:.0f} s", flush=True)
    return named


def print_crop(content, style, args) -> int:
    """The ``--print-crop`` variant (see its help)."""
    from bench_print import lattice

    from nst.io.images import read_rgb
    from nst.optimise.colour import resize_float

    printed = read_rgb(OUT / "opt_4096.png")[512:1280, 2048:3072]  # [768, 1024, 3]
    start = resize_float(resize_float(printed.astype(np.float32), 384, 512), 768, 1024)
    print(f"the 4096 px result's crop: lattice {lattice(printed):.3f}", flush=True)
    args.size, args.tag = 1024, "print_crop"
    named = [("4096 px run", printed)]
    named += run_variants(content[128:320, 512:768], style, start, args, style_scale=4.0)
    where = block_lattice(printed)
    path = OUT / "lattice_print_crop_sheet.png"
    save_sheet(path, named, where)
    print(f"sheet {path.relative_to(HERE.parent)} (crops at y {where[0]}, x {where[1]})")
    return 0


GALLERY_BOX = (590, 1090, 2168, 2968)  # rows, columns of the README's 100 % crops (the fast one's region too)
GALLERY_CROP = HERE.parent / "docs" / "gallery" / "tubingen_starry_opt_4096_crop.jpg"


def compare_prints(before_path: Path, after_path: Path) -> int:
    """The ``--compare-prints`` variant (see the module's docstring)."""
    from bench_print import lattice
    from PIL import Image

    from nst.io.images import read_rgb

    OUT.mkdir(parents=True, exist_ok=True)
    named = [("before", read_rgb(before_path)), ("after", read_rgb(after_path))]
    for name, image in named:
        print(f"{name}: lattice {lattice(image):.3f} ({image.shape[1]}x{image.shape[0]})", flush=True)
    for name, image in named:
        where = block_lattice(image)
        figures = ", ".join(f"{other} {lattice(picture[where[0]:where[0] + BLOCK, where[1]:where[1] + BLOCK]):.3f}"
                            for other, picture in named)
        path = OUT / f"print_before_after_worst_{name}.png"
        save_sheet(path, named, where)
        print(f"block where {name}'s lattice is largest (y {where[0]}, x {where[1]}): {figures}; "
              f"sheet {path.relative_to(HERE.parent)}", flush=True)
    top, bottom, left, right = GALLERY_BOX
    crops = [Image.fromarray(image[top:bottom, left:right]) for _, image in named]
    sheet = Image.new("RGB", (2 * (right - left) + 8, bottom - top), "white")
    for index, crop in enumerate(crops):
        sheet.paste(crop, (index * (right - left + 8), 0))
    sheet.save(OUT / "print_before_after_100.png")
    crops[1].save(GALLERY_CROP, quality=90)
    print(f"100 % sheet {(OUT / 'print_before_after_100.png').relative_to(HERE.parent)} (before | after, rows "
          f"{top}-{bottom}, columns {left}-{right}); README crop {GALLERY_CROP.relative_to(HERE.parent)}")
    return 0


def smooth_enlarged(painting: np.ndarray, long_side: int) -> np.ndarray:
    """``painting`` at ``long_side``, enlarged smoothly where it grows (nst.io.images.resize_painting, which
    came out of this experiment; ``--style-blur`` measured it before the engine used it)."""
    from nst.io.images import resize_painting, size_for_long_side

    height, width = size_for_long_side(*painting.shape[:2], long_side)
    return resize_painting(painting, width, height)


def print_pipeline(content, style, args) -> int:
    """The ``--print-pipeline`` variant (see its help): each stage's picture and lattice."""
    from bench_print import lattice

    from nst.io.images import read_rgb, save_rgb
    from nst.optimise.stylize import Settings, stylize

    crop, start = content[128:320, 512:768], "content"  # [192, 256, 3]
    for tv_schedule in args.tv_schedules:
        weights = [float(w) for w in tv_schedule.split(",")]
        tag = tv_schedule + ("_blur" if args.style_blur else "")
        for side, count, tv in zip((128, 256, 512, 1024), (80, 40, 25, 25), weights):
            painting = smooth_enlarged(style, 4 * side) if args.style_blur else style
            result = stylize(crop, [painting], Settings(size=side, multiscale=False, iterations=count, init=start,
                                                        tv_weight=tv, seed=0, style_scale=4.0))
            start = result.image
            c = result.costs
            save_rgb(OUT / f"lattice_pipeline_{tag}_{side}.png", result.image)
            print(f"tv {tv_schedule}, {side} px (print {4 * side} px), {count} iterations: lattice "
                  f"{lattice(result.image):.3f}, content {c['content']:.4g}, style {c['style']:.4g}, "
                  f"distribution {c['distribution']:.4g}, tv {c['tv']:.4g}, {result.elapsed:.0f} s", flush=True)
        start = "content"
    printed = read_rgb(OUT / "opt_4096.png")[512:1280, 2048:3072]  # the same region of the 4096 px run
    suffix = "_blur" if args.style_blur else ""
    finals = [(f"tv {schedule}{suffix}", read_rgb(OUT / f"lattice_pipeline_{schedule}{suffix}_1024.png"))
              for schedule in args.tv_schedules]
    where = block_lattice(printed)
    path = OUT / f"lattice_pipeline{suffix}_sheet.png"
    save_sheet(path, [("4096 px run", printed)] + finals, where)
    print(f"sheet {path.relative_to(HERE.parent)} (crops at y {where[0]}, x {where[1]})")
    return 0


def main(argv=None) -> int:
    from bench_fast import cpu_description
    from bench_print import lattice

    from nst.io.images import read_rgb, resize, size_for_long_side
    from nst.optimise.stylize import Settings, stylize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--iterations", type=int, nargs="+", default=[6, 25])
    parser.add_argument("--tv", type=float, nargs="+", default=[0.0, 1e-4, 1e-3])
    parser.add_argument("--print-crop", action="store_true",
                        help="instead: the last scale of bench/out/print/opt_4096.png's run on a 1024x768 crop (the "
                             "sources' x 512-768, y 128-320, enlarged 4x as at 4096 px; the style at 4096 px with "
                             "--style-scale 4), started from that crop of the result halved and enlarged again")
    parser.add_argument("--print-pipeline", action="store_true",
                        help="instead: the print run's scales 512-4096 px on that crop (128-1024 px with the style at "
                             "4x, iterations 80, 40, 25, 25), from the content, one scale at a time; each stage's "
                             "picture saved (bench/out/print/lattice_pipeline_*.png)")
    parser.add_argument("--style-blur", action="store_true",
                        help="--print-pipeline with the painting enlarged smoothly (smooth_enlarged) before the engine "
                             "sees it; since the engine does the same itself (resize_painting), the runs with and "
                             "without it now agree, and the bicubic baseline in bench/RESULTS.md is from before")
    parser.add_argument("--tv-schedules", nargs="+", default=["0,0,0,0"], metavar="W,W,W,W",
                        help="--print-pipeline's TV weight at each of its four scales, one run per schedule")
    parser.add_argument("--source-side", type=int, default=0,
                        help="shrink both images to this long side first, so that --size enlarges them as a "
                             "print run enlarges 1024 px sources (256 at --size 1024 mimics 4096 px)")
    parser.add_argument("--compare-prints", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="instead: two 4096 px results side by side (see the module's docstring)")
    args = parser.parse_args(argv)
    print(f"host: {cpu_description()}", flush=True)
    if args.compare_prints:
        return compare_prints(*args.compare_prints)
    content = read_rgb(HERE.parent / "images" / "tubingen.jpg")
    style = read_rgb(HERE.parent / "images" / "starry_night.jpg")
    if args.print_crop:
        return print_crop(content, style, args)
    if args.print_pipeline:
        return print_pipeline(content, style, args)
    if args.source_side:
        content, style = (resize(image, *size_for_long_side(*image.shape[:2], args.source_side)[::-1])
                          for image in (content, style))
    OUT.mkdir(parents=True, exist_ok=True)
    cached = OUT / f"lattice_base_{args.size // 2}_{args.source_side}.npy"
    if not cached.exists():
        base = stylize(content, [style], Settings(size=args.size // 2, seed=0))
        np.save(cached, base.image)
        print(f"base at {args.size // 2} px: {base.elapsed:.0f} s, lattice {lattice(base.image):.3f}", flush=True)
    args.tag = f"{args.size}_{args.source_side}"
    named = run_variants(content, style, np.load(cached), args)
    where = block_lattice(named[0][1])
    path = OUT / f"lattice_{args.size}_{args.source_side}_sheet.png"
    save_sheet(path, named, where)
    print(f"sheet {path.relative_to(HERE.parent)} (crops at y {where[0]}, x {where[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
