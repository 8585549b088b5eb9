"""Pixel arrays for the engine: colour spaces, rounding and float resizing (NumPy and Pillow only).

Luminance-only transfer (Gatys et al. 2016, "Preserving Color in Neural Artistic
Style Transfer", section 3) optimises the luminance Y of YIQ and puts the
content's chroma (I, Q) back at the end.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from nst.optimise.settings import PIXEL_MAX, PIXEL_MIN

RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]])
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    """[..., 3] RGB (any range) -> [..., 3] YIQ in the same units."""
    return np.asarray(image, dtype=np.float64) @ RGB_TO_YIQ.T


def yiq_to_rgb(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float64) @ YIQ_TO_RGB.T


def luminance_rgb(image: np.ndarray, match: Optional[np.ndarray] = None) -> np.ndarray:
    """The luminance Y of ``image`` as a gray RGB float image [h, w, 3].

    With ``match`` (another image's luminance), Y is first shifted and scaled to
    match its mean and standard deviation (Gatys et al. 2016, eq. 3:
    L_s' = sigma_c / sigma_s (L_s - mu_s) + mu_c).
    """
    y = rgb_to_yiq(image)[..., 0]
    if match is not None:
        y = (y - y.mean()) * (match.std() / max(y.std(), 1e-6)) + match.mean()
    return np.repeat(np.clip(y, PIXEL_MIN, PIXEL_MAX)[..., None], 3, axis=2)


def recombine_colors(generated: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Y of ``generated`` with the I, Q (chroma) of ``content``, as uint8 RGB (same [h, w])."""
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = rgb_to_yiq(generated)[..., 0]
    return to_uint8(yiq_to_rgb(yiq))


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def resize_float(image: np.ndarray, height: int, width: int, top: float = PIXEL_MAX) -> np.ndarray:
    """Bicubic resize of a float [h, w, c] image in 0..top, channel by channel (keeps precision)."""
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image.astype(np.float32)
    channels = [np.asarray(Image.fromarray(image[..., c].astype(np.float32), mode="F").resize(
        (width, height), Image.BICUBIC)) for c in range(image.shape[-1])]
    return np.clip(np.stack(channels, axis=-1), PIXEL_MIN, top).astype(np.float32)
