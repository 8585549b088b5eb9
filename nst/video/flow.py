"""Optical flow between video frames, warping along it, and where it can be trusted.

OpenCV's DIS flow (Kroeger et al., ECCV 2016; ``opencv-python-headless``) is
fast enough on a CPU to cost little beside the stylisation.  The reliability
mask follows Ruder, Dosovitskiy and Brox (GCPR 2016, "Artistic style transfer
for videos", section 3.2): a pixel of frame t is trusted where the backward
flow (t -> t-1) and the forward flow (t-1 -> t) cancel out, and away from
motion boundaries.  Nothing else in the project imports OpenCV.

Conventions: a flow is float32 [h, w, 2] of (dx, dy) in pixels; ``flow[y, x]``
says where pixel (x, y) of the first frame lies in the second.
"""

from __future__ import annotations

import numpy as np

# Ruder et al.'s thresholds, for flows in pixels:
# disoccluded where |w~ + w^|^2 > CONSISTENCY_RELATIVE (|w~|^2 + |w^|^2) + CONSISTENCY_ABSOLUTE,
# a motion boundary where |grad w^u|^2 + |grad w^v|^2 > BOUNDARY_RELATIVE |w^|^2 + BOUNDARY_ABSOLUTE.
CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE = 0.5
BOUNDARY_RELATIVE = 0.01
BOUNDARY_ABSOLUTE = 0.002


def _cv2():
    import cv2

    return cv2


def gray(frame: np.ndarray) -> np.ndarray:
    """uint8 RGB [h, w, 3] -> uint8 luma [h, w], what DIS takes."""
    return _cv2().cvtColor(np.ascontiguousarray(frame, dtype=np.uint8), _cv2().COLOR_RGB2GRAY)


class FlowEstimator:
    """DIS optical flow with one of OpenCV's presets ("ultrafast", "fast", "medium")."""

    PRESETS = ("ultrafast", "fast", "medium")

    def __init__(self, preset: str = "medium"):
        cv2 = _cv2()
        if preset not in self.PRESETS:
            raise ValueError(f"flow preset must be one of {', '.join(self.PRESETS)}, not {preset!r}")
        self._dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))

    def __call__(self, first_gray: np.ndarray, second_gray: np.ndarray) -> np.ndarray:
        """Flow [h, w, 2] from ``first_gray`` to ``second_gray`` (uint8 [h, w] each)."""
        return self._dis.calc(first_gray, second_gray, None)


INTERPOLATIONS = ("linear", "cubic", "lanczos")


def warp(image: np.ndarray, flow: np.ndarray, interpolation: str = "linear") -> np.ndarray:
    """``out[y, x] = image[y + dy, x + dx]`` with (dx, dy) = ``flow[y, x]``, edges repeated.

    With the backward flow of frame t (t -> t-1) this brings frame t-1's pixels to
    where they are in frame t.  ``image`` is [h, w] or [h, w, c], any dtype OpenCV remaps.
    ``interpolation``: "linear" (bilinear: right for flows and masks, and what Lai et al.'s
    warping error uses), "cubic" or "lanczos" (8x8 Lanczos: blurs texture far less, which
    matters when an image is warped again and again, frame after frame).
    """
    cv2 = _cv2()
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, not {interpolation!r}")
    flag = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}[interpolation]
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], interpolation=flag,
                     borderMode=cv2.BORDER_REPLICATE)


def reliable(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Where frame t's pixels were seen in frame t-1 and moved smoothly: float32 [h, w] of 0 and 1.

    ``backward``: flow t -> t-1; ``forward``: flow t-1 -> t (both [h, w, 2]).  Ruder et al.:
    the forward flow looked up where the backward flow points (w~) must undo it, else the
    pixel was occluded in t-1 (or the flow is wrong); and large flow gradients mark motion
    boundaries, where a bilinear warp mixes two objects.  Pixels whose backward flow leaves
    the frame are unreliable too.
    """
    forward_there = warp(forward, backward)  # w~(x) = w(x + w^(x))
    round_trip = np.sum((forward_there + backward) ** 2, axis=-1)
    magnitudes = np.sum(forward_there ** 2, axis=-1) + np.sum(backward ** 2, axis=-1)
    consistent = round_trip <= CONSISTENCY_RELATIVE * magnitudes + CONSISTENCY_ABSOLUTE
    du_y, du_x = np.gradient(backward[..., 0])
    dv_y, dv_x = np.gradient(backward[..., 1])
    gradient = du_x ** 2 + du_y ** 2 + dv_x ** 2 + dv_y ** 2
    smooth = gradient <= BOUNDARY_RELATIVE * np.sum(backward ** 2, axis=-1) + BOUNDARY_ABSOLUTE
    height, width = backward.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width), np.arange(height))
    target_x, target_y = grid_x + backward[..., 0], grid_y + backward[..., 1]
    inside = (target_x >= 0) & (target_x <= width - 1) & (target_y >= 0) & (target_y <= height - 1)
    return (consistent & smooth & inside).astype(np.float32)


def warping_error(output: np.ndarray, previous_output: np.ndarray, backward: np.ndarray,
                  mask: np.ndarray) -> float:
    """Lai et al. (ECCV 2018)'s temporal warping error of one frame pair, in 0..1 units per channel.

    mean |O_t - warp(O_{t-1})| over the pixels where ``mask`` is 1 (non-occluded),
    with ``backward`` the flow t -> t-1 of the *input* frames.
    """
    warped = warp(previous_output, backward).astype(np.float32)
    difference = np.abs(output.astype(np.float32) - warped).mean(axis=-1) / 255.0
    count = float(mask.sum())
    return float((difference * mask).sum() / count) if count else 0.0
