"""Stylising a sequence of frames without flicker: the engine side of ``nst video``.

Frames in (uint8 RGB [h, w, 3], any iterable), :class:`FrameDone` events out,
one per frame, in order; each carries the stylised frame and its timings, so
the caller writes it and draws its progress bar.  Nothing here knows a file
name, a codec or a terminal.

Temporal consistency (Ruder et al., GCPR 2016, adapted to the feed-forward
method): the previous *output* is warped along the backward optical flow of
the *input* frames and blended into the new stylised frame where the flow is
reliable (forward and backward flow agree, no motion boundary):

    O_t = c M_t warp(O_{t-1}) + (1 - c M_t) S_t

with S_t the frame stylised on its own, M_t the reliability mask (0 at
occlusions) and c = ``consistency`` (0: independent frames, no flow computed);
the blend's local contrast is then restored to S_t's (see :func:`blend`).

Where the work lies, for a pool of workers later: stylising a frame (the
expensive part) depends on that frame only, so :func:`stylize_fast` takes a
``mapper`` (``map`` here; a pool's ordered ``imap`` would do) that may run
frames ahead in other processes; the blend is cheap and sequential, and stays
in the caller's process.  A clip may also be cut into segments, each started
afresh (the first frame of a segment is not blended), at the price of a
possible jump at each cut.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

# bench/bench_video.py on a 480p pan over tubingen.jpg (10 frames): at 0.9 the warping error
# fell by 63 % and the style cost per frame rose by 10 % against independent frames; at 0.7,
# 51 % and 67 % (see README, "Video").
DEFAULT_CONSISTENCY = 0.9
DEFAULT_FLOW_PRESET = "medium"
CONTRAST_RADIUS = 2  # pixels: 5x5 windows, about one brush stroke's width at 480p
MAX_CONTRAST_GAIN = 3.0


@dataclass
class FrameDone:
    """One finished frame: its index in the clip, the output, how much of it came from the previous frame."""

    index: int
    output: np.ndarray  # uint8 [h, w, 3]
    reliable_share: float  # share of pixels where the previous output was blended in (0 for a first frame)
    seconds: dict = field(default_factory=dict)  # "stylise", "flow", "blend"


@dataclass
class Guide:
    """What the previous frame offers the next: its output warped into the new frame, and where to trust it."""

    warped: np.ndarray  # uint8 [h, w, 3]: O_{t-1} warped along the backward flow
    mask: np.ndarray  # float32 [h, w]: 1 where the flow is reliable


class Motion:
    """Optical flow between consecutive input frames, and the guide it gives (sequential state)."""

    def __init__(self, preset: str = DEFAULT_FLOW_PRESET):
        from .flow import FlowEstimator

        self._flow = FlowEstimator(preset)
        self._previous_gray = None

    def reset(self) -> None:
        """Forget the previous frame (the start of a segment or a cut)."""
        self._previous_gray = None

    def guide(self, frame: np.ndarray, previous_output: Optional[np.ndarray]) -> Optional[Guide]:
        """The guide for ``frame`` from the previous output (None for the first frame); remembers ``frame``."""
        from .flow import gray, reliable, warp

        current = gray(frame)
        previous, self._previous_gray = self._previous_gray, current
        if previous is None or previous_output is None:
            return None
        backward = self._flow(current, previous)  # where frame t's pixels were in t-1
        forward = self._flow(previous, current)
        return Guide(warp(previous_output, backward), reliable(backward, forward))


def _local_variance(image: np.ndarray, radius: int):
    """Mean and variance of float32 [h, w, 3] over (2 radius + 1)^2 windows, per channel."""
    import cv2

    window = (2 * radius + 1, 2 * radius + 1)
    mean = cv2.boxFilter(image, -1, window, borderType=cv2.BORDER_REFLECT)
    square = cv2.boxFilter(image * image, -1, window, borderType=cv2.BORDER_REFLECT)
    return mean, np.maximum(square - mean * mean, 0.0)


def blend(stylised: np.ndarray, guide: Optional[Guide], consistency: float) -> np.ndarray:
    """c M warp(O_{t-1}) + (1 - c M) S_t, its local contrast restored to S_t's; uint8 [h, w, 3].

    Averaging two brush-stroke textures that do not line up (the stylised frames differ
    from one to the next: that is the flicker) flattens them, and repeated bilinear warps
    soften them: a 0.75 px blur alone multiplies the style cost of a 480p frame by six
    (bench/bench_video.py).  So the blend's deviation from its local mean is scaled back
    to the local standard deviation of S_t (a variance-preserving blend, as in texture
    synthesis), within CONTRAST_RADIUS pixels and by at most MAX_CONTRAST_GAIN.
    """
    if guide is None or consistency <= 0:
        return stylised
    weight = (consistency * guide.mask)[..., None]  # [h, w, 1]
    current = stylised.astype(np.float32)
    mixed = weight * guide.warped.astype(np.float32) + (1.0 - weight) * current
    mixed_mean, mixed_variance = _local_variance(mixed, CONTRAST_RADIUS)
    _, target_variance = _local_variance(current, CONTRAST_RADIUS)
    gain = np.clip(np.sqrt((target_variance + 1.0) / (mixed_variance + 1.0)), 1.0, MAX_CONTRAST_GAIN)
    restored = mixed_mean + (mixed - mixed_mean) * gain
    return np.clip(restored + 0.5, 0, 255).astype(np.uint8)


def check_consistency(consistency: float) -> float:
    consistency = float(consistency)
    if not 0.0 <= consistency <= 1.0:
        raise ValueError(f"consistency must be between 0 and 1, not {consistency}")
    return consistency


def stylize_fast(frames: Iterable[np.ndarray], stylise: Callable[[np.ndarray], np.ndarray],
                 consistency: float = DEFAULT_CONSISTENCY, flow_preset: str = DEFAULT_FLOW_PRESET,
                 mapper: Callable = map) -> Iterator[FrameDone]:
    """Stylise each frame on its own with ``stylise`` (frame -> uint8 [h, w, 3]), then blend along the flow.

    ``mapper(stylise, frames)`` must yield the results in order; it may run ahead.
    """
    consistency = check_consistency(consistency)
    for_flow, for_style = itertools.tee(frames)
    stylised_frames = iter(mapper(stylise, for_style))
    motion = Motion(flow_preset) if consistency > 0 else None
    previous = None
    for index, frame in enumerate(for_flow):
        started = time.perf_counter()
        stylised = next(stylised_frames)
        flowed = time.perf_counter()
        guide = motion.guide(frame, previous) if motion else None
        blended = time.perf_counter()
        output = blend(stylised, guide, consistency)
        done = time.perf_counter()
        previous = output
        share = float(guide.mask.mean()) if guide is not None else 0.0
        yield FrameDone(index, output, share, {"stylise": flowed - started, "flow": blended - flowed,
                                               "blend": done - blended})


def fast_frame_stylist(stylizer, styles, **options) -> Callable[[np.ndarray], np.ndarray]:
    """``frame -> stylised frame`` with a loaded :class:`nst.fast.FastStylizer` (style statistics cached)."""
    def stylise(frame: np.ndarray) -> np.ndarray:
        return stylizer.stylize(frame, styles, **options)

    return stylise


# --------------------------------------------------------------------------
# The optimisation method: each frame depends on the previous output, so it is sequential.

# Temporal weight at consistency 1, for the engine's cost weight * sum(mask (x - warped)^2) / (h w 3)
# on 0..255 pixels: a mean difference of 10 levels then costs 1, of the order of the weighted style
# cost at the default settings.  Chosen by that estimate, not tuned by measurement.
TEMPORAL_WEIGHT_AT_FULL = 0.01
DEFAULT_ITERATIONS = 40  # L-BFGS iterations per frame (later frames start from the warped previous one)


def stylize_optimised(frames: Iterable[np.ndarray], stylise: Callable, consistency: float = DEFAULT_CONSISTENCY,
                      flow_preset: str = DEFAULT_FLOW_PRESET) -> Iterator[FrameDone]:
    """Ruder et al.: every frame after the first is optimised from the previous output warped along
    the flow, with a temporal cost pulling it there where the flow is reliable.

    ``stylise(frame, guide)`` returns uint8 [h, w, 3]; ``guide`` is None for a first frame (or when
    ``consistency`` is 0: independent frames, no flow computed).
    """
    consistency = check_consistency(consistency)
    motion = Motion(flow_preset) if consistency > 0 else None
    previous = None
    for index, frame in enumerate(frames):
        started = time.perf_counter()
        guide = motion.guide(frame, previous) if motion else None
        flowed = time.perf_counter()
        output = stylise(frame, guide)
        done = time.perf_counter()
        previous = output
        share = float(guide.mask.mean()) if guide is not None else 0.0
        yield FrameDone(index, output, share, {"flow": flowed - started, "stylise": done - flowed})


def optimised_frame_stylist(stylizer, styles, consistency: float) -> Callable:
    """``(frame, guide) -> stylised frame`` with a :class:`nst.stylize.Stylizer` (its graphs kept per size)."""
    from .stylize import Temporal

    weight = TEMPORAL_WEIGHT_AT_FULL * consistency

    def stylise(frame: np.ndarray, guide: Optional[Guide]) -> np.ndarray:
        if guide is None:
            result = stylizer.run(frame, styles)
        else:
            temporal = Temporal(image=guide.warped.astype(np.float32), mask=guide.mask, weight=weight)
            result = stylizer.run(frame, styles, init=guide.warped, temporal=temporal)
        if result.status == "interrupted":
            raise KeyboardInterrupt
        if result.image is None:
            raise RuntimeError(f"the optimisation failed on this frame: {result.message}")
        return result.image

    return stylise
