"""Where the tiles of a picture too large for its activations lie (the geometry only, no TensorFlow).

A tile is a *core*, the pixels whose features it owns, inside an *outer* box that adds a
margin of context on every side that is not the picture's edge.  VGG-19's features at a
layer depend on the pixels within its receptive radius, so with a margin at least that
radius the core's features equal the whole picture's, up to rounding: the tiled costs
are the whole picture's costs, and there is no seam to hide (no blending, no shifted grid).

Every core and outer box starts on a multiple of the deepest layer's stride (16 px for
conv5_1, after four 2x2 poolings), so each pooling window covers the same pixels as it
does in the whole picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nst.weights.load import CONV_LAYERS


def block_of(layer: str) -> int:
    """``conv3_2`` -> 3: the VGG block, after ``block - 1`` poolings."""
    return int(layer[4])


def stride_of(layer: str) -> int:
    """Pixels per feature position of a conv layer: 1, 2, 4, 8, 16 in blocks 1 to 5."""
    return 2 ** (block_of(layer) - 1)


def receptive_radius(last_layer: str) -> int:
    """How far (pixels) beyond its own cell a feature of ``last_layer`` sees, on either side.

    A feature at stride s owns a cell of s x s pixels.  Each 3x3 convolution at stride s widens
    what it sees by s on each side; a 2x2 pooling joins two cells into one and widens nothing
    beyond them.  conv5_1: 2 + 2*2 + 4*4 + 4*8 + 16 = 70 px.
    """
    return sum(stride_of(layer) for layer in CONV_LAYERS[:CONV_LAYERS.index(last_layer) + 1])


def margin_for(last_layer: str) -> int:
    """The receptive radius rounded up to the layer's stride (the tiles' alignment): 80 px for conv5_1."""
    stride = stride_of(last_layer)
    return math.ceil(receptive_radius(last_layer) / stride) * stride


def margin_of(settings) -> int:
    """The tiles' margin for a run of ``settings`` (resolved): that of its deepest content or style layer."""
    layers = [settings.content_layer, *(name for name, _ in settings.style_layers)]
    return margin_for(max(layers, key=CONV_LAYERS.index))


@dataclass(frozen=True)
class Tile:
    """One tile: ``core`` and ``outer`` as (top, bottom, left, right) pixel bounds, bottom and right excluded."""

    core: tuple
    outer: tuple

    def crop(self, stride: int) -> tuple:
        """The core within the outer box's features at ``stride``: (row, column, rows, columns).

        Both boxes start on multiples of the stride; an end that is not one is the picture's own
        edge, where 'SAME' pooling keeps a last, partial position (ceil), as in the whole picture.
        """
        top, bottom, left, right = self.core
        row, column = (top - self.outer[0]) // stride, (left - self.outer[2]) // stride
        return row, column, -(-bottom // stride) - top // stride, -(-right // stride) - left // stride

    @property
    def outer_pixels(self) -> int:
        top, bottom, left, right = self.outer
        return (bottom - top) * (right - left)


def _cuts(length: int, side: int, align: int) -> list:
    """Bounds [0, ..., length] of ceil(length / side) cores of near-equal length, inner bounds on ``align``."""
    count = max(1, math.ceil(length / side))
    inner = [round(length * i / count / align) * align for i in range(1, count)]
    return [0] + sorted(set(b for b in inner if 0 < b < length)) + [length]


def plan(height: int, width: int, side: int, last_layer: str) -> list:
    """Tiles covering a ``height`` x ``width`` picture with cores of at most about ``side`` px,
    row by row; each outer box is its core plus :func:`margin_for` ``last_layer``, clipped to the picture."""
    align, margin = stride_of(last_layer), margin_for(last_layer)
    side = max(align, side // align * align)
    rows, columns = _cuts(height, side, align), _cuts(width, side, align)
    tiles = []
    for top, bottom in zip(rows[:-1], rows[1:]):
        for left, right in zip(columns[:-1], columns[1:]):
            outer = (max(0, top - margin), min(height, bottom + margin), max(0, left - margin), min(width, right + margin))
            tiles.append(Tile((top, bottom, left, right), outer))
    return tiles
