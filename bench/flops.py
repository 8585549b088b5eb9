"""FLOP count of one style-transfer iteration (forward through the deepest layer, plus the image gradient).

Convolution: 2 * H * W * C_in * C_out * 9 multiply-adds-as-two-FLOPs per 3x3 'SAME'
conv, once forward and once for the input gradient (the filters are constants:
no filter gradient).  Gram matrix of a style layer: 2 * H * W * C^2 forward and
the same again for its gradient (dF = F (dG + dG^T), one matmul).  Pooling,
ReLU and the elementwise cost terms are O(H W C) and left out (< 1%).
"""

from __future__ import annotations

import math

# VGG-19 up to conv5_1: (name, C_in, C_out, pooling steps before it)
VGG19_CONVS = [
    ("conv1_1", 3, 64, 0), ("conv1_2", 64, 64, 0),
    ("conv2_1", 64, 128, 1), ("conv2_2", 128, 128, 1),
    ("conv3_1", 128, 256, 2), ("conv3_2", 256, 256, 2), ("conv3_3", 256, 256, 2), ("conv3_4", 256, 256, 2),
    ("conv4_1", 256, 512, 3), ("conv4_2", 512, 512, 3), ("conv4_3", 512, 512, 3), ("conv4_4", 512, 512, 3),
    ("conv5_1", 512, 512, 4),
]
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def _side(pixels: int, pools: int) -> int:
    for _ in range(pools):
        pixels = math.ceil(pixels / 2)  # 'SAME' 2x2 pooling rounds up
    return pixels


def iteration_flops(height: int, width: int, style_layers=STYLE_LAYERS) -> dict:
    """FLOPs of one iteration at ``height`` x ``width``, split by kind."""
    conv_forward = conv_backward = gram = 0
    for name, c_in, c_out, pools in VGG19_CONVS:
        positions = _side(height, pools) * _side(width, pools)
        layer = 2 * positions * c_in * c_out * 9
        conv_forward += layer
        conv_backward += layer  # input gradient: the same conv with the kernel flipped
        if name in style_layers:
            gram += 2 * (2 * positions * c_out * c_out)
    return {"conv_forward": conv_forward, "conv_input_gradient": conv_backward, "gram": gram,
            "total": conv_forward + conv_backward + gram}


if __name__ == "__main__":
    for h, w in ((300, 400), (384, 512), (512, 512), (768, 1024)):
        counts = iteration_flops(h, w)
        print(f"{w}x{h}: " + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in counts.items()) + " GFLOP")
