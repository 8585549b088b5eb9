"""Feed-forward style transfer with adaptive instance normalisation (AdaIN).

Huang and Belongie (ICCV 2017): encode the content and the style with VGG-19
up to relu4_1, give every channel of the content features the style features'
mean and standard deviation, and decode the result with a trained decoder.
One forward pass instead of hundreds of optimisation steps.

The network is the one released with naoto0804/pytorch-AdaIN (MIT): its
encoder is the normalised VGG-19 (our converted ``.mat``, whose conv1_1 takes
RGB 0..255 minus the mean, which is exactly what pytorch-AdaIN's leading 1x1
conv produces from RGB 0..1), with reflection padding before every 3x3 conv
and 2x2 max pooling; its decoder comes from :func:`nst.weights.load.load_decoder`.

:class:`FastStylizer` keeps both networks loaded and stylises array after
array; style statistics are cached by image content, so a video or a batch
with one style encodes the style once.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np

from nst.fast import convolutions as fastconv, network as fastnet, tiles as fasttiles
from nst.fast.network import FEATURE_CHANNELS, FEATURE_STRIDE, POOL_AFTER, UPSAMPLE_AFTER  # noqa: F401  (re-exported)
from nst.fast.style_store import StyleStore
from nst.weights.load import (CONV_LAYERS, CONVERTED_NAME, MEAN_RGB, WEIGHTS_DIR, WeightsError, load_decoder,
                              load_vgg19)

DEFAULT_ALPHA = 1.0  # 1: full style; 0: the content's own features decoded
EPSILON = 1e-5  # added to the variance before the square root, as pytorch-AdaIN does
ENCODER_LAST = "conv4_1"  # relu4_1: the AdaIN layer
# FastStylizer(runtime=...): onnx and openvino start in a fraction of TensorFlow's time; onnx is float32 only,
# openvino computes in bfloat16 where the CPU has bfloat16 units.
RUNTIMES = ("tensorflow", "onnx", "openvino")
# The command line runs this many images or fewer on ONNX Runtime or OpenVINO, more on TensorFlow: their
# processes are ready about 3 s sooner, TensorFlow's path is faster per image (oneDNN's bf16 kernels,
# Winograd under XLA), measured with bench/bench_startup.py.
ONNX_UP_TO_IMAGES = 4
CONVOLUTIONS = ("auto", "direct")  # FastStylizer(convolutions=...): per-layer fastest, or tf.nn.conv2d only
STYLE_CACHE_SIZE = 32  # style statistics kept (each is two 512-vectors)
# Peak RSS of one process stylising one square image (style the same size),
# `bench/bench_fast.py --worker fast --size N --repeats 1` on the AMD host:
# with the plain graph only, 690 MiB with the networks loaded, peak 1028 MiB at
# 512, 1485 at 1024, 2413 at 1536 (about 740 bytes per pixel at the top); with
# the XLA-compiled graph beside it (nst.fast.network, its warm-up included), 903 MiB
# loaded and 1904 MiB at 1024 (about 1050 bytes per pixel).  The estimate below
# adds about a third to both.  A picture whose estimate exceeds the memory free runs tile by tile
# (nst.fast.tiles): then the estimate is that of the tile, plus the arrays kept for the whole picture.
BYTES_PER_PIXEL = 1400
FIXED_BYTES = 1_200_000_000
# Kept whole while tiling, per pixel of the picture: the input in float (12 bytes, twice), the content
# features, the AdaIN target and their blend (3 x 512 float32 per 64 pixels: 96), the float64 copies and
# temporaries of the statistics and of AdaIN (up to 128), the decoded float image (12), the result and the
# compare picture (6).  Measured at 4096x3072 in 1152 px tiles: 2860 MiB peak against 5.4 GB estimated.
WHOLE_PICTURE_BYTES_PER_PIXEL = 256
MIN_TILE = 256  # pixels: smaller tiles spend most of their time on their margins
# Pictures up to this many pixels run whole when memory allows (5.6 GB estimated); larger ones run in
# tiles that keep to that estimate, so that a print-size picture does not take all of a machine's memory.
WHOLE_UP_TO_PIXELS = 2048 * 1536


class FastError(ValueError):
    """Bad input to the fast method (message is one line, says what to do)."""


def _hash_array(array: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(array).tobytes())
    digest.update(repr((array.shape, array.dtype.str)).encode())
    return digest.hexdigest()


def estimated_peak_bytes(height: int, width: int) -> int:
    """Peak resident memory of one image of ``height`` x ``width`` through the network."""
    return FIXED_BYTES + BYTES_PER_PIXEL * height * width


def _tiled_peak_bytes(height: int, width: int, tile: int) -> int:
    """Peak resident memory of a ``height`` x ``width`` picture run in ``tile``-pixel squares (margins included)."""
    side = tile + 2 * fasttiles.ENCODER_MARGIN
    return estimated_peak_bytes(side, side) + WHOLE_PICTURE_BYTES_PER_PIXEL * height * width


def tile_for(height: int, width: int, available: Optional[int] = None) -> int:
    """The tile side in pixels (a multiple of 64) for a picture of this size: 0 when it runs whole (it fits
    and has at most :data:`WHOLE_UP_TO_PIXELS`), else the largest that keeps within the memory free and
    that size's estimate, at least :data:`MIN_TILE` (:func:`check_fits` refuses what cannot fit even then)."""
    from nst.host.budget import available_bytes

    available = available_bytes() if available is None else available
    budget = min(available, estimated_peak_bytes(WHOLE_UP_TO_PIXELS, 1))
    if estimated_peak_bytes(height, width) <= budget:
        return 0
    tile = max(height, width) // 64 * 64
    while tile > MIN_TILE and _tiled_peak_bytes(height, width, tile) > budget:
        tile -= 64
    return max(tile, MIN_TILE)


def check_fits(height: int, width: int, what: str = "image", available: Optional[int] = None) -> None:
    """Raise :class:`FastError` before any work if ``height`` x ``width`` cannot fit in memory, even in tiles."""
    from nst.host.budget import available_bytes

    available = available_bytes() if available is None else available
    need = min(estimated_peak_bytes(height, width), _tiled_peak_bytes(height, width, MIN_TILE))
    if need > available:
        raise FastError(f"the {what} at {width}x{height} needs about {need / 1e9:.1f} GB but only "
                        f"{available / 1e9:.1f} GB is free; give a smaller size (--size, --style-size)")


def coral(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Give ``source`` (float RGB [h, w, 3]) the colour mean and covariance of ``target``.

    CORAL as in pytorch-AdaIN's colour preservation: whiten the source's
    standardised colours with its covariance (plus identity), recolour with the
    target's.  Standard deviations are unbiased, like torch's ``std``.
    """
    def flat_stats(image):
        pixels = image.reshape(-1, 3).T.astype(np.float64)  # [3, n]
        mean = pixels.mean(axis=1, keepdims=True)
        std = pixels.std(axis=1, ddof=1, keepdims=True)
        normalised = (pixels - mean) / std
        return normalised, mean, std, normalised @ normalised.T + np.eye(3)

    def matrix_sqrt(matrix):
        u, d, vt = np.linalg.svd(matrix)
        return u @ np.diag(np.sqrt(d)) @ vt

    source_norm, _, _, source_cov = flat_stats(source)
    _, target_mean, target_std, target_cov = flat_stats(target)
    transferred = matrix_sqrt(target_cov) @ np.linalg.inv(matrix_sqrt(source_cov)) @ source_norm
    transferred = transferred * target_std + target_mean
    return transferred.T.reshape(source.shape).astype(np.float32)


def _to_unit_float(image: np.ndarray, name: str) -> np.ndarray:
    """uint8 [h, w, 3] (or float in 0..1) -> float32 [h, w, 3] in 0..1."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise FastError(f"{name} must be an RGB array [height, width, 3], not shape {image.shape}")
    if min(image.shape[:2]) < FEATURE_STRIDE:
        raise FastError(f"{name} is only {image.shape[1]}x{image.shape[0]} pixels; give at least "
                        f"{FEATURE_STRIDE}x{FEATURE_STRIDE}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32)


def _blend_weights(weights, count: int) -> np.ndarray:
    if weights is None:
        return np.full(count, 1.0 / count)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (count,):
        raise FastError(f"give one style weight per style image ({count}), not {weights.size}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise FastError("style weights must be finite, non-negative and not all zero")
    return weights / weights.sum()


def _feature_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A mask image (any size, 2-D or RGB) as a {0, 1} float32 grid [height, width] (white is 1)."""
    from PIL import Image

    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask.mean(axis=2)
    if mask.ndim != 2:
        raise FastError(f"the mask must be a grayscale or RGB image, not shape {mask.shape}")
    scale = 255.0 if mask.dtype == np.uint8 or mask.max() > 1 else 1.0
    small = Image.fromarray((mask / scale).astype(np.float32), mode="F").resize((width, height), Image.BILINEAR)
    return (np.asarray(small) > 0.5).astype(np.float32)


def _eager():
    """Eager execution for this block, whatever the process's global setting.

    The classroom's ``nst_utils`` switches eager execution off for the whole process
    (the course is TF 1 graph code); the fast mode's ``tf.function``s need it on.
    """
    from tensorflow.python.eager import context

    return context.eager_mode()


def choose_runtime(images: int, precision: str) -> str:
    """The runtime of a command's run of ``images`` images at the precision the user asked for: for a few
    images, OpenVINO where the precision comes out as bf16 (this CPU has bfloat16 units), else ONNX Runtime;
    TensorFlow for more images, or when the runtime needed is not installed."""
    from nst.fast import onnx_network, openvino_network
    from nst.host import precision as precisions

    if images > ONNX_UP_TO_IMAGES or not onnx_network.available():  # onnx writes the models of both
        return "tensorflow"
    if precisions.choose(precision)[0] == "bf16":
        return "openvino" if openvino_network.available() else "tensorflow"
    return "onnx"


def _load_networks(weights, decoder) -> tuple:
    """(VGGWeights, DecoderWeights) from objects or paths; refuses a VGG-19 that is not the normalised one."""
    from nst.weights.load import DecoderWeights, VGGWeights

    dec = decoder if isinstance(decoder, DecoderWeights) else load_decoder(decoder)  # the smaller file first
    vgg = weights if isinstance(weights, VGGWeights) else load_vgg19(weights)
    if not vgg.normalised:
        raise WeightsError(f"{vgg.path} is not the normalised VGG-19 the AdaIN decoder was trained with; "
                           f"use {CONVERTED_NAME} (run `python -m nst.weights`)")
    return vgg, dec


def _onnx_models(weights, decoder, convolutions: str, as_files: bool = False):
    """``models(rebuild)`` -> [encoder, decoder] ONNX model bytes, for ONNX Runtime and OpenVINO.  They are
    read from the weights folder when they were built before from the same verified files; then neither
    the weights nor the onnx package are loaded.  ``as_files``: their paths instead where they are kept."""
    from nst.fast import onnx_network

    layers, cache = CONV_LAYERS[:CONV_LAYERS.index(ENCODER_LAST) + 1], WEIGHTS_DIR / ".onnx"
    key = onnx_network.files_key(*(getattr(x, "path", x) for x in (weights, decoder)), convolutions)

    def models(rebuild: bool) -> list:
        cached = None if rebuild else onnx_network.read_cached(cache, key, as_files)
        if cached is not None:
            return cached
        vgg, dec = _load_networks(weights, decoder)
        built = onnx_network.model_bytes(vgg, dec, layers, MEAN_RGB, cache, key, convolutions)
        if rebuild or not as_files:  # a rebuild's files may not have been written (a read-only folder)
            return built
        return onnx_network.read_cached(cache, key, as_files) or built

    return models


def _instant_networks(runtime: str, weights, decoder, precision: str, convolutions: str):
    """The networks on ONNX Runtime (float32) or OpenVINO; TensorFlow is never imported for them."""
    if runtime == "onnx":
        from nst.fast.onnx_network import OnnxNetworks

        return OnnxNetworks(_onnx_models(weights, decoder, convolutions))
    from nst.fast.openvino_network import OpenVinoNetworks

    # OpenVINO picks its own convolution algorithms: the Winograd graph written for ONNX Runtime is slower there.
    return OpenVinoNetworks(_onnx_models(weights, decoder, "direct", as_files=True), precision,
                            WEIGHTS_DIR / ".onnx" / "openvino")


class FastStylizer:
    """VGG-19 encoder (to relu4_1), AdaIN and decoder, loaded once, reused for every image.

    ``weights``: a :class:`nst.weights.load.VGGWeights` or path to the *normalised*
    VGG-19 ``.mat``; ``decoder``: a :class:`nst.weights.load.DecoderWeights` or path
    to the converted decoder.  Missing, damaged or wrong files raise
    :class:`nst.weights.load.WeightsError` and nothing is kept.

    ``convolutions``: "auto" picks the fastest algorithm per layer in fp32
    (:mod:`nst.fast.convolutions`: upsampling folded into the next conv, Winograd under
    XLA, im2col at the 3-channel ends), "direct" runs ``tf.nn.conv2d``
    everywhere.  ``compiled``: None (default) runs an image size on the plain
    graph until it repeats, then XLA-compiled (:mod:`nst.fast.network`); True
    compiles every size on its first call, False never.  The graphs agree to
    float rounding (at most one level in a few pixels), not bit for bit.

    ``tile``: None (default) runs a picture in squares (:mod:`nst.fast.tiles`) when its activations
    would not fit in the memory free or it has more than :data:`WHOLE_UP_TO_PIXELS`, of the largest
    side that fits (:func:`tile_for`); a number of pixels (rounded up to a multiple of 8) runs every
    picture in squares of that side (one square when it is smaller); 0 never tiles.  Tiled and whole
    results agree to float rounding.  The side used for the last picture is :attr:`last_tile`.

    ``style_store``: a folder where style statistics are kept between processes
    (:mod:`nst.fast.style_store`; the command line passes the weights folder's ``.styles``), or None
    (default) to keep them in memory only.  Used only when the weights files have verified SHA-256 records.
    """

    def __init__(self, weights=None, decoder=None, precision: str = "auto", convolutions: str = "auto",
                 compiled: Optional[bool] = None, runtime: str = "tensorflow", tile: Optional[int] = None,
                 style_store=None):
        from nst.host import precision as precisions

        if convolutions not in CONVOLUTIONS:
            raise FastError(f"convolutions must be one of {', '.join(CONVOLUTIONS)}, not {convolutions!r}")
        if runtime not in RUNTIMES:
            raise FastError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        if tile is not None and (not isinstance(tile, int) or tile < 0):
            raise FastError(f"tile must be a number of pixels, 0 (never tile) or None (as memory needs), not {tile!r}")
        if weights is None or decoder is None:  # the default files, fetched on first use
            from nst.weights.fetch import fast_weights_for_use

            defaults = fast_weights_for_use()
            weights, decoder = weights or defaults[0], decoder or defaults[1]
        self.runtime, self.tile, self.last_tile, self._style_cache = runtime, tile, 0, OrderedDict()
        self._style_store = None  # a StyleStore once _use_store finds the weights' records
        # "auto": bf16 where the CPU has bfloat16 units; "fp32" / "bf16": as asked (bf16 is emulated,
        # slowly, elsewhere: front ends pass the user's request through precision.choose first).
        self.precision = precisions.choose("auto")[0] if precision == "auto" else precision
        if runtime != "tensorflow":  # TensorFlow is never imported (nst.fast.onnx_network, openvino_network)
            self.precision = "fp32" if runtime == "onnx" else self.precision
            self._networks = []
            networks = _instant_networks(runtime, weights, decoder, self.precision, convolutions)
            self.precision = getattr(networks, "precision", self.precision)  # what OpenVINO could do here
            self._encode_fn, self._decode_fn = networks.encode, networks.decode
            self._use_store(style_store, weights, convolutions)
            return
        # The files are checked before TensorFlow is imported: a missing or damaged file is refused
        # in one line, without TensorFlow's start-up lines before it.
        vgg, dec = _load_networks(weights, decoder)
        import tensorflow as tf

        dtype = tf.as_dtype(precisions.compute_dtype(self.precision))
        with _eager():
            # fp32 runs a shape on the plain graph until it repeats, then compiled by XLA (nst.fast.network);
            # compiled=False never compiles, compiled=True always (fp32 only: bf16 stays plain).
            use_xla = self.precision == "fp32" and compiled is not False
            kinds = ([] if use_xla and compiled else [False]) + ([True] if use_xla else [])
            self._networks = [self._network(tf, vgg, dec, dtype, convolutions, xla) for xla in kinds]
            self._encode_fn = fastnet.CompileOnRepeat(*[net.encode for net in self._networks])
            self._decode_fn = fastnet.CompileOnRepeat(*[net.decode for net in self._networks])
        self._use_store(style_store, vgg, f"{convolutions} compiled={compiled}")

    def _use_store(self, folder, weights, convolutions: str) -> None:
        """Keep style statistics in ``folder`` (:mod:`nst.fast.style_store`) when the encoder's weights file
        has a verified SHA-256 record to name the network by; otherwise they stay in memory only."""
        from nst.weights.fetch import verified_sha256

        path = getattr(weights, "path", weights)
        encoder = verified_sha256(path) if folder is not None and path is not None else None
        if encoder is not None:
            network_key = f"{encoder} {ENCODER_LAST} {self.runtime} {self.precision} {convolutions}"
            self._style_store = StyleStore(folder, network_key, FEATURE_CHANNELS)

    def _network(self, tf, vgg, dec, dtype, convolutions, compiled) -> "fastnet.Network":
        layers = CONV_LAYERS[:CONV_LAYERS.index(ENCODER_LAST) + 1]
        encoder_algorithms, decoder_algorithms = fastnet.conv_algorithms(
            [vgg.kernels[name].shape for name in layers], [k.shape for k in dec.kernels],
            self.precision, convolutions, compiled)
        encoder = [(name, fastconv.PreparedConv(tf, vgg.kernels[name], vgg.biases[name], algorithm, dtype))
                   for name, algorithm in zip(layers, encoder_algorithms)]
        last = len(dec.kernels) - 1
        decoder = [fastconv.PreparedConv(tf, kernel, bias, algorithm, dtype, relu=index != last)
                   for index, (kernel, bias, algorithm) in enumerate(zip(dec.kernels, dec.biases, decoder_algorithms))]
        return fastnet.Network(tf, encoder, decoder, tf.constant(MEAN_RGB.reshape(1, 1, 1, 3)), dtype, compiled)

    def _context(self):
        return _eager() if self.runtime == "tensorflow" else contextlib.nullcontext()

    @property
    def algorithms(self) -> dict:
        """Layer label ("encoder conv1_1", "decoder 0", ...) -> its conv algorithm ("plain / compiled" if they differ)."""
        found = {}
        for network in self._networks:
            labelled = [(f"encoder {name}", conv) for name, conv in network.encoder]
            labelled += [(f"decoder {index}", conv) for index, conv in enumerate(network.decoder)]
            for label, conv in labelled:
                found[label] = conv.algorithm if found.get(label, conv.algorithm) == conv.algorithm else \
                    f"{found[label]} / {conv.algorithm}"
        return found

    def _tile_features(self, height: int, width: int) -> int:
        """Tile side in features for a picture of this size, 0 for the whole picture at once."""
        tile = tile_for(height, width) if self.tile is None else self.tile
        return -(-tile // FEATURE_STRIDE)

    @staticmethod
    def _plain(function):
        # Tiles come in up to nine shapes: XLA would compile most of them (nst.fast.network.CompileOnRepeat).
        return getattr(function, "plain", function)

    def encode(self, image: np.ndarray) -> np.ndarray:
        """relu4_1 features [ceil(h/8), ceil(w/8), 512] of an RGB image (uint8, or float 0..1); in tiles
        when the picture's size needs them."""
        image = _to_unit_float(image, "image")
        tile = self._tile_features(*image.shape[:2])
        with self._context():
            if tile:
                return fasttiles.encode_tiled(self._plain(self._encode_fn), image, tile)
            return np.asarray(self._encode_fn(image[None])[0])

    def decode(self, features: np.ndarray, height: Optional[int] = None, width: Optional[int] = None) -> np.ndarray:
        """Features [fh, fw, 512] -> uint8 RGB, cropped to ``height`` x ``width`` (default 8fh x 8fw); in tiles
        when the picture's size needs them, chosen from that size as :meth:`encode` chooses them."""
        features = np.asarray(features, dtype=np.float32)
        tile = self._tile_features(height or FEATURE_STRIDE * features.shape[0],
                                   width or FEATURE_STRIDE * features.shape[1])
        self.last_tile = tile * FEATURE_STRIDE  # what the record of the picture reports
        with self._context():
            if tile:
                decoded = fasttiles.decode_tiled(self._plain(self._decode_fn), features, tile)
            else:
                decoded = np.asarray(self._decode_fn(features[None])[0])
        decoded = decoded[:height, :width]
        # Round half up, as torchvision's save_image does.
        return np.clip(decoded * 255.0 + 0.5, 0, 255).astype(np.uint8)

    # ------------------------------------------------------------------
    # Statistics and AdaIN (NumPy: [positions, 512] is small next to the convs)

    @staticmethod
    def statistics(features: np.ndarray, mask: Optional[np.ndarray] = None):
        """Per-channel mean and std ([512] each) of features [h, w, 512], over the positions where mask is 1.

        The variance is unbiased and EPSILON is added before the square root,
        as in pytorch-AdaIN's ``calc_mean_std``.
        """
        flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
        if mask is not None:
            flat = flat[mask.reshape(-1) > 0.5]
        mean = flat.mean(axis=0)
        variance = flat.var(axis=0, ddof=1) if flat.shape[0] > 1 else np.zeros_like(mean)
        return mean, np.sqrt(variance + EPSILON)

    def style_statistics(self, style: np.ndarray):
        """Cached (mean, std) of a style image's relu4_1 features; the key is a hash of the pixels.  Kept in
        memory, and on disk when the stylizer was given a ``style_store`` folder."""
        key = _hash_array(np.asarray(style))
        if key in self._style_cache:
            self._style_cache.move_to_end(key)
            return self._style_cache[key]
        stats = self._style_store.get(key) if self._style_store else None
        if stats is None:
            stats = self.statistics(self.encode(style))
            if self._style_store:
                self._style_store.put(key, *stats)
        self._style_cache[key] = stats
        while len(self._style_cache) > STYLE_CACHE_SIZE:
            self._style_cache.popitem(last=False)
        return stats

    @classmethod
    def adain(cls, content_features, style_mean, style_std, mask=None):
        """Content features [h, w, 512] given the style's per-channel statistics (over ``mask`` if given)."""
        mean, std = cls.statistics(content_features, mask)
        return ((content_features - mean) / std * style_std + style_mean).astype(np.float32)

    def stylize(self, content: np.ndarray, styles: Sequence[np.ndarray], alpha: float = DEFAULT_ALPHA,
                style_weights=None, mask: Optional[np.ndarray] = None, preserve_colors: bool = False) -> np.ndarray:
        """Stylise ``content`` (uint8 [h, w, 3]) with one or more style images; returns uint8 [h, w, 3].

        * ``alpha`` in 0..1 blends the AdaIN features with the content's own (0 decodes the content).
        * Several styles are mixed by ``style_weights`` (normalised to sum 1) on the AdaIN features.
        * ``mask`` (an image, white = 1) with exactly two styles: the first style
          where the mask is white, the second where it is black.
        * ``preserve_colors`` recolours each style image to the content's colour
          statistics first (CORAL), so the result keeps the content's colours.
        """
        if not 0.0 <= float(alpha) <= 1.0:
            raise FastError(f"alpha must be between 0 and 1, not {alpha}")
        if not styles:
            raise FastError("give at least one style image")
        content_unit = _to_unit_float(content, "the content image")
        if preserve_colors:
            styles = [coral(_to_unit_float(style, "a style image"), content_unit) for style in styles]
        stats = [self.style_statistics(style) for style in styles]
        content_features = self.encode(content_unit)
        if mask is not None:
            target = self._masked_target(content_features, stats, mask, style_weights)
        else:
            weights = _blend_weights(style_weights, len(stats))
            # A weighted sum of AdaIN outputs equals AdaIN with the weighted mean and std,
            # since every output shares the same normalised content.
            style_mean = sum(w * m for w, (m, _) in zip(weights, stats))
            style_std = sum(w * s for w, (_, s) in zip(weights, stats))
            target = self.adain(content_features, style_mean, style_std)
        blended = alpha * target + (1.0 - alpha) * content_features
        return self.decode(blended, *content_unit.shape[:2])

    def _masked_target(self, content_features, stats, mask, style_weights):
        if len(stats) != 2:
            raise FastError(f"a mask needs exactly two style images (white area, black area), not {len(stats)}")
        if style_weights is not None:
            raise FastError("style weights and a mask cannot be combined; the mask chooses the style")
        region = _feature_mask(mask, *content_features.shape[:2])[..., None]  # [fh, fw, 1]
        target = np.zeros_like(content_features)
        for inside, (style_mean, style_std) in ((region, stats[0]), (1.0 - region, stats[1])):
            if inside.sum() > 0:
                target += inside * self.adain(content_features, style_mean, style_std, mask=inside)
        return target
