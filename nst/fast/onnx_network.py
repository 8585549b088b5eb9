"""The AdaIN encoder and decoder on ONNX Runtime, for a fast command that starts in a fraction of a second.

Importing TensorFlow takes 3-5 s on the project's machines; ONNX Runtime 0.1-0.3 s.  For one image the
start-up is most of the wall time, so the command line's fast path can run the same two networks here
instead.  The graphs are written with the ``onnx`` package's helpers from the converted weights (no
converter, no torch), once, and kept in the weights folder (``.onnx/``); they are the same computation as
:mod:`nst.fast.network`'s plain graph: reflection padding (torch's ``ReflectionPad2d(1)``), 3x3
convolutions, ReLU, 2x2 max pooling rounding odd sizes up (torch's ``ceil_mode``), nearest 2x
upsampling in the decoder.  float32 only.  Both ``onnx`` and ``onnxruntime`` are imported only here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from nst.fast.network import FEATURE_CHANNELS, POOL_AFTER, UPSAMPLE_AFTER
from nst.io.files import write_atomically

OPSET = 17
IR_VERSION = 8  # the file format: what ONNX Runtime 1.14 and later read (the onnx package writes its newest)
MODEL_LAYOUT = 1  # raise when the graphs below change: cached model files then get new names


def available() -> bool:
    """Whether ONNX Runtime and the onnx package can be imported here (without importing them)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def _conv_nodes(helper, numpy_helper, x: str, name: str, kernel, bias, relu: bool, initializers: list) -> tuple:
    """Reflection pad, 3x3 conv (kernel [3, 3, in, out] -> ONNX [out, in, 3, 3]), optional ReLU: (nodes, output)."""
    initializers += [numpy_helper.from_array(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), np.float32), name + "_w"),
                     numpy_helper.from_array(np.asarray(bias, np.float32).reshape(-1), name + "_b")]
    nodes = [helper.make_node("Pad", [x, "pads_1"], [name + "_pad"], mode="reflect"),
             helper.make_node("Conv", [name + "_pad", name + "_w", name + "_b"], [name + "_conv"], kernel_shape=[3, 3])]
    if relu:
        nodes.append(helper.make_node("Relu", [name + "_conv"], [name + "_relu"]))
    return nodes, nodes[-1].output[0]


def _model(helper, numpy_helper, onnx, inputs, output: str, nodes: list, initializers: list, channels_in: int,
           channels_out: int):
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads_1")  # N, C, H, W begins; ends
    graph = helper.make_graph(
        nodes, "nst", [helper.make_tensor_value_info(inputs, onnx.TensorProto.FLOAT, [1, channels_in, None, None])],
        [helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, [1, channels_out, None, None])],
        initializer=[pads, *initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)


def encoder_model(vgg, layers, mean_rgb):
    """RGB 0..1 [1, 3, h, w] -> relu4_1 [1, 512, ceil(h/8), ceil(w/8)] (``layers``: VGG names to conv4_1)."""
    import onnx
    from onnx import helper, numpy_helper

    initializers = [numpy_helper.from_array(np.float32(255.0).reshape(1), "scale"),
                    numpy_helper.from_array(np.asarray(mean_rgb, np.float32).reshape(1, 3, 1, 1), "mean")]
    nodes = [helper.make_node("Mul", ["image", "scale"], ["scaled"]), helper.make_node("Sub", ["scaled", "mean"], ["x0"])]
    x = "x0"
    for name in layers:
        conv, x = _conv_nodes(helper, numpy_helper, x, name, vgg.kernels[name], vgg.biases[name], True, initializers)
        nodes += conv
        if name in POOL_AFTER:
            nodes.append(helper.make_node("MaxPool", [x], [name + "_pool"], kernel_shape=[2, 2], strides=[2, 2],
                                          ceil_mode=1))
            x = name + "_pool"
    return _model(helper, numpy_helper, onnx, "image", x, nodes, initializers, 3, FEATURE_CHANNELS)


def decoder_model(decoder):
    """relu4_1-shaped features [1, 512, h, w] -> RGB [1, 3, 8h, 8w], not yet clipped."""
    import onnx
    from onnx import helper, numpy_helper

    initializers = [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales_2x")]
    nodes, x, last = [], "features", len(decoder.kernels) - 1
    for index, (kernel, bias) in enumerate(zip(decoder.kernels, decoder.biases)):
        conv, x = _conv_nodes(helper, numpy_helper, x, f"dec{index}", kernel, bias, index != last, initializers)
        nodes += conv
        if index in UPSAMPLE_AFTER:  # nearest 2x: each pixel repeated in a 2x2 block
            nodes.append(helper.make_node("Resize", [x, "", "scales_2x"], [f"dec{index}_up"], mode="nearest",
                                          coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
            x = f"dec{index}_up"
    return _model(helper, numpy_helper, onnx, "features", x, nodes, initializers, FEATURE_CHANNELS, 3)


def files_key(encoder_path, decoder_path) -> "str | None":
    """A cache key from the weights files' verified SHA-256 records (cheap: no weights read), or None
    when either file has none (a user's own ``.mat``, say)."""
    from nst.weights.fetch import verified_sha256

    hashes = [verified_sha256(path) if path is not None else None for path in (encoder_path, decoder_path)]
    if None in hashes:
        return None
    return hashlib.sha256(f"{OPSET} {IR_VERSION} {MODEL_LAYOUT} files {hashes}".encode()).hexdigest()[:16]


def arrays_key(vgg, decoder, layers, mean_rgb) -> str:
    """A cache key from the weights themselves, for networks given as arrays."""
    digest = hashlib.sha256(f"{OPSET} {IR_VERSION} {MODEL_LAYOUT} {list(layers)}".encode())
    for array in [*(vgg.kernels[name] for name in layers), *(vgg.biases[name] for name in layers),
                  *decoder.kernels, *decoder.biases, np.asarray(mean_rgb, np.float32)]:
        digest.update(np.ascontiguousarray(array, np.float32).tobytes())
    return digest.hexdigest()[:16]


def _cache_paths(cache_dir, key) -> list:
    return [Path(cache_dir) / f"{part}-{key}.onnx" for part in ("encoder", "decoder")] if cache_dir and key else []


def read_cached(cache_dir, key) -> "list | None":
    """[encoder, decoder] model bytes written earlier under ``key``, or None."""
    paths = _cache_paths(cache_dir, key)
    try:
        return [path.read_bytes() for path in paths] if paths and all(p.is_file() for p in paths) else None
    except OSError:
        return None  # unreadable: built again


def model_bytes(vgg, decoder, layers, mean_rgb, cache_dir=None, key=None) -> list:
    """[encoder, decoder] as serialized ONNX models, built now and written to ``cache_dir`` under ``key``
    (default: :func:`arrays_key`) so that later runs read them (:func:`read_cached`): importing the
    ``onnx`` package and building the graphs cost more than the rest of a one-image run's start."""
    built = [encoder_model(vgg, layers, mean_rgb).SerializeToString(), decoder_model(decoder).SerializeToString()]
    for path, data in zip(_cache_paths(cache_dir, key or arrays_key(vgg, decoder, layers, mean_rgb)), built):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, lambda name, data=data: Path(name).write_bytes(data))
        except OSError:
            pass  # a read-only weights folder: built again next time
    return built


class OnnxNetworks:
    """``encode`` and ``decode`` as :class:`nst.fast.network.Network`'s, on NumPy NHWC arrays, run by ONNX Runtime.

    ``models(rebuild)`` gives [encoder, decoder] model bytes; it is called again with ``rebuild=True``
    if ONNX Runtime refuses what it gave first (a damaged cached file)."""

    def __init__(self, models, threads: int = 0):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one per core
        options.log_severity_level = 3  # errors only, like the TensorFlow path

        def sessions(rebuild: bool) -> list:
            return [onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
                    for data in models(rebuild)]

        try:
            self._sessions = sessions(rebuild=False)
        except Exception:  # a damaged cached file (ONNX Runtime's errors have no common class): build afresh
            self._sessions = sessions(rebuild=True)

    def _run(self, session, name: str, nhwc: np.ndarray) -> np.ndarray:
        nchw = np.ascontiguousarray(np.asarray(nhwc, np.float32).transpose(0, 3, 1, 2))
        (out,) = session.run(None, {name: nchw})
        return out.transpose(0, 2, 3, 1)

    def encode(self, images: np.ndarray) -> np.ndarray:
        """RGB 0..1 [1, h, w, 3] -> features [1, ceil(h/8), ceil(w/8), 512]."""
        return self._run(self._sessions[0], "image", images)

    def decode(self, features: np.ndarray) -> np.ndarray:
        """Features [1, h, w, 512] -> RGB [1, 8h, 8w, 3]."""
        return self._run(self._sessions[1], "features", features)
