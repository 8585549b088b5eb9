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

from nst.fast import convolutions as fastconv
from nst.fast.network import FEATURE_CHANNELS, POOL_AFTER, UPSAMPLE_AFTER
from nst.io.files import write_atomically

OPSET = 17
IR_VERSION = 8  # the file format: what ONNX Runtime 1.14 and later read (the onnx package writes its newest)
# ONNX Runtime's Winograd also needs this many channels on one side (nst.fast.onnx_network.onnx_algorithm).
WINOGRAD_WIDER_CHANNELS = 256
MODEL_LAYOUT = 3  # raise when the graphs below change: cached model files then get new names


def available() -> bool:
    """Whether ONNX Runtime and the onnx package can be imported here (without importing them)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


class _Graph:
    """Nodes and constants of one ONNX graph under construction; every node gets a fresh output name."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []

    def constant(self, name: str, array, dtype=np.float32) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array, dtype), name))
        return name

    def node(self, op: str, inputs: list, name: str, **attributes) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [name], **attributes))
        return name


def onnx_algorithm(channels_in: int, channels_out: int, after_upsample: bool, convolutions: str) -> str:
    """The algorithm of one reflection-padded 3x3 conv on ONNX Runtime: the upsampling folded into the conv
    after it (2.25x fewer multiplications); Winograd F(4x4, 3x3) where both sides have 128 channels or more
    and one has 256 (one layer at a time on a Zen 4 host, 1.2-1.7x faster than ONNX Runtime's own conv,
    though its transforms run unfused; 128 -> 128 gained under 15 % for four times the layer's memory);
    the direct conv elsewhere; "direct" everywhere for ``convolutions="direct"``."""
    if convolutions == "direct":
        return "direct"
    if after_upsample:
        return "upsampled"
    wide = (min(channels_in, channels_out) >= fastconv.WINOGRAD_MIN_CHANNELS
            and max(channels_in, channels_out) >= WINOGRAD_WIDER_CHANNELS)
    return "winograd4" if wide else "direct"


def _height_width(graph: _Graph, x: str, name: str) -> str:
    """[h, w] of x [1, c, h, w], as an int64 tensor of the graph."""
    return graph.node("Shape", [x], name + "_hw", start=2)


def _direct(graph: _Graph, x: str, name: str, kernel, bias) -> str:
    """Reflection pad and a 3x3 conv: [1, in, h, w] -> [1, out, h, w] (kernel [3, 3, in, out] -> ONNX
    [out, in, 3, 3])."""
    padded = graph.node("Pad", [x, "pads_1"], name + "_pad", mode="reflect")
    return graph.node("Conv", [padded, graph.constant(name + "_w", kernel.transpose(3, 2, 0, 1)),
                               graph.constant(name + "_b", bias)], name + "_conv", kernel_shape=[3, 3])


def _upsampled(graph: _Graph, x: str, name: str, kernel, bias) -> str:
    """Reflection pad and 3x3 conv of x's nearest 2x upsampling, as one 2x2 conv on x itself
    (:func:`nst.fast.convolutions.upsampled_conv`): [1, in, h, w] -> [1, out, 2h, 2w].

    Edge padding x by one pixel ([1, in, h + 2, w + 2]) gives the 2x2 windows; the conv yields every 2x2
    output block as 4 * out channels ([1, 4 out, h + 1, w + 1]), DepthToSpace lays them out (DCR order,
    as ``upsampled_kernel`` numbers them: [1, out, 2h + 2, 2w + 2]) and a one-pixel crop leaves 2h x 2w."""
    kernel2 = fastconv.upsampled_kernel(kernel).transpose(3, 2, 0, 1)  # [4 out, in, 2, 2]
    edge = graph.node("Pad", [x, "pads_1"], name + "_edge", mode="edge")
    blocks = graph.node("Conv", [edge, graph.constant(name + "_w", kernel2),
                                 graph.constant(name + "_b", np.tile(bias, 4))], name + "_blocks", kernel_shape=[2, 2])
    spread = graph.node("DepthToSpace", [blocks], name + "_spread", blocksize=2, mode="DCR")
    end = graph.node("Add", [graph.node("Mul", [_height_width(graph, x, name), "two"], name + "_2hw"), "one"],
                     name + "_end")
    return graph.node("Slice", [spread, "ones_2", end, "axes_hw"], name + "_crop")


def _winograd4(graph: _Graph, x: str, name: str, kernel, bias) -> str:
    """Reflection pad and 3x3 conv by Winograd's F(4x4, 3x3) (:mod:`nst.fast.convolutions`, Lavin and Gray 2016):
    [1, in, h, w] -> [1, out, h, w], in ONNX Runtime's own kernels (t = 6, th x tw = ceil(h/4) x ceil(w/4) tiles).

    The input transform B^T d B of every 6x6 tile at stride 4 is one conv over the channels taken as a batch
    ([in, 1, h + 2, w + 2] -> [in, 36, th, tw]; its 3 zero rows and columns at the end make exactly the
    tiles the image needs, whatever h and w); then 36 products [out, in] x [in, tiles]; the output transform
    A^T M A with the blocks laid out is one transposed conv of stride 4 ([out, 36, th, tw] -> [out, 1, 4th, 4tw]),
    cropped to h x w."""
    scheme, tile = fastconv.WINOGRAD[4], 6
    channels_in, channels_out = kernel.shape[2:]
    # G g G^T of every kernel: [36, 9] x [9, out in] -> [36, out, in].  Computed in the graph, from the 3x3
    # kernel, so that the file and the session hold 9 numbers per channel pair, not 36.
    g_pair = np.einsum("ai,bj->abij", scheme.g, scheme.g).reshape(tile * tile, 9)
    taps = graph.constant(name + "_w", kernel.transpose(0, 1, 3, 2).reshape(9, channels_out * channels_in))
    products = graph.node("Reshape", [graph.node("MatMul", [graph.constant(name + "_g", g_pair), taps], name + "_gg"),
                                      graph.constant(name + "_ushape", [tile * tile, channels_out, channels_in],
                                                     np.int64)], name + "_u")  # [36, out, in]
    tiles_in = np.einsum("ri,cj->rcij", scheme.b_t, scheme.b_t).reshape(tile * tile, 1, tile, tile)
    tiles_out = np.einsum("ar,bc->rcab", scheme.a_t, scheme.a_t).reshape(tile * tile, 1, 4, 4)
    padded = graph.node("Pad", [x, "pads_1"], name + "_pad", mode="reflect")
    batch = graph.node("Reshape", [padded, "shape_channels_as_batch"], name + "_batch")  # [in, 1, h + 2, w + 2]
    v = graph.node("Conv", [batch, graph.constant(name + "_bt", tiles_in)], name + "_v", kernel_shape=[tile, tile],
                   strides=[4, 4], pads=[0, 0, 3, 3])  # [in, 36, th, tw]
    v = graph.node("Transpose", [v], name + "_vt", perm=[1, 0, 2, 3])  # [36, in, th, tw]
    m = graph.node("MatMul", [products,
                              graph.node("Reshape", [v, "shape_flat_tiles"], name + "_vflat")],
                   name + "_m")  # [36, out, th tw]
    m = graph.node("Transpose", [m], name + "_mt", perm=[1, 0, 2])  # [out, 36, th tw]
    grid = graph.node("Concat", [graph.node("Shape", [m], name + "_mshape", end=2),
                                 graph.node("Shape", [v], name + "_tiles", start=2)], name + "_grid", axis=0)
    m = graph.node("Reshape", [m, grid], name + "_m4")  # [out, 36, th, tw]
    y = graph.node("ConvTranspose", [m, graph.constant(name + "_at", tiles_out)], name + "_y", kernel_shape=[4, 4],
                   strides=[4, 4])  # [out, 1, 4 th, 4 tw]
    y = graph.node("Reshape", [y, "shape_batch_as_channels"], name + "_image")  # [1, out, 4 th, 4 tw]
    y = graph.node("Slice", [y, "zeros_2", _height_width(graph, x, name), "axes_hw"], name + "_crop")
    return graph.node("Add", [y, graph.constant(name + "_b", bias.reshape(1, -1, 1, 1))], name + "_conv")


_ALGORITHMS = {"direct": _direct, "upsampled": _upsampled, "winograd4": _winograd4}


def _conv(graph: _Graph, x: str, name: str, kernel, bias, relu: bool, algorithm: str) -> str:
    y = _ALGORITHMS[algorithm](graph, x, name, np.asarray(kernel, np.float32), np.asarray(bias, np.float32).reshape(-1))
    return graph.node("Relu", [y], name + "_relu") if relu else y


def _model(graph: _Graph, onnx, inputs: str, output: str, channels_in: int, channels_out: int):
    for name, value in [("pads_1", [0, 0, 1, 1, 0, 0, 1, 1]),  # N, C, H, W begins; ends
                        ("axes_hw", [2, 3]), ("zeros_2", [0, 0]),
                        ("ones_2", [1, 1]), ("one", [1]), ("two", [2]),
                        ("shape_channels_as_batch", [-1, 1, 0, 0]), ("shape_flat_tiles", [0, 0, -1]),
                        ("shape_batch_as_channels", [1, -1, 0, 0])]:
        graph.constant(name, value, np.int64)
    helper = graph.helper
    value = helper.make_tensor_value_info
    body = helper.make_graph(graph.nodes, "nst", [value(inputs, onnx.TensorProto.FLOAT, [1, channels_in, None, None])],
                             [value(output, onnx.TensorProto.FLOAT, [1, channels_out, None, None])],
                             initializer=graph.initializers)
    return helper.make_model(body, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)


def conv_model(kernel, bias, algorithm: str, relu: bool = True):
    """One reflection-padded 3x3 conv as a model, x [1, in, h, w] -> y [1, out, h, w] ([1, out, 2h, 2w] for
    "upsampled", which takes the image before its nearest 2x upsampling): what the tests compare."""
    import onnx
    from onnx import helper, numpy_helper

    graph = _Graph(helper, numpy_helper)
    y = _conv(graph, "x", "conv", kernel, bias, relu, algorithm)
    return _model(graph, onnx, "x", y, kernel.shape[2], kernel.shape[3])


def encoder_model(vgg, layers, mean_rgb, convolutions: str = "auto"):
    """RGB 0..1 [1, 3, h, w] -> relu4_1 [1, 512, ceil(h/8), ceil(w/8)] (``layers``: VGG names to conv4_1)."""
    import onnx
    from onnx import helper, numpy_helper

    graph = _Graph(helper, numpy_helper)
    scaled = graph.node("Mul", ["image", graph.constant("scale", np.float32(255.0).reshape(1))], "scaled")
    x = graph.node("Sub", [scaled, graph.constant("mean", np.asarray(mean_rgb).reshape(1, 3, 1, 1))], "x0")
    for name in layers:
        kernel = vgg.kernels[name]
        algorithm = onnx_algorithm(kernel.shape[2], kernel.shape[3], False, convolutions)
        x = _conv(graph, x, name, kernel, vgg.biases[name], True, algorithm)
        if name in POOL_AFTER:
            x = graph.node("MaxPool", [x], name + "_pool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    return _model(graph, onnx, "image", x, 3, FEATURE_CHANNELS)


def decoder_model(decoder, convolutions: str = "auto"):
    """relu4_1-shaped features [1, 512, h, w] -> RGB [1, 3, 8h, 8w], not yet clipped."""
    import onnx
    from onnx import helper, numpy_helper

    graph, x, last = _Graph(helper, numpy_helper), "features", len(decoder.kernels) - 1
    scales = graph.constant("scales_2x", [1, 1, 2, 2])
    for index, (kernel, bias) in enumerate(zip(decoder.kernels, decoder.biases)):
        algorithm = onnx_algorithm(kernel.shape[2], kernel.shape[3], index - 1 in UPSAMPLE_AFTER, convolutions)
        if index - 1 in UPSAMPLE_AFTER and algorithm != "upsampled":  # nearest 2x: each pixel a 2x2 block
            x = graph.node("Resize", [x, "", scales], f"dec{index}_up", mode="nearest",
                           coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        x = _conv(graph, x, f"dec{index}", kernel, bias, index != last, algorithm)
    return _model(graph, onnx, "features", x, FEATURE_CHANNELS, 3)


def files_key(encoder_path, decoder_path, convolutions: str = "auto") -> "str | None":
    """A cache key from the weights files' verified SHA-256 records (cheap: no weights read), or None
    when either file has none (a user's own ``.mat``, say)."""
    from nst.weights.fetch import verified_sha256

    hashes = [verified_sha256(path) if path is not None else None for path in (encoder_path, decoder_path)]
    if None in hashes:
        return None
    text = f"{OPSET} {IR_VERSION} {MODEL_LAYOUT} {convolutions} files {hashes}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def arrays_key(vgg, decoder, layers, mean_rgb, convolutions: str = "auto") -> str:
    """A cache key from the weights themselves, for networks given as arrays."""
    digest = hashlib.sha256(f"{OPSET} {IR_VERSION} {MODEL_LAYOUT} {convolutions} {list(layers)}".encode())
    for array in [*(vgg.kernels[name] for name in layers), *(vgg.biases[name] for name in layers),
                  *decoder.kernels, *decoder.biases, np.asarray(mean_rgb, np.float32)]:
        digest.update(np.ascontiguousarray(array, np.float32).tobytes())
    return digest.hexdigest()[:16]


def _cache_paths(cache_dir, key) -> list:
    return [Path(cache_dir) / f"{part}-{key}.onnx" for part in ("encoder", "decoder")] if cache_dir and key else []


def read_cached(cache_dir, key, as_files: bool = False) -> "list | None":
    """[encoder, decoder] model bytes written earlier under ``key`` (their paths for ``as_files``), or None."""
    paths = _cache_paths(cache_dir, key)
    try:
        if not (paths and all(p.is_file() for p in paths)):
            return None
        return paths if as_files else [path.read_bytes() for path in paths]
    except OSError:
        return None  # unreadable: built again


def model_bytes(vgg, decoder, layers, mean_rgb, cache_dir=None, key=None, convolutions: str = "auto") -> list:
    """[encoder, decoder] as serialized ONNX models, built now and written to ``cache_dir`` under ``key``
    (default: :func:`arrays_key`) so that later runs read them (:func:`read_cached`): importing the
    ``onnx`` package and building the graphs cost more than the rest of a one-image run's start."""
    built = [encoder_model(vgg, layers, mean_rgb, convolutions).SerializeToString(),
             decoder_model(decoder, convolutions).SerializeToString()]
    key = key or arrays_key(vgg, decoder, layers, mean_rgb, convolutions)
    for path, data in zip(_cache_paths(cache_dir, key), built):
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
            # Without constant folding the Winograd kernels G g G^T are computed at each run (a few ms)
            # instead of being kept beside the 3x3 ones: 44 MB less memory.
            return [onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"],
                                                 disabled_optimizers=["ConstantFolding"])
                    for data in models(rebuild)]

        # Each session has its own memory arena, which keeps its largest size for good: the decoder's
        # on top of the encoder's.  Shrinking them after every run lets the two take turns.
        self._run_options = onnxruntime.RunOptions()
        self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        try:
            self._sessions = sessions(rebuild=False)
        except Exception:  # a damaged cached file (ONNX Runtime's errors have no common class): build afresh
            self._sessions = sessions(rebuild=True)

    def _run(self, session, name: str, nhwc: np.ndarray) -> np.ndarray:
        nchw = np.ascontiguousarray(np.asarray(nhwc, np.float32).transpose(0, 3, 1, 2))
        (out,) = session.run(None, {name: nchw}, self._run_options)
        return out.transpose(0, 2, 3, 1)

    def encode(self, images: np.ndarray) -> np.ndarray:
        """RGB 0..1 [1, h, w, 3] -> features [1, ceil(h/8), ceil(w/8), 512]."""
        return self._run(self._sessions[0], "image", images)

    def decode(self, features: np.ndarray) -> np.ndarray:
        """Features [1, h, w, 512] -> RGB [1, 8h, 8w, 3]."""
        return self._run(self._sessions[1], "features", features)
