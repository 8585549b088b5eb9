"""Video: a clip stylised frame by frame without flicker, its sound kept.

io (decoding and encoding through ffmpeg, atomic outputs), flow (optical flow and
its reliability), temporal (the engine: warp the last output, blend, events per
frame), work (what each worker needs for a frame) and segments (a long clip split
over workers and stitched back with cross-fades).
"""

from nst._exports import lazy

__getattr__ = lazy(__name__, {"VideoWork": "work", "FrameDone": "temporal"})
__all__ = ["VideoWork", "FrameDone"]
