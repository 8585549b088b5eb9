"""The project's VGG-19 as a Keras weights file, for the second course's task files.

The task files call ``tf.keras.applications.VGG19(include_top=False,
weights=...)`` and import only numpy and tensorflow, so they cannot read the
project's MatConvNet ``.mat``.  This module writes the same weights once as a
Keras ``.weights.h5`` of that network (``python -m nst.weights`` does it after
fetching), which ``VGG19(weights=path)`` loads as it would Keras' ImageNet file.

The ``.mat`` expects RGB minus the mean pixel; Keras' VGG19 is fed
``preprocess_input(image * 255)``, BGR minus the BGR mean (Caffe mode), so
``block1_conv1``'s input-channel axis is reversed here.  A ``.sha256`` record
beside the file names its hash and the ``.mat`` it came from, so it is rebuilt
when either changes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from nst.io.files import atomic_path, sha256_of, shown, write_atomically
from nst.weights.load import WeightsError, is_regular_entry, load_vgg19, open_regular, sha256_of_regular

KERAS_NAME = "vgg19_notop.weights.h5"


def keras_layer_to_vgg(name: str) -> str:
    """Keras' layer name to the weights file's (``block3_conv2`` -> ``conv3_2``)."""
    block, conv = name.split("_")
    return "conv{}_{}".format(block[len("block"):], conv[len("conv"):])


def _record(path: Path, source: Path) -> str:
    return f"{sha256_of(path)}  {path.name}  from {source.name} {sha256_of(source)}\n"


def _is_current(target: Path, source: Path) -> bool:
    """True if ``target`` matches its record and the record names ``source`` as it is now."""
    sidecar = target.with_name(target.name + ".sha256")
    if not (is_regular_entry(target) and is_regular_entry(sidecar)):
        return False
    with open_regular(sidecar) as handle:
        fields = handle.read(4096).decode("ascii", errors="replace").split()
    expected = [sha256_of_regular(target), target.name, "from", source.name, sha256_of_regular(source)]
    return fields == expected


def write_keras_vgg19(source: Path, target: Path) -> Path:
    """Write ``target`` (a Keras VGG19 notop ``.weights.h5``) from the VGG-19 ``.mat`` ``source``."""
    import tensorflow as tf  # deferred: only this conversion needs it

    weights = load_vgg19(source)
    model = tf.keras.applications.VGG19(include_top=False, weights=None)
    for layer in model.layers:
        if not isinstance(layer, tf.keras.layers.Conv2D):
            continue
        name = keras_layer_to_vgg(layer.name)
        kernel = weights.kernels[name]  # (3, 3, in, out), RGB input for conv1_1
        if name == "conv1_1":
            kernel = kernel[:, :, ::-1, :]  # BGR input, as preprocess_input gives
        layer.set_weights([np.ascontiguousarray(kernel), weights.biases[name]])
    with atomic_path(target) as temporary:
        keras_name = temporary + ".weights.h5"  # Keras picks the format by this ending
        try:
            model.save_weights(keras_name)
            os.replace(keras_name, temporary)
        finally:
            Path(keras_name).unlink(missing_ok=True)
    sidecar = target.with_name(target.name + ".sha256")
    write_atomically(sidecar, lambda name: Path(name).write_text(_record(target, source)))
    return target


def ensure_keras_vgg19(source: Path, weights_dir: Path) -> Path:
    """The Keras file in ``weights_dir`` for the ``.mat`` ``source``, written if missing or stale."""
    target = Path(weights_dir) / KERAS_NAME
    try:
        if not _is_current(target, Path(source)):
            print(f"writing {shown(target)} for the course's task files (Keras' VGG19 layout)", file=sys.stderr)
            write_keras_vgg19(Path(source), target)
    except OSError as error:
        raise WeightsError(f"could not write {shown(target)} ({error}); fix that, then run "
                           f"`python -m nst.weights` again") from None
    return target
