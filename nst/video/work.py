"""Work for :mod:`nst.parallel.pool` from ``nst video``: a frame, or a segment of frames, per item.

:class:`VideoWork` is picklable (the styles as arrays, the options as numbers),
so it travels to Ray actors as it is.  ``load(threads)`` loads the network once
and returns ``run(payload)``:

* a single frame, uint8 [h, w, 3] -> its stylised frame, uint8 [h, w, 3]
  (consistency 0: frames are independent, for either method);
* a segment, uint8 [n, h, w, 3] -> its n output frames, uint8 [n, h, w, 3],
  stylised in order with the frame loop of :mod:`nst.video.temporal` (flow and blend,
  or the optimisation from the warped previous output), started afresh.

The one-process path of ``nst video`` runs the same :meth:`VideoWork.events`
over the whole clip, so both paths share one recipe per method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import numpy as np

from nst.parallel.workers import limit_threads


@dataclass
class VideoWork:
    method: str  # "fast" or "optimised"
    styles: list  # uint8 [h, w, 3] each, already at the style size
    consistency: float
    flow: str  # optical-flow preset
    long_side: int  # of the frames (the optimisation's size)
    style_weights: Optional[list] = None
    preserve_colors: bool = False
    alpha: Optional[float] = None  # fast only; None: the fast method's default
    iterations: Optional[int] = None  # optimised only; None: nst.video.temporal's default
    frames_each: Optional[int] = None  # fast only: frames one process will stylise, if known (None: many)

    @property
    def per_frame(self) -> bool:
        """Frames are independent (consistency 0: one frame per item), or the unit is a segment."""
        return self.consistency <= 0

    @property
    def fast_compiled(self) -> Optional[bool]:
        """FastStylizer's ``compiled``: False (never compile) when one process gets too few frames
        for XLA's compile to pay back (:data:`nst.fast.network.COMPILE_PAYS_FROM`), else None (on repeat)."""
        from nst.fast.network import compiled_for

        return compiled_for(self.frames_each)

    def stylist(self):
        """Load the network: fast, ``frame -> output``; optimised, ``(frame, guide) -> output``."""
        from nst.video import temporal as video

        if self.method == "fast":
            from nst.fast.stylizer import DEFAULT_ALPHA, FastStylizer

            alpha = DEFAULT_ALPHA if self.alpha is None else self.alpha
            return video.fast_frame_stylist(FastStylizer(compiled=self.fast_compiled), self.styles, alpha=alpha,
                                            style_weights=self.style_weights, preserve_colors=self.preserve_colors)
        from nst.optimise.stylize import Settings, Stylizer

        settings = Settings(size=self.long_side, multiscale=False,
                            iterations=self.iterations or video.DEFAULT_ITERATIONS,
                            style_blend_weights=self.style_weights, preserve_colors=self.preserve_colors, seed=0)
        return video.optimised_frame_stylist(Stylizer(settings), self.styles, self.consistency)

    def events(self, frames: Iterable[np.ndarray], stylise=None) -> Iterator:
        """The frame loop of :mod:`nst.video.temporal` over ``frames``: one ``FrameDone`` per frame, in order."""
        from nst.video import temporal as video

        stylise = stylise or self.stylist()
        if self.method == "fast":
            return video.stylize_fast(frames, stylise, self.consistency, self.flow)
        return video.stylize_optimised(frames, stylise, self.consistency, self.flow)

    def load(self, threads: Optional[int] = None):
        limit_threads(threads)
        stylise = self.stylist()

        def run(payload: np.ndarray) -> np.ndarray:
            if payload.ndim == 3:  # one frame of independent frames (no guide from a previous one)
                return stylise(payload) if self.method == "fast" else stylise(payload, None)
            return np.stack([done.output for done in self.events(list(payload), stylise)])

        return run
