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
the blend's texture is then brought back to S_t's strength band by band (see :func:`blend`).

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

# The default of --consistency; bench/bench_video.py on a 480p pan over tubingen.jpg (see README,
# "Video") measured the warping error and the style cost it gives against independent frames.
DEFAULT_CONSISTENCY = 0.9
DEFAULT_FLOW_PRESET = "medium"
# The previous output is warped with an 8x8 Lanczos kernel: it is warped again at every frame,
# and repeated bilinear warps blur its brush strokes (one bilinear warp of a stylised 480p
# frame raised its style cost 2.7 times, a Lanczos one about 1.2 times; bench_video.py).
GUIDE_INTERPOLATION = "lanczos"
# Texture restoration after the blend (see blend): band-pass layers between Gaussian blurs of
# these sigmas (pixels, finest first), each band's local energy averaged by a Gaussian of
# ENERGY_SPREAD x its sigma, and each band's gain kept within 1/MAX_BAND_GAIN .. MAX_BAND_GAIN.
RESTORE_SIGMAS = (1.0, 2.0, 4.0)
ENERGY_SPREAD = 4.0
MAX_BAND_GAIN = 3.0
ENERGY_FLOOR = 0.5  # squared 0..255 levels: keeps the gain near 1 where both bands are flat


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
        from nst.video.flow import FlowEstimator

        self._flow = FlowEstimator(preset)
        self._previous_gray = None

    def reset(self) -> None:
        """Forget the previous frame (the start of a segment or a cut)."""
        self._previous_gray = None

    def guide(self, frame: np.ndarray, previous_output: Optional[np.ndarray]) -> Optional[Guide]:
        """The guide for ``frame`` from the previous output (None for the first frame); remembers ``frame``."""
        from nst.video.flow import gray, reliable, warp

        current = gray(frame)
        previous, self._previous_gray = self._previous_gray, current
        if previous is None or previous_output is None:
            return None
        backward = self._flow(current, previous)  # where frame t's pixels were in t-1
        forward = self._flow(previous, current)
        return Guide(warp(previous_output, backward, GUIDE_INTERPOLATION), reliable(backward, forward))


def _restore_bands(mixed: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``mixed`` with each band's local energy set to ``reference``'s; float32 [h, w, 3] in, float32 out.

    Bands are differences of Gaussian blurs at RESTORE_SIGMAS (a Laplacian pyramid without
    subsampling), so they sum back to the image; the coarsest blur is kept as it is.
    """
    import cv2

    restored = np.zeros_like(mixed)
    finer_mixed, finer_reference = mixed, reference
    for sigma in RESTORE_SIGMAS:
        coarser_mixed = cv2.GaussianBlur(mixed, (0, 0), sigma)
        coarser_reference = cv2.GaussianBlur(reference, (0, 0), sigma)
        band, reference_band = finer_mixed - coarser_mixed, finer_reference - coarser_reference
        energy = cv2.GaussianBlur(band * band, (0, 0), ENERGY_SPREAD * sigma)
        target = cv2.GaussianBlur(reference_band * reference_band, (0, 0), ENERGY_SPREAD * sigma)
        gain = np.sqrt((target + ENERGY_FLOOR) / (energy + ENERGY_FLOOR))
        restored += band * np.clip(gain, 1.0 / MAX_BAND_GAIN, MAX_BAND_GAIN)
        finer_mixed, finer_reference = coarser_mixed, coarser_reference
    return restored + finer_mixed


def blend(stylised: np.ndarray, guide: Optional[Guide], consistency: float) -> np.ndarray:
    """c M warp(O_{t-1}) + (1 - c M) S_t, its texture restored to S_t's strength; uint8 [h, w, 3].

    Averaging two brush-stroke textures that do not line up (the stylised frames differ
    from one to the next: that is the flicker) flattens them, and the more so as the
    average is taken again at every frame: at c = 0.9 the texture of a plain blend falls
    to about a quarter of its strength, and the style cost of a 480p frame grows five-fold
    (bench/bench_video.py).  So the blend is split into frequency bands and each band's
    local energy is scaled back to that of S_t's same band (see _restore_bands): the
    strokes keep the previous frame's positions, and S_t's strength at every scale.
    """
    if guide is None or consistency <= 0:
        return stylised
    weight = (consistency * guide.mask)[..., None]  # [h, w, 1]
    current = stylised.astype(np.float32)
    mixed = weight * guide.warped.astype(np.float32) + (1.0 - weight) * current
    return np.clip(_restore_bands(mixed, current) + 0.5, 0, 255).astype(np.uint8)


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
    """``frame -> stylised frame`` with a loaded :class:`nst.fast.stylizer.FastStylizer` (style statistics cached)."""
    def stylise(frame: np.ndarray) -> np.ndarray:
        return stylizer.stylize(frame, styles, **options)

    return stylise


# --------------------------------------------------------------------------
# The optimisation method: each frame depends on the previous output, so it is sequential.

# Temporal weight at consistency 1, for the engine's cost weight * sum(mask (x - warped)^2) / (h w 3)
# on 0..255 pixels.  bench/bench_video.py --method optimised (6 frames at 256x144, 20 L-BFGS
# iterations each), against independent frames at consistency 0.9: 0.01 cut the warping error by
# 55 % with a style cost 0.74 times theirs; 0.1 cut it by 65 % but at 1.27 times the style cost.
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
    """``(frame, guide) -> stylised frame`` with a :class:`nst.optimise.stylize.Stylizer` (its graphs kept per size)."""
    from nst.optimise.stylize import Temporal

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
