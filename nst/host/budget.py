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


def largest_fitting_side(height: int, width: int, available: int) -> int:
    """The longest side (aspect ratio kept) whose optimisation fits in ``available`` bytes."""
    pixels = max(0.0, (available - BASE_BYTES) / OPTIMISATION_BYTES_PER_PIXEL)
    aspect = max(height, width) / min(height, width)
    return int(math.sqrt(pixels * aspect))


def check_fits(height: int, width: int, style_pixels: int = 0, available: int | None = None) -> None:
    """Raise MemoryBudgetError if the run cannot fit in memory, saying the largest size that does."""
    available = available_bytes() if available is None else available
    needed = estimate_peak_bytes(height, width, style_pixels)
    if needed <= available:
        return
    gib = 2 ** 30
    what = f"{max(height, width)} px"
    if OPTIMISATION_BYTES_PER_PIXEL * height * width < FORWARD_BYTES_PER_PIXEL * style_pixels:
        what = f"{max(height, width)} px with a style image of {style_pixels:,} pixels (lower --style-scale)"
    raise MemoryBudgetError(
        f"a run at {what} needs about {needed / gib:.1f} GiB of memory and {available / gib:.1f} GiB is free; "
        f"the largest --size that fits is about {largest_fitting_side(height, width, available)}")
