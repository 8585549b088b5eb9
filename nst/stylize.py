"""The style-transfer engine: optimise the pixels of an image (Gatys, Ecker and Bethge 2015).

One job: given RGB arrays and :class:`Settings`, return a :class:`Result`.
It knows nothing about printing or files; progress goes to a ``callback``
that receives a :class:`Progress` event after every step (the CLI draws a
progress bar from it, a notebook a live preview, see :func:`nst.pictures.live_preview`).

Graph mode throughout (``tf.compat.v1``, each graph in its own ``tf.Graph``
and session), so it works whatever the process's global eager setting is.

Costs (course normalisations, :mod:`nst.costs`)::

    J = content_weight * J_content + style_weight * J_style + tv_weight * J_tv
    J_style = sum_l w_l * J_style^[l]

The style Gram targets and the content activations are computed once per
size by a separate feature graph and baked into the optimisation graph as
constants.  Style Grams are kept *per position* (G / (n_H n_W)) and rescaled to
the generated image's size, so a style image of any size gives the course's
cost when sizes agree; several styles blend their Gram matrices
(``sum_k b_k G_k``, b normalised to sum 1), which has the same gradient as
the blended sum of per-style costs.

Example::

    from nst import stylize, images
    result = stylize.stylize(images.read_rgb("photo.jpg"), [images.read_rgb("art.jpg")],
                             size=256, iterations=100)
    images.save_rgb("out.png", result.image)
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from . import costs
from .weights import CONV_LAYERS, MEAN_RGB, VGGWeights, load_vgg19

from .settings import (DEFAULT_CONTENT_LAYER, DEFAULT_CONTENT_WEIGHT, DEFAULT_INIT,  # noqa: F401 (re-exported)
                       DEFAULT_ITERATIONS, DEFAULT_LEARNING_RATE, DEFAULT_MIN_SIZE, DEFAULT_MULTISCALE,
                       DEFAULT_NOISE_RATIO, DEFAULT_OPTIMIZER, DEFAULT_POOLING, DEFAULT_SCHEDULE, DEFAULT_SIZE,
                       DEFAULT_STYLE_LAYERS, DEFAULT_STYLE_SCALE, DEFAULT_STYLE_WEIGHT, DEFAULT_TV_WEIGHT, INITS,
                       LBFGS_FIRST_STEP, LBFGS_HISTORY, MIN_SIDE, OPTIMIZERS, PIXEL_MAX, PIXEL_MIN, POOLINGS,
                       LayerError, Settings, normalise_blend_weights, parse_layer, parse_style_layers,
                       scale_iterations)

# Luminance-only transfer (Gatys et al. 2016, "Preserving Color in Neural
# Artistic Style Transfer", section 3): YIQ, Y being the luminance.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]])
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


class Stop(Exception):
    """Raise from a callback to end the optimisation early; the best image so far is returned."""


# --------------------------------------------------------------------------
# Settings and results

@dataclass
class Progress:
    """One event per optimisation step: the state *after* ``iteration`` steps at this scale.

    ``costs`` are those of exactly that image: ``total`` (weighted sum) and the
    unweighted ``content``, ``style`` and ``tv``.  ``image()`` returns it as
    ``uint8 [h, w, 3]`` (colours recombined under ``preserve_colors``); call it
    only when needed, it costs a copy.
    """

    step: int  # steps done over all scales
    total_steps: int
    iteration: int  # steps done at this scale (0: the starting image)
    iterations: int
    scale: int  # 0-based index into sizes
    sizes: list  # [(h, w), ...] coarse to fine
    costs: dict
    elapsed: float  # seconds since stylize() started
    best: bool  # lowest total cost so far at this scale
    _pixels: np.ndarray = field(repr=False, default=None)
    _finish: Callable = field(repr=False, default=None)

    def image(self) -> np.ndarray:
        return self._finish(self._pixels)


@dataclass
class Result:
    image: Optional[np.ndarray]  # uint8 [h, w, 3]: the best image of the last scale (None if no cost was finite)
    costs: Optional[dict]  # its costs (total, content, style, tv)
    status: str  # "done" | "interrupted" | "stopped" | "nonfinite"
    message: str
    settings: Settings  # resolved: seed, iterations, layers, blend weights all explicit
    sizes: list  # [(h, w), ...] of the scales run
    steps: int  # optimisation steps done over all scales
    history: list  # [(step, elapsed_s, total, content, style, tv), ...] one row per event
    elapsed: float
    best_iteration: int  # iteration (at the last scale) of the returned image


# --------------------------------------------------------------------------
# Sizes and colour

def scale_sizes(height: int, width: int, size: int, multiscale: bool, min_size: int = DEFAULT_MIN_SIZE) -> list:
    """[(h, w), ...] coarse to fine: the final size has long side ``size``; with multiscale,
    halve it while the long side stays >= ``min_size`` (and the short side >= MIN_SIDE)."""
    from .images import size_for_long_side

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


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    """[..., 3] RGB (any range) -> [..., 3] YIQ in the same units."""
    return np.asarray(image, dtype=np.float64) @ RGB_TO_YIQ.T


def yiq_to_rgb(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float64) @ YIQ_TO_RGB.T


def luminance_rgb(image: np.ndarray, match: Optional[np.ndarray] = None) -> np.ndarray:
    """The luminance Y of ``image`` as a gray RGB float image [h, w, 3].

    With ``match`` (another image's luminance), Y is first shifted and scaled to
    match its mean and standard deviation (Gatys et al. 2016, eq. 3:
    L_s' = sigma_c / sigma_s (L_s - mu_s) + mu_c).
    """
    y = rgb_to_yiq(image)[..., 0]
    if match is not None:
        y = (y - y.mean()) * (match.std() / max(y.std(), 1e-6)) + match.mean()
    return np.repeat(np.clip(y, PIXEL_MIN, PIXEL_MAX)[..., None], 3, axis=2)


def recombine_colors(generated: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Y of ``generated`` with the I, Q (chroma) of ``content``, as uint8 RGB (same [h, w])."""
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = rgb_to_yiq(generated)[..., 0]
    return to_uint8(yiq_to_rgb(yiq))


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def _resize_float(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize of a float [h, w, 3] image in 0..255, channel by channel (keeps precision)."""
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image.astype(np.float32)
    channels = [np.asarray(Image.fromarray(image[..., c].astype(np.float32), mode="F").resize(
        (width, height), Image.BICUBIC)) for c in range(3)]
    return np.clip(np.stack(channels, axis=-1), PIXEL_MIN, PIXEL_MAX).astype(np.float32)


# --------------------------------------------------------------------------
# TensorFlow plumbing

def make_session(graph):
    """The one place sessions are created (thread and optimizer settings go here)."""
    import tensorflow as tf

    config = tf.compat.v1.ConfigProto()
    return tf.compat.v1.Session(graph=graph, config=config)


_WEIGHTS_CACHE: dict = {}


def get_weights(weights=None) -> VGGWeights:
    """``VGGWeights`` as given, or loaded (once per process) from a path or the default file."""
    from .weights import check_weights_path, default_weights_path

    if isinstance(weights, VGGWeights):
        return weights
    path = check_weights_path(weights if weights is not None else default_weights_path())
    key = (os.path.abspath(path), os.stat(path).st_mtime)
    if key not in _WEIGHTS_CACHE:
        _WEIGHTS_CACHE.clear()
        _WEIGHTS_CACHE[key] = load_vgg19(path)
    return _WEIGHTS_CACHE[key]


def _deepest(layers) -> str:
    return max(layers, key=CONV_LAYERS.index)


class FeatureGraph:
    """VGG-19 on an image of any size: content activations and per-position Gram matrices.

    Built once per (weights, pooling, layers); used for the targets at every scale.
    """

    def __init__(self, weights: VGGWeights, pooling: str, content_layer: str, style_layers: Sequence[str]):
        import tensorflow as tf

        from .vgg import build_vgg19

        self.graph = tf.Graph()
        with self.graph.as_default():
            self.pixels = tf.compat.v1.placeholder(tf.float32, [1, None, None, 3], name="pixels")  # RGB 0..255
            net = build_vgg19(weights, self.pixels - MEAN_RGB, pooling=pooling,
                              last_layer=_deepest([content_layer, *style_layers]))
            self.content = net[content_layer]  # [1, n_H, n_W, n_C]
            self.grams = {}
            for name in style_layers:
                n_C = net[name].shape[-1]
                features = tf.reshape(net[name], [-1, n_C])  # [n_H * n_W, n_C]
                positions = tf.cast(tf.shape(features)[0], tf.float32)
                self.grams[name] = tf.matmul(features, features, transpose_a=True) / positions  # [n_C, n_C]
        self.session = make_session(self.graph)

    def content_features(self, image: np.ndarray) -> np.ndarray:
        return self.session.run(self.content, {self.pixels: image[None].astype(np.float32)})

    def style_grams(self, image: np.ndarray) -> dict:
        return self.session.run(self.grams, {self.pixels: image[None].astype(np.float32)})

    def close(self):
        self.session.close()


class Problem:
    """The optimisation graph for one size: a pixel variable [1, h, w, 3] in 0..255 and its costs.

    ``pixels`` is a ``placeholder_with_default`` over the variable, so L-BFGS
    can feed any image and fetch the cost and its gradient in one run, while
    Adam updates the variable in place.
    """

    def __init__(self, weights: VGGWeights, settings: Settings, height: int, width: int,
                 content_target: np.ndarray, gram_targets: dict):
        import tensorflow as tf

        from .vgg import build_vgg19

        s = settings
        self.shape = (1, height, width, 3)
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.variable = tf.compat.v1.Variable(tf.zeros(self.shape), name="generated", use_resource=True)
            self.pixels = tf.compat.v1.placeholder_with_default(self.variable.value(), self.shape, name="pixels")
            layers = [s.content_layer] + [name for name, _ in s.style_layers]
            net = build_vgg19(weights, self.pixels - MEAN_RGB, pooling=s.pooling, last_layer=_deepest(layers))
            self.J_content = costs.content_cost(tf.constant(content_target), net[s.content_layer])
            J_style = 0.0
            for name, layer_weight in s.style_layers:
                _, n_H, n_W, _ = net[name].shape.as_list()
                target = tf.constant(gram_targets[name] * (n_H * n_W), dtype=tf.float32)  # [n_C, n_C]
                J_style += layer_weight * costs.layer_style_cost_from_gram(target, net[name])
            self.J_style = tf.convert_to_tensor(J_style)
            self.J_tv = costs.total_variation(self.pixels)
            self.J = s.content_weight * self.J_content + s.style_weight * self.J_style
            if s.tv_weight:  # reported either way; 0 * J_tv would still cost a gradient pass (~2%)
                self.J += s.tv_weight * self.J_tv
            self.gradient = tf.gradients(self.J, self.pixels)[0]  # [1, h, w, 3]
            self.costs = {"total": self.J, "content": self.J_content, "style": self.J_style, "tv": self.J_tv}
            if s.optimizer == "adam":
                optimizer = tf.compat.v1.train.AdamOptimizer(s.learning_rate)
                apply = optimizer.apply_gradients([(self.gradient, self.variable)])
                with tf.control_dependencies([apply]):
                    # Project back into the pixel range after each step.
                    self.train = self.variable.assign(tf.clip_by_value(self.variable, PIXEL_MIN, PIXEL_MAX)).op
            self.init_value = tf.compat.v1.placeholder(tf.float32, self.shape)
            self.load = self.variable.assign(self.init_value).op
            self.initializer = tf.compat.v1.global_variables_initializer()
        self.session = make_session(self.graph)
        self.session.run(self.initializer)

    def evaluate(self, image: np.ndarray) -> tuple:
        """(costs dict of floats, gradient [h, w, 3] float32) at ``image`` [h, w, 3]."""
        values, gradient = self.session.run([self.costs, self.gradient], {self.pixels: image[None]})
        return {k: float(v) for k, v in values.items()}, gradient[0]

    def close(self):
        self.session.close()


# --------------------------------------------------------------------------
# The engine

def prepare_init(kind, content: np.ndarray, style: np.ndarray, noise_ratio: float, seed: int) -> np.ndarray:
    """Starting image, float32 [h, w, 3] in 0..255, from content/style at the first scale's size.

    ``noise`` is the course's ``generate_noise_image``: U(-20, 20) noise around
    the mean pixel, blended as ``noise_ratio * noise + (1 - noise_ratio) * content``.
    """
    h, w = content.shape[:2]
    if isinstance(kind, np.ndarray):
        return _resize_float(kind.astype(np.float32), h, w)
    if kind == "content":
        return content.astype(np.float32)
    if kind == "style":
        return _resize_float(style.astype(np.float32), h, w)
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-20, 20, size=(h, w, 3)) + MEAN_RGB
    return np.clip(noise_ratio * noise + (1 - noise_ratio) * content, PIXEL_MIN, PIXEL_MAX).astype(np.float32)


def _finite(costs_: dict) -> bool:
    return all(np.isfinite(v) for v in costs_.values())


class _NonFinite(Exception):
    pass


def stylize(content, styles, settings: Optional[Settings] = None, *, callback=None, weights=None,
            **overrides) -> Result:
    """Stylise ``content`` (uint8 [h, w, 3] or a path) with ``styles`` (list of the same).

    ``settings`` (or keyword overrides such as ``size=256, optimizer="adam"``)
    control everything; ``weights`` is a ``VGGWeights``, a ``.mat`` path or
    None for the project's file.  ``callback(progress)`` runs after every
    step; raise :class:`Stop` from it (or press Ctrl-C) to end early.  The
    result is the lowest-cost image of the last scale; if a cost becomes NaN
    or infinite, the run stops and returns the best image so far with status
    ``"nonfinite"``.
    """
    from .images import read_rgb

    started = time.perf_counter()
    if isinstance(styles, (str, os.PathLike, np.ndarray)):
        styles = [styles]
    content = read_rgb(content) if not isinstance(content, np.ndarray) else content
    styles = [read_rgb(s) if not isinstance(s, np.ndarray) else s for s in styles]
    if not styles:
        raise ValueError("give at least one style image")
    settings = dataclasses.replace(settings or Settings(), **overrides)
    if isinstance(settings.init, os.PathLike) or (isinstance(settings.init, str) and settings.init not in INITS):
        settings.init = read_rgb(settings.init)  # an image file to start from
    s = settings = settings.resolved(len(styles))
    weights = get_weights(weights)
    sizes = scale_sizes(*content.shape[:2], s.size, s.multiscale, s.min_size)
    total_steps = sum(scale_iterations(s.iterations, len(sizes)))
    history: list = []
    # All targets first, then the feature graph is closed: its session's memory is
    # not needed while the (larger) optimisation graphs run.
    features = FeatureGraph(weights, s.pooling, s.content_layer, [name for name, _ in s.style_layers])
    try:
        targets = [_scale_targets(features, s, content, styles, height, width) for height, width in sizes]
    finally:
        features.close()
        del features
    state = {"status": "done", "message": "", "steps": 0}
    previous = None  # float32 [h, w, 3] result of the previous scale (in optimisation colours)
    best = None
    for scale, ((height, width), target) in enumerate(zip(sizes, targets)):
        if previous is None:
            start = prepare_init(s.init, target["content_in"], target["style_in"], s.noise_ratio, s.seed)
        else:
            start = _resize_float(previous, height, width)
        try:
            problem = Problem(weights, s, height, width, target["content"], target["grams"])
            try:
                run = _run_adam if s.optimizer == "adam" else _run_lbfgs
                best = run(problem, s, start, scale, sizes, total_steps, started, history, state, callback,
                           target["finish"])
            finally:
                problem.close()
        except KeyboardInterrupt:  # between two scales: the previous scale's best image is the result
            if best is None:
                raise
            state.update(status="interrupted", message="interrupted (Ctrl-C); kept the best image so far")
            scale -= 1
            break
        previous = best["pixels"]
        if state["status"] != "done":
            break
    found = best is not None and best["pixels"] is not None  # not when the very first cost is NaN
    return Result(image=best["finish"](best["pixels"]) if found else None, costs=best["costs"] if found else None, status=state["status"],
                  message=state["message"], settings=s, sizes=sizes[:scale + 1], steps=state["steps"],
                  history=history, elapsed=time.perf_counter() - started, best_iteration=best["iteration"])


def _scale_targets(features: "FeatureGraph", s: Settings, content, styles, height: int, width: int) -> dict:
    """Inputs and targets of one scale: content activations [1, n_H, n_W, n_C], blended Grams [n_C, n_C]."""
    from .images import resize

    content_rgb = resize(content, width, height)
    style_side = max(MIN_SIDE, round(max(height, width) * s.style_scale))
    styles_rgb = [resize(style, *_size_for(style.shape[:2], style_side)[::-1]) for style in styles]
    if s.preserve_colors:
        content_y = rgb_to_yiq(content_rgb)[..., 0]
        content_in = luminance_rgb(content_rgb)
        styles_in = [luminance_rgb(style, match=content_y) for style in styles_rgb]
    else:
        content_in = content_rgb.astype(np.float32)
        styles_in = [style.astype(np.float32) for style in styles_rgb]

    def finish(pixels):
        return recombine_colors(pixels, content_rgb) if s.preserve_colors else to_uint8(pixels)

    grams = {}
    for blend, style in zip(s.style_blend_weights, styles_in):
        if blend == 0:
            continue
        for name, gram in features.style_grams(style).items():
            grams[name] = grams.get(name, 0.0) + blend * gram.astype(np.float64)
    return {"content": features.content_features(content_in), "grams": grams, "finish": finish,
            "content_in": content_in, "style_in": styles_in[0]}


def _size_for(shape, long_side):
    from .images import size_for_long_side

    return size_for_long_side(shape[0], shape[1], long_side)


class _Tracker:
    """Keeps the lowest-cost image of a scale and emits progress events."""

    def __init__(self, s, scale, sizes, total_steps, started, history, state, callback, finish):
        self.s, self.scale, self.sizes, self.total_steps = s, scale, sizes, total_steps
        self.started, self.history, self.state, self.callback, self.finish = started, history, state, callback, finish
        self.best = {"pixels": None, "costs": None, "iteration": -1, "finish": finish}
        per_scale = scale_iterations(s.iterations, len(sizes))
        self.iterations, self.offset = per_scale[scale], sum(per_scale[:scale])  # at this scale; steps before it

    def _nonfinite_message(self, iteration: int, costs_: dict) -> str:
        """Name the cost that is NaN or infinite: the total can still be finite (a huge style cost
        times a zero weight), and quoting a finite total as the culprit misleads."""
        name = next(key for key in sorted(costs_, key=lambda key: key != "total") if not np.isfinite(costs_[key]))
        what = "the cost" if name == "total" else f"the {name} cost"
        where = f"iteration {iteration}" + (f" of scale {self.scale + 1}" if len(self.sizes) > 1 else "")
        kept = (f"kept the best image (iteration {self.best['iteration']})" if self.best["pixels"] is not None
                else "no finite image to keep")
        return f"{what} became {costs_[name]} at {where}; {kept}; lower the weights or the learning rate"

    def report(self, iteration: int, costs_: dict, pixels: np.ndarray) -> None:
        """Record the image after ``iteration`` steps at this scale (raises _NonFinite)."""
        if not _finite(costs_):
            raise _NonFinite(self._nonfinite_message(iteration, costs_))
        is_best = self.best["costs"] is None or costs_["total"] < self.best["costs"]["total"]
        if is_best:
            self.best.update(pixels=np.array(pixels, dtype=np.float32), costs=dict(costs_), iteration=iteration)
        elapsed = time.perf_counter() - self.started
        step = self.offset + iteration
        self.history.append((step, elapsed, costs_["total"], costs_["content"], costs_["style"], costs_["tv"]))
        if iteration > 0:
            self.state["steps"] = step
        if self.callback is not None:
            self.callback(Progress(step=step, total_steps=self.total_steps, iteration=iteration,
                                   iterations=self.iterations, scale=self.scale, sizes=self.sizes,
                                   costs=dict(costs_), elapsed=elapsed, best=is_best,
                                   _pixels=pixels, _finish=self.finish))


def _guarded(tracker, state, body):
    """Run ``body``; turn Ctrl-C, Stop and non-finite costs into a status, keep the best image."""
    try:
        body()
    except KeyboardInterrupt:
        state.update(status="interrupted", message="interrupted (Ctrl-C); kept the best image so far")
    except Stop as stop:
        state.update(status="stopped", message=str(stop) or "stopped by the callback; kept the best image so far")
    except _NonFinite as error:
        state.update(status="nonfinite", message=str(error))
    return tracker.best


def _run_adam(problem: Problem, s, start, scale, sizes, total_steps, started, history, state, callback, finish):
    """Adam (Kingma and Ba 2015) on the pixels, projected onto 0..255 after each step.

    Each run fetches the pre-step costs and pixels with the train op (the
    forward pass computes them anyway), so the event for iteration i is sent
    while step i+1 runs; one extra forward pass gives the last image's costs.
    """
    tracker = _Tracker(s, scale, sizes, total_steps, started, history, state, callback, finish)
    session = problem.session
    session.run(problem.initializer)  # fresh Adam moments
    session.run(problem.load, {problem.init_value: start[None]})

    def body():
        for i in range(tracker.iterations):
            _, costs_, pixels = session.run([problem.train, problem.costs, problem.pixels])
            tracker.report(i, {k: float(v) for k, v in costs_.items()}, pixels[0])
        costs_, pixels = session.run([problem.costs, problem.pixels])
        tracker.report(tracker.iterations, {k: float(v) for k, v in costs_.items()}, pixels[0])

    return _guarded(tracker, state, body)


def _run_lbfgs(problem: Problem, s, start, scale, sizes, total_steps, started, history, state, callback, finish):
    """L-BFGS on the pixels inside the box 0..255 (float32; :mod:`nst.lbfgs`).

    Each evaluation runs the graph once for the cost and its gradient; one
    event per L-BFGS iteration, with the costs of the accepted point.
    """
    from . import lbfgs

    tracker = _Tracker(s, scale, sizes, total_steps, started, history, state, callback, finish)
    shape = start.shape
    last = {"iteration": -1}

    def evaluate(x):  # x: float32 [h * w * 3]
        costs_, gradient = problem.evaluate(x.reshape(shape))
        if not _finite(costs_):
            tracker.report(last["iteration"] + 1, costs_, x.reshape(shape))  # raises _NonFinite
        return costs_["total"], gradient.reshape(-1), costs_

    def body():
        steps = lbfgs.minimize(evaluate, start, PIXEL_MIN, PIXEL_MAX, history=LBFGS_HISTORY,
                               first_step=LBFGS_FIRST_STEP)
        for iteration, x, _, costs_ in steps:
            last["iteration"] = iteration
            tracker.report(iteration, costs_, x.reshape(shape))
            if iteration == tracker.iterations:
                break

    return _guarded(tracker, state, body)
