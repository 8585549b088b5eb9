"""The fast mode's encoder and decoder run tile by tile, for pictures whose activations do not fit (issue 32).

Both networks are convolutional, so a feature (an output pixel) depends only on the input inside its
receptive field.  A tile run on its own with enough input around it (the margin) therefore gives, inside,
exactly what the whole picture's run gives there, up to float rounding; the margin is cropped off.  At
the picture's own edges a tile ends where the picture ends and pads it as the whole run does.  Nothing
is blended, so no seam can form.  AdaIN's statistics are taken from the whole feature map, which is
assembled here (512 floats per 8x8 pixels: 0.4 GB at 4096x3072), never from one tile.

Receptive fields, counted from the layers (a 3x3 conv widens it by 2 steps of the layer's stride, a 2x2
pool by 1): relu4_1 sees 68x68 pixels, 34 on each side; an output pixel of the decoder depends on features
up to 3.75 feature positions away (30 pixels).  The margins below round those up (tests/fast/test_tiles.py
checks that margins of 40 pixels and 4 features already give the whole run's picture, and 32 and 3 do
not).  Tiles start on the 8-pixel grid, so the poolings and the upsamplings line up with the whole run's.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from nst.fast.network import FEATURE_STRIDE

ENCODER_MARGIN = 48  # pixels of input around an encoder tile: relu4_1's receptive field reaches 34
DECODER_MARGIN = 6  # features around a decoder tile: an output pixel depends on features 3.75 away


def _spans(length: int, tile: int, margin: int) -> Iterator[tuple]:
    """(start, stop, start with margin, stop with margin) of the tiles along one axis of ``length``."""
    for start in range(0, length, tile):
        stop = min(start + tile, length)
        yield start, stop, max(0, start - margin), min(length, stop + margin)


def _grid(height: int, width: int, tile: int, margin: int) -> Iterator[tuple]:
    for row in _spans(height, tile, margin):
        for column in _spans(width, tile, margin):
            yield row, column


def encode_tiled(encode: Callable, image: np.ndarray, tile_features: int) -> np.ndarray:
    """relu4_1 of ``image`` [h, w, 3] -> [ceil(h/8), ceil(w/8), 512], ``tile_features`` square at a time.

    ``encode`` takes [1, h', w', 3] and returns [1, ceil(h'/8), ceil(w'/8), 512]."""
    height, width = image.shape[:2]
    rows, columns = -(-height // FEATURE_STRIDE), -(-width // FEATURE_STRIDE)
    features = None
    margin = -(-ENCODER_MARGIN // FEATURE_STRIDE)  # in features (rounded up), so tiles start on the 8-pixel grid
    for (r0, r1, a0, a1), (c0, c1, b0, b1) in _grid(rows, columns, tile_features, margin):
        part = np.asarray(encode(image[None, a0 * FEATURE_STRIDE:a1 * FEATURE_STRIDE,
                                       b0 * FEATURE_STRIDE:b1 * FEATURE_STRIDE])[0])
        if features is None:
            features = np.empty((rows, columns, part.shape[-1]), np.float32)
        features[r0:r1, c0:c1] = part[r0 - a0:r1 - a0, c0 - b0:c1 - b0]
    return features


def decode_tiled(decode: Callable, features: np.ndarray, tile_features: int) -> np.ndarray:
    """Decoded features [fh, fw, 512] -> float RGB [8 fh, 8 fw, 3], ``tile_features`` square at a time.

    ``decode`` takes [1, fh', fw', 512] and returns [1, 8 fh', 8 fw', 3]."""
    rows, columns = features.shape[:2]
    out = np.empty((rows * FEATURE_STRIDE, columns * FEATURE_STRIDE, 3), np.float32)
    for (r0, r1, a0, a1), (c0, c1, b0, b1) in _grid(rows, columns, tile_features, DECODER_MARGIN):
        part = np.asarray(decode(features[None, a0:a1, b0:b1])[0])
        s = FEATURE_STRIDE
        out[r0 * s:r1 * s, c0 * s:c1 * s] = part[(r0 - a0) * s:(r1 - a0) * s, (c0 - b0) * s:(c1 - b0) * s]
    return out


def tile_borders(height: int, width: int, tile_features: int) -> tuple:
    """(rows, columns) in pixels where one tile's output meets the next: where a seam would show."""
    step = tile_features * FEATURE_STRIDE
    return list(range(step, height, step)), list(range(step, width, step))
