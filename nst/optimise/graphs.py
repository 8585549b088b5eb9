"""The engine's TensorFlow graphs (``tf.compat.v1``, each in its own ``tf.Graph`` and session).

* :class:`FeatureGraph`: VGG-19 on an image of any size -> content activations
  and per-position Gram matrices (the targets).
* :class:`Problem`: the optimisation graph for one size.  Its targets are
  variables loaded by :meth:`Problem.start`, not constants, so one graph serves
  every call of that size (:class:`nst.optimise.stylize.Stylizer` keeps them).

Graph mode throughout, so it works whatever the process's global eager setting is.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from nst.optimise import costs
from nst.optimise.settings import DISTRIBUTION_LAYERS
from nst.weights.load import CONV_LAYERS, MEAN_RGB, VGGWeights


# Grappler passes left out of every session: on these graphs (VGG-19 and its gradient, weights as
# constants) they cost about 1.5 s of each graph's first run and made no later run faster.  AMD EPYC,
# 2 cores, first run / each later run (exp probtime, three graphs of the default run): all passes
# 2.2 / 0.22, 3.0 / 0.79, 4.2 / 2.53 s at 128, 256, 512 px; without these 1.1 / 0.18, 1.4 / 0.68,
# 3.0 / 2.32 s.  The remapper (fused convolutions, oneDNN's among them) and the layout pass stay on.
GRAPPLER_PASSES_OFF = ("constant_folding", "arithmetic_optimization", "dependency_optimization",
                       "loop_optimization", "function_optimization", "debug_stripper", "shape_optimization",
                       "memory_optimization", "common_subgraph_elimination")


def make_session(graph):
    """The one place sessions are created (thread and optimizer settings go here)."""
    import tensorflow as tf
    from tensorflow.core.protobuf import rewriter_config_pb2

    config = tf.compat.v1.ConfigProto()
    for name in GRAPPLER_PASSES_OFF:
        setattr(config.graph_options.rewrite_options, name, rewriter_config_pb2.RewriterConfig.OFF)
    return tf.compat.v1.Session(graph=graph, config=config)


def projection_directions(n_C: int) -> np.ndarray:
    """[n_C, n_C] fixed random orthonormal directions for the sliced-Wasserstein term (seeded: the
    style's projections and the result's must use the same ones, and L-BFGS needs one objective)."""
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(n_C, n_C)))
    return q.astype(np.float32)


def quantiles(ordered: np.ndarray, count: int) -> np.ndarray:
    """Sorted columns [M, n_C] resampled to ``count`` evenly spaced quantiles [count, n_C] (linear)."""
    where = (np.arange(count) + 0.5) * (len(ordered) / count) - 0.5  # centres of count equal bins, in [0, M-1]
    positions = np.arange(len(ordered))
    return np.stack([np.interp(where, positions, column) for column in ordered.T], axis=1).astype(np.float32)


def cost_weight(value: float) -> np.float32:
    """A cost's weight as the float32 the graph computes in.

    A weight beyond float32's range (``--content-weight 1e308``) becomes inf here without a
    word: the cost is then inf from the first step, and the run ends with the engine's own
    one-line message ("the cost became inf ...").  Left to TensorFlow, the same conversion
    printed a two-line NumPy overflow warning before that message.
    """
    with np.errstate(over="ignore"):
        return np.float32(value)


def deepest(layers) -> str:
    return max(layers, key=CONV_LAYERS.index)


class FeatureGraph:
    """VGG-19 on an image of any size: content activations and per-position Gram matrices.

    Built once per (weights, pooling, layers); used for the targets at every scale.
    """

    def __init__(self, weights: VGGWeights, pooling: str, content_layer: str, style_layers: Sequence[str]):
        import tensorflow as tf

        from nst.optimise.vgg import build_vgg19

        self.graph = tf.Graph()
        with self.graph.as_default():
            self.pixels = tf.compat.v1.placeholder(tf.float32, [1, None, None, 3], name="pixels")  # RGB 0..255
            net = build_vgg19(weights, self.pixels - MEAN_RGB, pooling=pooling,
                              last_layer=deepest([content_layer, *style_layers, *DISTRIBUTION_LAYERS]))
            self.content = net[content_layer]  # [1, n_H, n_W, n_C]
            self.grams = {}
            for name in style_layers:
                n_C = net[name].shape[-1]
                features = tf.reshape(net[name], [-1, n_C])  # [n_H * n_W, n_C]
                positions = tf.cast(tf.shape(features)[0], tf.float32)
                self.grams[name] = tf.matmul(features, features, transpose_a=True) / positions  # [n_C, n_C]
            self.activations = {name: net[name] for name in DISTRIBUTION_LAYERS}  # [1, n_H, n_W, n_C] each
        self.session = make_session(self.graph)

    def content_features(self, image: np.ndarray) -> np.ndarray:
        return self.session.run(self.content, {self.pixels: image[None].astype(np.float32)})

    def style_grams(self, image: np.ndarray) -> dict:
        return self.session.run(self.grams, {self.pixels: image[None].astype(np.float32)})

    def style_targets(self, image: np.ndarray, projections: bool = False) -> tuple:
        """One VGG pass over a style image: its Grams {layer: [n_C, n_C]} and, with ``projections``, its
        features projected on :func:`projection_directions`, each column sorted {layer: [n_H n_W, n_C]}
        (the sliced-Wasserstein term's target before resampling); else an empty dict."""
        fetches = {"grams": self.grams, **({"activations": self.activations} if projections else {})}
        found = self.session.run(fetches, {self.pixels: image[None].astype(np.float32)})
        columns = {name: a.reshape(-1, a.shape[-1]) for name, a in found.get("activations", {}).items()}
        return found["grams"], {name: np.sort(c @ projection_directions(c.shape[-1]), axis=0)
                                for name, c in columns.items()}

    def close(self):
        self.session.close()


def _target(shape, name):
    """A non-trainable variable for a target, and the placeholder that loads it."""
    import tensorflow as tf

    variable = tf.compat.v1.Variable(tf.zeros(shape), trainable=False, name=name, use_resource=True)
    value = tf.compat.v1.placeholder(tf.float32, shape, name=name + "_value")
    return variable, value, variable.assign(value).op


class Problem:
    """The optimisation graph for one size: a pixel variable [1, h, w, 3] in 0..255 and its costs.

    ``pixels`` is a ``placeholder_with_default`` over the variable, so L-BFGS
    can feed any image and fetch the cost and its gradient in one run, while
    Adam updates the variable in place.  ``train``: the op an optimiser's
    ``build(problem, settings)`` adds (None for L-BFGS).  With ``temporal`` the
    cost gains ``temporal_weight * sum(mask (x - previous)^2) / (h w 3)``; with
    ``distribution_weight`` (this scale's) above 0 it gains the sliced-Wasserstein term; ``tv_weight``
    is this scale's too.
    """

    def __init__(self, weights: VGGWeights, settings, height: int, width: int, temporal: bool = False,
                 build: Optional[Callable] = None, distribution_weight: float = 0.0, tv_weight: float = 0.0):
        import tensorflow as tf

        self.shape = (1, height, width, 3)
        self.graph = tf.Graph()
        self.loads = {}  # target name -> (placeholder, assign op)
        self.positions = {}  # style layer -> n_H n_W at this size
        with self.graph.as_default():
            self.variable = tf.compat.v1.Variable(tf.zeros(self.shape), name="generated", use_resource=True)
            self.pixels = tf.compat.v1.placeholder_with_default(self.variable.value(), self.shape, name="pixels")
            self._costs(weights, settings, temporal, distribution_weight, tv_weight)
            self.gradient = tf.gradients(self.J, self.pixels)[0]  # [1, h, w, 3]
            self.train = build(self, settings) if build is not None else None
            self.init_value = tf.compat.v1.placeholder(tf.float32, self.shape)
            self.load = self.variable.assign(self.init_value).op
            self.initializer = tf.compat.v1.global_variables_initializer()
        self.session = make_session(self.graph)
        self.session.run(self.initializer)

    def _target(self, shape, name):
        variable, value, assign = _target(shape, name)
        self.loads[name] = (value, assign)
        return variable

    def _costs(self, weights, s, temporal: bool, distribution_weight: float, tv_weight: float) -> None:
        import tensorflow as tf

        from nst.optimise.vgg import build_vgg19

        layers = [s.content_layer] + [name for name, _ in s.style_layers]
        layers += list(DISTRIBUTION_LAYERS) if distribution_weight else []
        from nst.host.precision import compute_dtype

        # Mixed precision (nst.host.precision): bf16 convolutions, float32 activations out, so the
        # Grams, the costs, the gradient and the optimisers' state stay float32.
        net = build_vgg19(weights, self.pixels - MEAN_RGB, pooling=s.pooling, last_layer=deepest(layers),
                          dtype=compute_dtype(s.precision))
        content = self._target(net[s.content_layer].shape, "content")  # [1, n_H, n_W, n_C]
        self.J_content = costs.content_cost(content.value(), net[s.content_layer])
        J_style = 0.0
        for name, layer_weight in s.style_layers:
            _, n_H, n_W, n_C = net[name].shape.as_list()
            self.positions[name] = n_H * n_W
            gram = self._target([n_C, n_C], name)  # the style's Gram matrix at this size
            J_style += layer_weight * costs.layer_style_cost_from_gram(gram.value(), net[name])
        self.J_style = tf.convert_to_tensor(J_style)
        self.J_distribution = self._distribution(net) if distribution_weight else None
        self.J_tv = costs.total_variation(self.pixels)
        self.J = cost_weight(s.content_weight) * self.J_content + cost_weight(s.style_weight) * self.J_style
        if tv_weight:  # reported either way; 0 * J_tv would still cost a gradient pass (~2%)
            self.J += cost_weight(tv_weight) * self.J_tv
        self.costs = {"total": self.J, "content": self.J_content, "style": self.J_style, "tv": self.J_tv}
        if self.J_distribution is not None:  # built only when asked: the sorts cost time
            self.J += cost_weight(distribution_weight) * self.J_distribution
            self.costs.update(total=self.J, distribution=self.J_distribution)
        if temporal:
            previous = self._target(self.shape, "temporal_image")  # [1, h, w, 3] in 0..255
            mask = self._target(self.shape[:3] + (1,), "temporal_mask")  # [1, h, w, 1] in 0..1
            weight = self._target([], "temporal_weight")
            self.costs["temporal"] = tf.reduce_sum(mask.value() * tf.square(self.pixels - previous.value())) / float(
                np.prod(self.shape))
            self.J += weight.value() * self.costs["temporal"]
            self.costs["total"] = self.J

    def _distribution(self, net):
        """Mean over DISTRIBUTION_LAYERS of the sliced-Wasserstein cost; targets [n_C, n_H n_W] each."""
        total = 0.0
        for name in DISTRIBUTION_LAYERS:
            _, n_H, n_W, n_C = net[name].shape.as_list()
            self.positions["distribution_" + name] = n_H * n_W
            target = self._target([n_C, n_H * n_W], "distribution_" + name)  # one sorted row per direction
            total += costs.distribution_cost(net[name], target.value(), projection_directions(n_C))
        return total / len(DISTRIBUTION_LAYERS)

    def targets(self, content: np.ndarray, grams: dict, temporal=None, distributions=None) -> dict:
        """{target name: value} for :meth:`start`.

        ``content``: activations [1, n_H, n_W, n_C]; ``grams``: per-position Gram matrices
        [n_C, n_C] (float64), scaled here to this size's n_H n_W; ``temporal``: (image
        [h, w, 3], mask [h, w], weight) at this size, for a graph built with the term;
        ``distributions``: [(blend weight, {layer: sorted projections [M, n_C]}), ...] per style, for
        a graph with the sliced-Wasserstein term (the styles' quantile functions are averaged).
        """
        values = {"content": content}
        if self.J_distribution is not None:
            for name in DISTRIBUTION_LAYERS:
                count = self.positions["distribution_" + name]
                values["distribution_" + name] = sum(w * quantiles(d[name], count) for w, d in distributions).T
        for name, gram in grams.items():
            values[name] = np.asarray(gram * self.positions[name], dtype=np.float32)
        if temporal is not None:
            image, mask, weight = temporal
            values.update(temporal_image=image[None], temporal_mask=mask[None, ..., None],
                          temporal_weight=np.float32(weight))
        return values

    def start(self, image: np.ndarray, targets: dict) -> None:
        """Fresh optimiser state, the targets {name: array} loaded and the pixels set to ``image`` [h, w, 3]."""
        self.session.run(self.initializer)
        feed = {self.init_value: image[None]}
        feed.update({self.loads[name][0]: value for name, value in targets.items()})
        self.session.run([self.load] + [self.loads[name][1] for name in targets], feed)

    def evaluate(self, image: np.ndarray) -> tuple:
        """(costs dict of floats, gradient [h, w, 3] float32) at ``image`` [h, w, 3]."""
        values, gradient = self.session.run([self.costs, self.gradient], {self.pixels: image[None]})
        return {k: float(v) for k, v in values.items()}, gradient[0]

    def close(self):
        self.session.close()
