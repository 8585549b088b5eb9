"""How much memory an optimisation run needs, and whether this machine has it.

Checked before the network is loaded, so that a size the machine cannot hold is
refused in one line instead of ending in a segmentation fault or a MemoryError
minutes later.  The model is linear in the pixels of the largest scale, fitted
to peak RSS measured with ``python bench/bench_memory.py --malloc glibc``
(bench/RESULTS.md, issue 30: the default costs with the distribution term, coarse
to fine, L-BFGS with a full history, glibc's own malloc settings; AMD EPYC Zen 4):

=============  ==========  =============  =============
result size    pixels      fp32 peak      bf16 peak
=============  ==========  =============  =============
512 x 384      196,608     2407 MiB       2230 MiB
1024 x 768     786,432     4992 MiB       4546 MiB
2048 x 1536    3,145,728   not measured   13427 MiB (14040 with the old malloc tuning)
=============  ==========  =============  =============

fp32 needs the most: 4.4 KiB a pixel between 512 and 1024 px with an intercept
near 1.55 GiB.  The model takes 4.6 KiB and 1.6 GiB, at or above every measured
point (15.4 GiB predicted for fp32 at 2048 px).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

BASE_BYTES = 1600 * 2 ** 20  # TensorFlow, VGG-19 weights, graphs: the intercept
OPTIMISATION_BYTES_PER_PIXEL = 4.6 * 2 ** 10  # activations, their gradients, sorts, L-BFGS history
# Style Grams come from a forward pass only: every activation through conv5_1, float32,
# is 64*2 + 128*2/4 + 256*4/16 + 512*4/64 + 512/256 channels = 290 floats a pixel;
# twice that covers TensorFlow's temporaries.
FORWARD_BYTES_PER_PIXEL = 2 * 290 * 4
# A scale too large for that is optimised tile by tile (nst.optimise.tiled).  What stays whole is the
# picture's own arrays: L-BFGS's 10 pairs of float32 images, its iterate, gradient, trial point and
# direction, the best image, the gradient being summed over tiles (28 images of 12 bytes a pixel) and
# the content target at conv4_2 (512 channels per 8x8 pixels, 32 bytes a pixel): 368, taken as 384.
PICTURE_BYTES_PER_PIXEL = 384
# Each tile's outer box is its core plus this margin on each side: conv5_1's receptive radius, 70 px,
# on the 16 px grid of its poolings (nst.optimise.tiling.margin_for; a test checks they agree).  The
# default layers' margin; a run whose deepest layer is deeper passes its own (conv5_4: 128 px).
TILE_MARGIN = 80
# A core may be this much longer than the side asked for: tiling._cuts puts inner bounds on the 16 px grid.
CORE_SLACK = 16
MIN_TILE = 256  # the smallest core the automatic choice takes: below it the margins cost more than the core
TILE_STEP = 64  # cores are chosen in steps of this many pixels
STYLE_BYTES_PER_PIXEL = 16  # a style image read in tiles is still held whole: uint8 and float32 RGB


class MemoryBudgetError(ValueError):
    """The run needs more memory than the machine has (one line, says what fits)."""


def available_bytes() -> int:
    """Memory this process can use now: MemAvailable, capped by a cgroup limit if one is set."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for name in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2 ** 60:
            limits.append(int(text))
    if not limits:  # not Linux: the physical memory
        try:
            limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return 2 ** 62  # unknown: do not refuse
    return min(limits)


def estimate_peak_bytes(height: int, width: int, style_pixels: int = 0) -> int:
    """Peak RSS of an optimisation whose largest scale is ``height`` x ``width``.

    ``style_pixels``: the largest style image's pixels at that scale (forward pass only).
    """
    optimise = OPTIMISATION_BYTES_PER_PIXEL * height * width
    forward = FORWARD_BYTES_PER_PIXEL * max(style_pixels, height * width)
    return int(BASE_BYTES + max(optimise, forward))


def tiled_peak_bytes(height: int, width: int, side: int, margin: int = TILE_MARGIN) -> int:
    """Peak RSS of a scale of ``height`` x ``width`` optimised in tiles with cores of ``side`` px."""
    box = side + CORE_SLACK + 2 * margin
    outer = min(height, box) * min(width, box)
    return int(BASE_BYTES + PICTURE_BYTES_PER_PIXEL * height * width + OPTIMISATION_BYTES_PER_PIXEL * outer)


def largest_tile(height: int, width: int, limit: int, margin: int = TILE_MARGIN) -> int | None:
    """The largest core side (a multiple of TILE_STEP, at least MIN_TILE) whose tiled scale fits in
    ``limit`` bytes, or None when not even MIN_TILE does."""
    side = TILE_STEP * math.ceil(max(height, width) / TILE_STEP)
    while side >= MIN_TILE:
        if tiled_peak_bytes(height, width, side, margin) <= limit:
            return side
        side -= TILE_STEP
    return None


def tile_sides(sizes, style_pixels: int = 0, available: int | None = None, forced: int | None = None,
               margin: int = TILE_MARGIN) -> list:
    """The core side each scale of ``sizes`` [(h, w), ...] (coarse to fine) is tiled with, None for whole.

    ``forced``: tile every scale whose long side exceeds it, with cores of that side (refused if that
    cannot fit).  Otherwise a run that fits whole stays whole; one that does not keeps to half the
    memory free where it can (the rest of the machine stays usable during a long print run), else to
    what is free, and tiles each scale that does not fit whole in that.  Raises MemoryBudgetError if
    a scale cannot fit even in tiles of MIN_TILE.  ``margin``: each tile's, as tiling.margin_for gives.
    """
    available = available_bytes() if available is None else available
    if forced:
        check_fits(*sizes[-1], style_pixels, available, tile=forced, margin=margin, sizes=sizes)
        return [forced if max(height, width) > forced else None for height, width in sizes]
    if estimate_peak_bytes(*sizes[-1], style_pixels) <= available:
        return [None] * len(sizes)
    floor = tiled_peak_bytes(*sizes[-1], MIN_TILE, margin) + STYLE_BYTES_PER_PIXEL * style_pixels
    limit = min(available, max(available // 2, floor))
    final_pixels = sizes[-1][0] * sizes[-1][1]
    sides = [None if estimate_peak_bytes(height, width, style_pixels * height * width // final_pixels) <= limit
             else largest_tile(height, width, limit - STYLE_BYTES_PER_PIXEL * style_pixels, margin)
             for height, width in sizes]
    if sides[-1] is None:
        check_fits(*sizes[-1], style_pixels, available, margin=margin)  # raises, saying what fits
    return sides


def forced_peak_bytes(sizes, tile: int, style_pixels: int = 0, margin: int = TILE_MARGIN) -> int:
    """Peak RSS of a run over ``sizes`` (coarse to fine) with ``--tile``: scales longer than ``tile`` in
    tiles of it, the others whole."""
    final_pixels = sizes[-1][0] * sizes[-1][1]
    peaks = [tiled_peak_bytes(height, width, tile, margin) + STYLE_BYTES_PER_PIXEL * style_pixels
             if max(height, width) > tile
             else estimate_peak_bytes(height, width, style_pixels * height * width // final_pixels)
             for height, width in sizes]
    return max(peaks)


def largest_fitting_side(height: int, width: int, available: int, style_ratio: float = 0.0,
                         margin: int = TILE_MARGIN) -> int:
    """The longest side (aspect ratio kept) whose optimisation fits in ``available`` bytes, in tiles if
    need be; ``style_ratio``: the style image's pixels per pixel of the result (held whole when tiled)."""
    aspect = max(height, width) / min(height, width)
    whole = max(0.0, (available - BASE_BYTES) / OPTIMISATION_BYTES_PER_PIXEL)
    tile = min(MIN_TILE + CORE_SLACK + 2 * margin, math.sqrt(whole)) ** 2
    tiled = max(0.0, (available - BASE_BYTES - OPTIMISATION_BYTES_PER_PIXEL * tile)
                / (PICTURE_BYTES_PER_PIXEL + STYLE_BYTES_PER_PIXEL * style_ratio))
    side = int(math.sqrt(max(whole, tiled) * aspect))

    def needed(long_side):  # the short side rounded as the images' resize rounds it
        short = max(1, round(long_side / aspect))
        style = round(style_ratio * short * long_side)
        return min(estimate_peak_bytes(short, long_side, style),
                   tiled_peak_bytes(short, long_side, MIN_TILE, margin) + STYLE_BYTES_PER_PIXEL * style)

    while side > 1 and needed(side) > available:  # the estimates above, rounded the other way
        side -= 1
    return side


def check_fits(height: int, width: int, style_pixels: int = 0, available: int | None = None, tile: int | None = None,
               margin: int = TILE_MARGIN, sizes=None) -> None:
    """Raise MemoryBudgetError if the run cannot fit in memory, saying the largest size that does.

    ``tile``: the run's ``--tile``, checked over ``sizes`` [(h, w), ...] (coarse to fine; default the
    one scale); without it the run may choose any tiles of at least MIN_TILE."""
    available = available_bytes() if available is None else available
    whole = estimate_peak_bytes(height, width, style_pixels)
    tiled = tiled_peak_bytes(height, width, MIN_TILE, margin)  # style images are read in tiles too, but held whole
    needed = min(whole, tiled + STYLE_BYTES_PER_PIXEL * style_pixels)
    gib, long_side = 2 ** 30, max(height, width)
    if needed > available:
        what = f"{long_side} px"
        if min(estimate_peak_bytes(height, width), tiled) <= available:  # the style image alone is too large
            what = f"{long_side} px with a style image of {style_pixels:,} pixels (lower --style-scale)"
        largest = largest_fitting_side(height, width, available, style_pixels / (height * width), margin)
        raise MemoryBudgetError(f"a run at {what} needs about {needed / gib:.1f} GiB of memory and "
                                f"{available / gib:.1f} GiB is free; the largest --size that fits is about {largest}")
    if tile:
        needed = forced_peak_bytes(sizes or [(height, width)], tile, style_pixels, margin)
        if needed > available:
            raise MemoryBudgetError(
                f"a run at {long_side} px with --tile {tile} needs about {needed / gib:.1f} GiB of memory and "
                f"{available / gib:.1f} GiB is free; use a smaller --tile, or leave it out to let the run choose")
