"""A plain PyTorch CPU implementation of the same costs and weights, for comparison only.

Optional benchmark dependency (``pip install torch==2.13.0``), never a runtime one.
Same network (VGG-19 to conv5_1 from :mod:`nst.weights.load`, average pooling), same
costs (content at conv4_2, Gram style cost at conv1_1 ... conv5_1, course
normalisations), Adam at 2.0 on the pixels: what a straightforward port does.
"""

from __future__ import annotations

import numpy as np

from nst.weights.load import MEAN_RGB, load_vgg19

CONTENT_LAYER = "conv4_2"
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
ORDER = ("conv1_1", "conv1_2", "pool", "conv2_1", "conv2_2", "pool", "conv3_1", "conv3_2", "conv3_3", "conv3_4",
         "pool", "conv4_1", "conv4_2", "conv4_3", "conv4_4", "pool", "conv5_1")


class TorchProblem:
    def __init__(self, weights_path, content: np.ndarray, style: np.ndarray, threads: int = 2,
                 alpha: float = 10.0, beta: float = 40.0):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        vgg = load_vgg19(weights_path)
        # [kh, kw, in, out] -> [out, in, kh, kw]
        self.kernels = {n: torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1))) for n, k in vgg.kernels.items()}
        self.biases = {n: torch.from_numpy(b) for n, b in vgg.biases.items()}
        self.alpha, self.beta = alpha, beta
        with torch.no_grad():
            self.content_target = self.features(self.to_tensor(content))[CONTENT_LAYER]
            style_features = self.features(self.to_tensor(style))
            self.gram_targets = {n: self.gram(style_features[n]) for n in STYLE_LAYERS}
        self.image = self.to_tensor(content).clone().requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.image], lr=2.0)

    def to_tensor(self, rgb: np.ndarray):
        """uint8/float [h, w, 3] 0..255 -> [1, 3, h, w] minus the mean."""
        return self.torch.from_numpy(((rgb.astype(np.float32) - MEAN_RGB).transpose(2, 0, 1))[None].copy())

    def features(self, x):
        F = self.torch.nn.functional
        out = {}
        for name in ORDER:
            if name == "pool":
                x = F.avg_pool2d(x, 2, ceil_mode=True)
            else:
                x = F.relu(F.conv2d(x, self.kernels[name], self.biases[name], padding=1))
                out[name] = x
        return out

    def gram(self, activation):
        _, c, h, w = activation.shape
        rows = activation.reshape(c, h * w)
        return rows @ rows.T

    def cost(self):
        feats = self.features(self.image)
        a = feats[CONTENT_LAYER]
        _, c, h, w = a.shape
        content = ((a - self.content_target) ** 2).sum() / (4 * c * h * w)
        style = 0
        for name in STYLE_LAYERS:
            _, c, h, w = feats[name].shape
            style = style + 0.2 * ((self.gram(feats[name]) - self.gram_targets[name]) ** 2).sum() / (4 * c ** 2 * (h * w) ** 2)
        return self.alpha * content + self.beta * style

    def step(self) -> float:
        self.optimizer.zero_grad()
        total = self.cost()
        total.backward()
        self.optimizer.step()
        return float(total)
