"""The style-transfer engine: optimise the pixels of an image (Gatys, Ecker and Bethge 2015).

One job: given RGB arrays and :class:`Settings`, return a :class:`Result`.
It knows nothing about printing or files; progress goes to a ``callback``
that receives a :class:`Progress` event after every step (the CLI draws a
progress bar from it, a notebook a live preview, see :func:`nst.optimise.pictures.live_preview`).

Costs (course normalisations, :mod:`nst.optimise.costs`)::

    J = content_weight * J_content + style_weight * J_style + tv_weight * J_tv [+ temporal weight * J_temporal]
    J_style = sum_l w_l * J_style^[l]

The style Gram targets and the content activations are computed per size by a
feature graph and loaded into the optimisation graph (:mod:`nst.optimise.graphs`), which a
:class:`Stylizer` keeps for the next call of that size.  Style Grams are kept *per
position* (G / (n_H n_W)) and rescaled to the generated image's size, so a style
image of any size gives the course's cost when sizes agree; several styles blend
their Gram matrices (``sum_k b_k G_k``, b normalised to sum 1), which has the same
gradient as the blended sum of per-style costs.

Example::

    from nst.optimise import stylize
    from nst.io import images
    result = stylize.stylize(images.read_rgb("photo.jpg"), [images.read_rgb("art.jpg")],
                             size=256, iterations=100)
    images.save_rgb("out.png", result.image)

    with stylize.Stylizer(stylize.Settings(size=256)) as stylizer:   # many images of one size
        results = [stylizer.run(frame, [art]) for frame in frames]
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from nst.optimise.colour import (RGB_TO_YIQ, YIQ_TO_RGB, luminance_rgb, recombine_colors, resize_float,
                     rgb_to_yiq, to_uint8, yiq_to_rgb)
from nst.optimise.graphs import FeatureGraph, Problem, make_session
from nst.optimise.optimizers import OPTIMIZER_TABLE, HistoryRow, Progress, Run, Stop, Tracker, optimise
from nst.optimise.settings import (DEFAULT_CONTENT_LAYER, DEFAULT_CONTENT_WEIGHT, DEFAULT_INIT,
                       DEFAULT_ITERATIONS, DEFAULT_LEARNING_RATE, DEFAULT_MIN_SIZE, DEFAULT_MULTISCALE,
                       DEFAULT_NOISE_RATIO, DEFAULT_OPTIMIZER, DEFAULT_POOLING, DEFAULT_SCHEDULE, DEFAULT_SIZE,
                       DEFAULT_STYLE_LAYERS, DEFAULT_STYLE_SCALE, DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT, INITS,
                       LBFGS_FIRST_STEP, LBFGS_HISTORY, MIN_SIDE, NON_NEGATIVE, OPTIMIZERS, PIXEL_MAX, PIXEL_MIN,
                       POOLINGS, LayerError, Settings, normalise_blend_weights, parse_layer, parse_style_layers,
                       default_schedule, per_scale, scale_iterations)
from nst.host.budget import tile_sides
from nst.optimise.tiling import margin_of
from nst.weights.load import MEAN_RGB, VGGWeights

__all__ = [  # the engine's public names; the settings' are re-exported so older imports keep working
    "Stylizer", "stylize", "Result", "Temporal", "Settings", "Progress", "HistoryRow", "Stop", "LayerError",
    "get_weights", "scale_sizes", "scale_iterations", "prepare_init", "parse_layer", "parse_style_layers",
    "normalise_blend_weights", "FeatureGraph", "Problem", "make_session", "rgb_to_yiq", "yiq_to_rgb",
    "luminance_rgb", "recombine_colors", "to_uint8", "RGB_TO_YIQ", "YIQ_TO_RGB", "MEAN_RGB", "PIXEL_MIN",
    "PIXEL_MAX", "MIN_SIDE", "INITS", "OPTIMIZERS", "POOLINGS", "LBFGS_HISTORY", "LBFGS_FIRST_STEP",
    "DEFAULT_SIZE", "DEFAULT_OPTIMIZER", "DEFAULT_ITERATIONS", "DEFAULT_SCHEDULE", "DEFAULT_LEARNING_RATE",
    "DEFAULT_INIT", "DEFAULT_NOISE_RATIO", "DEFAULT_CONTENT_WEIGHT", "DEFAULT_STYLE_WEIGHT", "DEFAULT_TV_WEIGHT",
    "DEFAULT_CONTENT_LAYER", "DEFAULT_STYLE_LAYERS", "DEFAULT_POOLING", "DEFAULT_STYLE_SCALE", "DEFAULT_MULTISCALE",
    "DEFAULT_MIN_SIZE",
]


@dataclass
class Result:
    image: Optional[np.ndarray]  # uint8 [h, w, 3]: the best image of the last scale (None if no cost was finite)
    costs: Optional[dict]  # its costs (total, content, style, tv; temporal when given)
    status: str  # "done" | "interrupted" | "stopped" | "nonfinite"
    message: str
    settings: Settings  # resolved: seed, iterations, layers, blend weights all explicit
    sizes: list  # [(h, w), ...] of the scales run
    steps: int  # optimisation steps done over all scales
    history: list  # [HistoryRow(step, elapsed, total, content, style, tv), ...] one row per event
    elapsed: float
    best_iteration: int  # iteration (at the last scale) of the returned image
    tiles: list = dataclasses.field(default_factory=list)  # per scale run: the tiles' core side, None for whole


@dataclass
class Temporal:
    """The short-term temporal cost of Ruder, Dosovitskiy and Brox (2016) for video frames:
    ``weight * sum(mask * (x - image)^2) / (h w 3)``, pulling the result towards ``image``
    where ``mask`` is 1 (e.g. the previous result warped by the optical flow, the mask
    zero where the flow is unreliable).  Both at the result's size; resized to each scale."""

    image: np.ndarray  # float32 [h, w, 3] in 0..255
    mask: np.ndarray  # float32 [h, w] in 0..1
    weight: float

    def checked(self, height: int, width: int) -> "Temporal":
        image, mask = np.asarray(self.image), np.asarray(self.mask)
        if image.shape != (height, width, 3) or mask.shape != (height, width):
            raise ValueError(f"the temporal image and mask must be [{height}, {width}, 3] and [{height}, {width}] "
                             f"(the result's size), not {list(image.shape)} and {list(mask.shape)}")
        NON_NEGATIVE.check("temporal weight", self.weight)
        return self


class Stylizer:
    """The engine, kept between calls: the VGG-19 weights, the feature graph and one optimisation
    graph per size (and per use of the temporal term), so a second image of the same size runs
    at once.  ``weights``: ``VGGWeights``, a ``.mat`` path or None for the project's file (loaded
    at the first call).  Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, settings: Optional[Settings] = None, weights=None, *, keep_graphs: bool = True):
        from nst.io.images import read_rgb

        settings = settings or Settings()
        if isinstance(settings.init, os.PathLike) or (isinstance(settings.init, str) and settings.init not in INITS):
            settings = dataclasses.replace(settings, init=read_rgb(settings.init))  # an image file to start from
        self.settings = settings
        self.keep_graphs = keep_graphs  # False: free each graph once used (the one-call stylize())
        self._weights, self._features, self._problems = weights, None, {}
        self._tiles = None  # the TileGraph of scales optimised in tiles, built at the first one
        self._fast = None  # the FastStylizer of init="fast", loaded at its first use

    def run(self, content, styles, callback=None, init=None, temporal: Optional[Temporal] = None) -> Result:
        """Stylise ``content`` (uint8 [h, w, 3] or a path) with ``styles`` (a list of the same).

        ``callback(progress)`` runs after every step; raise :class:`Stop` from it (or press
        Ctrl-C) to end early.  ``init``: None (``settings.init``) or an RGB array [h, w, 3]
        (uint8 or float 0..255).  ``temporal``: a :class:`Temporal` or None.  The result is
        the lowest-cost image of the last scale; if a cost becomes NaN or infinite, the run
        stops and returns the best image so far with status ``"nonfinite"``.
        """
        started = time.perf_counter()
        content, styles = _read_inputs(content, styles)
        settings = self.settings if init is None else dataclasses.replace(self.settings, init=np.asarray(init))
        s, sizes = resolve(settings, len(styles), *content.shape[:2])
        if temporal is not None:
            temporal = temporal.checked(*sizes[-1])
        tiles = tile_sides(sizes, _style_pixels(s, sizes[-1], styles), forced=s.tile, margin=margin_of(s))
        if temporal is not None and any(tiles):
            raise ValueError(f"a frame of {sizes[-1][1]}x{sizes[-1][0]} does not fit in memory whole, and the "
                             "temporal term has no tiled path; lower the size")
        if not isinstance(self._weights, VGGWeights):
            self._weights = get_weights(self._weights)
        targets = self._targets(s, content, styles, sizes, tiles, temporal)
        first = self._fast_start(content, styles, s, sizes[-1]) if isinstance(s.init, str) and s.init == "fast" else None
        run = Run(s, sizes, callback, started=started, tiles=tiles)
        best, scale = self._optimise(run, targets, first)
        found = best is not None and best["pixels"] is not None  # not when the very first cost is NaN
        return Result(image=best["finish"](best["pixels"]) if found else None, costs=best["costs"] if found else None,
                      status=run.status, message=run.message, settings=s, sizes=sizes[:scale + 1], steps=run.steps,
                      history=run.history, elapsed=time.perf_counter() - started, best_iteration=best["iteration"],
                      tiles=tiles[:scale + 1])

    def _targets(self, s: Settings, content, styles, sizes, tiles, temporal) -> list:
        """Each scale's inputs and targets (:func:`_scale_targets`), whole or in tiles.  All come first;
        without keep_graphs the feature graph is then closed, its session's memory not being needed
        while the (larger) optimisation graphs run."""
        from nst.optimise.tiled import TiledFeatures

        distribution = per_scale(s.distribution_weight, len(sizes))
        try:
            return [_scale_targets(TiledFeatures(self._tile_graph(s), side) if side else self._feature_graph(s),
                                   s, content, styles, height, width, temporal, weight)
                    for (height, width), side, weight in zip(sizes, tiles, distribution)]
        finally:
            if not self.keep_graphs:
                self._close_features()

    def _fast_start(self, content, styles, s: Settings, size) -> np.ndarray:
        """``init="fast"``: the feed-forward (AdaIN) result at the final size, uint8 [h, w, 3]."""
        from nst.fast.stylizer import FastStylizer
        from nst.io.images import resize, size_for_long_side

        if self._fast is None:
            self._fast = FastStylizer(precision=s.precision)
        height, width = size
        style_side = max(MIN_SIDE, round(max(height, width) * s.style_scale))
        styles = [resize(style, *size_for_long_side(*style.shape[:2], style_side)[::-1]) for style in styles]
        return self._fast.stylize(resize(content, width, height), styles, style_weights=s.style_blend_weights,
                                  preserve_colors=s.preserve_colors)

    def _optimise(self, run: Run, targets: list, first: Optional[np.ndarray] = None) -> tuple:
        """Each scale in turn, coarse to fine; returns (the last scale's best, the last scale's index).

        ``first``: the starting image when it is computed per run (``init="fast"``); else ``settings.init``.
        """
        s, previous, best = run.settings, None, None  # previous: float32 [h, w, 3] result of the scale before
        tv_weights = per_scale(s.tv_weight, len(run.sizes))
        for scale, ((height, width), target) in enumerate(zip(run.sizes, targets)):
            if previous is None:
                kind = first if first is not None else s.init
                start = prepare_init(kind, target["content_in"], target["style_in"], s.noise_ratio, s.seed)
            else:
                start = resize_float(previous, height, width)
            try:
                problem = self._problem(s, height, width, target["temporal"] is not None, target["distribution_weight"],
                                        run.tiles[scale], tv_weights[scale])
                try:
                    problem.start(start, problem.targets(target["content"], target["grams"], target["temporal"],
                                                         target["distributions"]))
                    best = optimise(problem, start, Tracker(run, scale, target["finish"]))
                finally:
                    if not self.keep_graphs:
                        self._close_problems()
            except KeyboardInterrupt:  # between two scales: the previous scale's best image is the result
                if best is None:
                    raise
                run.end("interrupted", "interrupted (Ctrl-C); kept the best image so far")
                return best, scale - 1
            previous = best["pixels"]
            targets[scale] = None  # its content features and style samples: gigabytes at print size
            if run.status != "done":
                break
        return best, scale

    def _feature_graph(self, s: Settings) -> FeatureGraph:
        if self._features is None:
            self._features = FeatureGraph(self._weights, s.pooling, s.content_layer, [n for n, _ in s.style_layers])
        return self._features

    def _problem(self, s: Settings, height: int, width: int, temporal: bool, distribution_weight: float,
                 tile: Optional[int] = None, tv_weight: float = 0.0):
        """The optimisation graph of this size (a :class:`TiledProblem` with cores of ``tile`` px), kept;
        the two weights are this scale's."""
        key = (height, width, temporal, distribution_weight, tile, tv_weight)
        if key not in self._problems and tile:
            from nst.optimise.tiled import TiledProblem

            self._problems[key] = TiledProblem(self._tile_graph(s), s, height, width, tile, distribution_weight,
                                               tv_weight)
        if key not in self._problems:
            self._problems[key] = Problem(self._weights, s, height, width, temporal,
                                          build=OPTIMIZER_TABLE[s.optimizer].build,
                                          distribution_weight=distribution_weight, tv_weight=tv_weight)
        return self._problems[key]

    def _tile_graph(self, s: Settings):
        """VGG-19 on one tile of any size (:mod:`nst.optimise.tiled`), shared by every tiled scale."""
        if self._tiles is None:
            from nst.optimise.tiled import TileGraph

            self._tiles = TileGraph(self._weights, s, distribution=any(np.atleast_1d(s.distribution_weight)))
        return self._tiles

    def _close_features(self) -> None:
        if self._features is not None:
            self._features.close()
            self._features = None

    def _close_problems(self) -> None:
        for problem in self._problems.values():
            problem.close()
        self._problems.clear()

    def close(self) -> None:
        """Free the graphs and their sessions (the weights stay in get_weights' cache)."""
        self._close_features()
        self._close_problems()
        if self._tiles is not None:
            self._tiles.close()
            self._tiles = None

    def __enter__(self) -> "Stylizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stylize(content, styles, settings: Optional[Settings] = None, *, callback=None, weights=None,
            **overrides) -> Result:
    """Stylise ``content`` (uint8 [h, w, 3] or a path) with ``styles`` (list of the same), in one call.

    ``settings`` (or keyword overrides such as ``size=256, optimizer="adam"``)
    control everything; ``weights`` is a ``VGGWeights``, a ``.mat`` path or
    None for the project's file.  See :meth:`Stylizer.run` for the callback and
    the result; for many images, keep a :class:`Stylizer`.
    """
    settings = dataclasses.replace(settings or Settings(), **overrides)
    with Stylizer(settings, weights, keep_graphs=False) as stylizer:
        return stylizer.run(content, styles, callback=callback)


def _read_inputs(content, styles) -> tuple:
    """(content uint8 [h, w, 3], [style, ...]) from arrays or paths."""
    from nst.io.images import read_rgb

    if isinstance(styles, (str, os.PathLike, np.ndarray)):
        styles = [styles]
    content = read_rgb(content) if not isinstance(content, np.ndarray) else content
    styles = [read_rgb(s) if not isinstance(s, np.ndarray) else s for s in styles]
    if not styles:
        raise ValueError("give at least one style image")
    return content, styles




def resolve(settings: Settings, n_styles: int, height: int, width: int) -> tuple:
    """(settings resolved for ``n_styles`` styles, the scales [(h, w), ...] of a ``height`` x ``width``
    content); the default iterations are :func:`default_schedule`'s for those scales."""
    s = settings.resolved(n_styles)
    sizes = scale_sizes(height, width, s.size, s.multiscale, s.min_size)
    if settings.iterations is None and s.multiscale:
        s.iterations = default_schedule(s.optimizer, sizes)
    return s, sizes


def _style_pixels(s: Settings, size, styles) -> int:
    """The largest style image's pixels at the scale of ``size`` (h, w) (:func:`_scale_targets` resizes them)."""
    side = max(MIN_SIDE, round(max(size) * s.style_scale))
    return max(h * w for h, w in (_size_for(style.shape[:2], side) for style in styles))


def get_weights(weights=None) -> VGGWeights:
    """``VGGWeights`` as given, or loaded (once per process) from a path or the default file (fetched on
    first use)."""
    from nst.weights.fetch import weights_for_use
    from nst.weights.load import cached_vgg19

    return weights if isinstance(weights, VGGWeights) else cached_vgg19(weights_for_use(weights))


def scale_sizes(height: int, width: int, size: int, multiscale: bool, min_size: int = DEFAULT_MIN_SIZE) -> list:
    """[(h, w), ...] coarse to fine: the final size has long side ``size``; with multiscale,
    halve it while the long side stays >= ``min_size`` (and the short side >= MIN_SIDE)."""
    from nst.io.images import size_for_long_side

    sides = [size]
    while multiscale and sides[-1] // 2 >= min_size:
        sides.append(sides[-1] // 2)
    sizes = [size_for_long_side(height, width, side) for side in reversed(sides)]
    sizes = [hw for hw in sizes if min(hw) >= MIN_SIDE] or sizes[-1:]
    if min(sizes[-1]) < MIN_SIDE:
        h, w = sizes[-1]
        raise ValueError(f"at size {size} the content image becomes {w}x{h}; its short side must be at least "
                         f"{MIN_SIDE} px, so raise the size or crop the image")
    return sizes


def prepare_init(kind, content: np.ndarray, style: np.ndarray, noise_ratio: float, seed: int) -> np.ndarray:
    """Starting image, float32 [h, w, 3] in 0..255, from content/style at the first scale's size.

    ``noise`` is the course's ``generate_noise_image``: U(-20, 20) noise around
    the mean pixel, blended as ``noise_ratio * noise + (1 - noise_ratio) * content``.
    """
    h, w = content.shape[:2]
    if isinstance(kind, np.ndarray):
        return resize_float(kind.astype(np.float32), h, w)
    if kind == "content":
        return content.astype(np.float32)
    if kind == "style":
        return resize_float(style.astype(np.float32), h, w)
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-20, 20, size=(h, w, 3)) + MEAN_RGB
    return np.clip(noise_ratio * noise + (1 - noise_ratio) * content, PIXEL_MIN, PIXEL_MAX).astype(np.float32)


def _scale_targets(features: FeatureGraph, s: Settings, content, styles, height: int, width: int,
                   temporal: Optional[Temporal], distribution_weight: float) -> dict:
    """Inputs and targets of one scale: content activations [1, n_H, n_W, n_C], blended Grams [n_C, n_C],
    the temporal term's (image [h, w, 3], mask [h, w], weight) resized to this scale, or None, and
    with ``distribution_weight`` (this scale's) the styles' sorted projections."""
    from nst.io.images import resize, resize_painting

    content_rgb = resize(content, width, height)
    style_side = max(MIN_SIDE, round(max(height, width) * s.style_scale))
    styles_rgb = [resize_painting(style, *_size_for(style.shape[:2], style_side)[::-1]) for style in styles]
    if s.preserve_colors:
        content_y = rgb_to_yiq(content_rgb)[..., 0]
        content_in = luminance_rgb(content_rgb)
        styles_in = [luminance_rgb(style, match=content_y) for style in styles_rgb]
    else:
        content_in = content_rgb.astype(np.float32)
        styles_in = [style.astype(np.float32) for style in styles_rgb]

    def finish(pixels):
        return recombine_colors(pixels, content_rgb) if s.preserve_colors else to_uint8(pixels)

    grams, distributions = {}, []
    for blend, style in zip(s.style_blend_weights, styles_in):
        if blend == 0:
            continue
        style_grams, projections = features.style_targets(style, projections=bool(distribution_weight))
        for name, gram in style_grams.items():
            grams[name] = grams.get(name, 0.0) + blend * gram.astype(np.float64)
        if distribution_weight:
            distributions.append((blend, projections))
    if temporal is not None:
        previous = resize_float(np.asarray(temporal.image, dtype=np.float32), height, width)
        mask = resize_float(np.asarray(temporal.mask, dtype=np.float32)[..., None], height, width, top=1.0)[..., 0]
        temporal = (luminance_rgb(previous) if s.preserve_colors else previous, mask, temporal.weight)
    return {"content": features.content_features(content_in), "grams": grams, "finish": finish,
            "distributions": distributions, "distribution_weight": distribution_weight,
            "content_in": content_in, "style_in": styles_in[0], "temporal": temporal}


def _size_for(shape, long_side):
    from nst.io.images import size_for_long_side

    return size_for_long_side(shape[0], shape[1], long_side)
