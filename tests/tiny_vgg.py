"""A tiny random VGG-19 for fast tests: the real layer names, 8 channels per conv layer.

Written in the MatConvNet layout by the project's writer and read by the real
loader, so the engine runs exactly as with the real weights, only much faster.
"""

from pathlib import Path

import numpy as np

from nst.weights.load import CONV_LAYERS
from nst.weights.fetch import write_matconvnet_mat


def write_tiny_vgg(path, width: int = 8, seed: int = 42) -> Path:
    rng = np.random.default_rng(seed)
    layers, channels = {}, 3
    for name in CONV_LAYERS:
        kernel = rng.normal(0, np.sqrt(2 / (9 * channels)), size=(3, 3, channels, width)).astype(np.float32)
        layers[name] = (kernel, np.full((width, 1), 0.1, dtype=np.float32))  # [kw, kh, in, out], [out, 1]
        channels = width
    write_matconvnet_mat(layers, Path(path), "tiny random test network")
    return Path(path)
