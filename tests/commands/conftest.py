"""Fixtures of the command-line tests: a tiny VGG-19, a small image pair, a small real disk."""

import os
import subprocess

import numpy as np
import pytest
from PIL import Image

from tiny_vgg import write_tiny_vgg


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_vgg(tmp_path_factory.mktemp("weights") / "tiny.mat")


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(1)
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(content)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(style)
    return content, style


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(size)``: a new folder with a real tmpfs of ``size`` ("16k") mounted on it, unmounted afterwards.

    Skips where this machine cannot mount one (not root, no mount rights); the simulated
    full-disk tests cover those machines.
    """
    mounted = []

    def mount(size: str):
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=False)
