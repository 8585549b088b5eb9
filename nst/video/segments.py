"""Cutting a clip into overlapping segments for a pool of workers, and putting the outputs back together.

A consistent video (each output frame blended with the previous one) is
sequential, so a pool cannot share it out frame by frame.  Instead the clip is
cut into segments of ``length`` frames, each stylised afresh by one worker (its
first frame is not blended with anything).  Consecutive segments share
:data:`OVERLAP` frames; where they meet, the earlier segment's outputs are
faded linearly into the later one's, so the restart is spread over those frames
instead of showing as a jump.

Segment k starts at frame ``k * (length - OVERLAP)``.  ``length`` is at least
``2 * OVERLAP``, so a frame is shared by two segments at most.  Everything here
is plain NumPy on uint8 [n, h, w, 3] stacks and knows nothing of workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

OVERLAP = 4  # frames shared by two neighbouring segments, cross-faded
DEFAULT_SEGMENT_FRAMES = 32  # 28 new frames a segment: the overlap costs 1/7 more stylising
MIN_SEGMENT_FRAMES = 2 * OVERLAP


@dataclass(frozen=True)
class Segment:
    """A run of consecutive frames: ``frames`` from ``start``, the first ``shared`` also in the previous segment."""

    start: int
    frames: int
    shared: int


@dataclass
class Piece:
    """A segment with its decoded frames, as the driver hands it to a worker."""

    start: int
    shared: int
    frames: np.ndarray  # uint8 [n, h, w, 3]


def check_length(length: int, overlap: int = OVERLAP) -> int:
    if length < 2 * overlap or length < 1:
        raise ValueError(f"a segment needs at least {max(1, 2 * overlap)} frames ({overlap} shared at each end), "
                         f"not {length}")
    return length


def plan_segments(total: int, length: int = DEFAULT_SEGMENT_FRAMES, overlap: int = OVERLAP) -> list[Segment]:
    """The segments covering frames 0..total-1; none holds only frames of the previous one."""
    check_length(length, overlap)
    segments, start, shared = [], 0, 0
    while start + shared < total:
        end = min(start + length, total)
        segments.append(Segment(start, end - start, shared))
        start, shared = end - overlap, overlap
    return segments


def segments_of(frames: Iterable[np.ndarray], length: int = DEFAULT_SEGMENT_FRAMES,
                overlap: int = OVERLAP) -> Iterator[Piece]:
    """The same cut as :func:`plan_segments` from a stream of frames of unknown length.

    Holds one segment's frames at a time (plus the next frame, read ahead to know
    whether another segment follows), so a long clip is never all in memory.
    """
    check_length(length, overlap)
    frames = iter(frames)
    upcoming = next(frames, None)
    carried, start = [], 0
    while upcoming is not None:
        chunk = list(carried)
        while len(chunk) < length and upcoming is not None:
            chunk.append(upcoming)
            upcoming = next(frames, None)
        yield Piece(start, len(carried), np.stack(chunk))
        carried = chunk[len(chunk) - overlap:] if overlap else []
        start += len(chunk) - len(carried)


def crossfade(earlier: np.ndarray, later: np.ndarray) -> np.ndarray:
    """Fade linearly from ``earlier`` to ``later`` (both uint8 [n, h, w, 3], the same n frames).

    Frame i (0-based) takes (i + 1) / (n + 1) of ``later``: for n = 4, 0.2, 0.4,
    0.6, 0.8, so neither end repeats the segment it leaves or joins.
    """
    if earlier.shape != later.shape:
        raise ValueError(f"cross-fading stacks of different shapes: {earlier.shape} and {later.shape}")
    count = len(earlier)
    weight = (np.arange(1, count + 1, dtype=np.float32) / (count + 1)).reshape(-1, 1, 1, 1)
    mixed = (1.0 - weight) * earlier.astype(np.float32) + weight * later.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


class Stitcher:
    """Takes each segment's outputs in clip order and gives back the finished frames in order.

    The last :data:`OVERLAP` outputs of a segment are held until the next segment
    arrives (they are cross-faded with its first ones) or :meth:`finish` is called.
    """

    def __init__(self, overlap: int = OVERLAP):
        self.overlap, self._held = overlap, None  # uint8 [<= overlap, h, w, 3]

    def add(self, outputs: np.ndarray, shared: int) -> np.ndarray:
        """The frames now final, uint8 [k, h, w, 3] (k may be 0), from one segment's ``outputs``."""
        done = []
        if shared:
            if self._held is None or len(self._held) != shared:
                held = 0 if self._held is None else len(self._held)
                raise ValueError(f"a segment shares {shared} frames with the previous one, which left {held}")
            done.append(crossfade(self._held, outputs[:shared]))
        fresh = outputs[shared:]
        keep = min(self.overlap, len(fresh))
        done.append(fresh[:len(fresh) - keep])
        self._held = fresh[len(fresh) - keep:]
        return np.concatenate(done) if done else fresh[:0]

    def finish(self) -> np.ndarray:
        """The held frames of the last segment (nothing follows to fade into)."""
        held, self._held = self._held, None
        return held if held is not None else np.zeros((0, 0, 0, 3), np.uint8)


def in_order(results: Iterable[tuple[int, object]]) -> Iterator[tuple[int, object]]:
    """``(index, value)`` pairs that arrive in any order, yielded by index 0, 1, 2, ...

    Holds the ones that arrived early (at most those finished while an earlier one was still running).
    """
    waiting, next_index = {}, 0
    for index, value in results:
        waiting[index] = value
        while next_index in waiting:
            yield next_index, waiting.pop(next_index)
            next_index += 1
    if waiting:
        raise ValueError(f"results missing before index {min(waiting)}: expected {next_index}")
