"""Style statistics kept on disk between runs of the command line.

AdaIN needs only two numbers per relu4_1 channel from a painting: the mean and the standard
deviation of its features ([512] each, 8 KB together).  Encoding the painting for them is one of
the three network passes of a one-image ``--method fast`` run (a VGG-19 pass to relu4_1 at 512 px:
0.35-0.4 s of a 1.6-2.4 s command, measured with ``bench/bench_startup.py``).  A user who tries one
painting on photo after photo, one command each, pays it every time; the store pays it once.

A file is named by a hash of everything its numbers depend on: the style's pixels as they enter
the encoder (after resizing and any colour transfer), the encoder's verified weights, the runtime,
the precision and the convolution algorithms.  A hit therefore gives the numbers that encoding
the painting again would give: to the last bit on ONNX Runtime and OpenVINO, and on TensorFlow up to
the float rounding between its plain and XLA-compiled graphs (:mod:`nst.fast.network`).

Files are ``.npz`` read with ``allow_pickle=False``; one that is damaged, of the wrong shape or not
finite is ignored and replaced.  Writes are atomic (:func:`nst.io.files.write_atomically`), so two
processes that store the same painting at once leave one whole file.  The folder keeps the newest
:data:`STYLE_STORE_FILES` files; a read counts as use.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from nst.io.files import write_atomically

STYLE_STORE_FOLDER = ".styles"  # in the weights folder (nst.weights.load.WEIGHTS_DIR), beside ".onnx"
STYLE_STORE_FILES = 256  # about 2 MB of .npz files: pruned, oldest first, when a new one is written
SUFFIX = ".npz"


class StyleStore:
    """The statistics of the paintings one network has encoded, in ``folder``.

    ``network_key`` names the network (weights, runtime, precision, convolutions); a painting is named
    by ``pixels``, a digest of its pixels, shape and dtype.  ``get(pixels)`` -> (mean, std) or None;
    ``put(pixels, mean, std)``.  Neither raises for a disk problem: the store only saves time, so a
    read-only or full folder means encoding the painting again."""

    def __init__(self, folder, network_key: str, channels: int, keep: int = STYLE_STORE_FILES):
        self.folder, self.network_key, self.channels, self.keep = Path(folder), network_key, channels, keep

    def path(self, pixels: str) -> Path:
        name = hashlib.sha256(f"{self.network_key} {pixels}".encode()).hexdigest()[:32]
        return self.folder / (name + SUFFIX)

    def get(self, pixels: str) -> Optional[tuple]:
        path = self.path(pixels)
        try:
            with np.load(path, allow_pickle=False) as data:
                mean, std = np.array(data["mean"]), np.array(data["std"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # missing, damaged, not ours
            return None
        expected = (self.channels,)
        if mean.shape != expected or std.shape != expected or mean.dtype != np.float64 or std.dtype != np.float64:
            return None
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            return None
        with contextlib.suppress(OSError):  # a read-only folder: the file is only pruned sooner
            os.utime(path)  # recently used: pruned last
        return mean, std

    def put(self, pixels: str, mean: np.ndarray, std: np.ndarray) -> None:
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # np.savez adds ".npz" to a name without it; the temporary name beside the target keeps the suffix.
            write_atomically(self.path(pixels), lambda name: np.savez(name, mean=mean, std=std))
            self._prune()
        except OSError:
            pass  # a read-only or full folder: the painting is encoded again next time

    def _prune(self) -> None:
        """Keep the newest ``keep`` files (by modification time); a file another process removed is skipped."""
        entries = []
        for entry in os.scandir(self.folder):
            if entry.name.endswith(SUFFIX) and not entry.name.startswith("."):
                try:
                    entries.append((entry.stat().st_mtime_ns, entry.path))
                except OSError:
                    continue
        for _, path in sorted(entries)[:max(0, len(entries) - self.keep)]:  # the oldest first
            Path(path).unlink(missing_ok=True)
