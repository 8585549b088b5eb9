"""The optimisation of a picture whose activations do not fit: cost and gradient tile by tile.

Each evaluation makes two passes over the tiles (:mod:`nst.optimise.tiling` places them):

1. *statistics*, VGG-19 forward only: the Gram matrices summed over the tiles' cores, so
   G_l is the whole picture's, and for the sliced-Wasserstein term a fixed, evenly spaced
   sample of positions projected on its directions;
2. *gradient*, forward and backward: each tile's cost whose gradient with respect to its
   core features is the whole cost's (below), back to the outer box's pixels, summed.

Per tile, with F the core's features [positions, n_C] at layer l and N_l the picture's positions:

    content      c * sum((F - F_C)^2),  c = content_weight / (4 N n_C)         (course, eq. 1)
    style        1/2 sum((F U_l) * F),  U_l = style_weight w_l (G_l - A_l) / (n_C^2 N_l^2)
                 (dJ/dF = F U_l, the gradient of sum((G - A)^2) / (4 n_C^2 N^2) (course, eq. 2))
    distribution d * sum((F D - M)^2),  d = weight / (len(DISTRIBUTION_LAYERS) n_C N_l)

where M is each projection's target at its rank, read from a table of the whole picture's
rank -> target map that pass 1's sample gives (the sample stands in for the exact ranks
of :func:`nst.optimise.costs.rank_matched`, whose sort of every position would hold 3 GB
at 4096 px).  The content and style costs and gradients equal the whole picture's up to
rounding; the distribution term's up to the sample and the table's resolution.  The total
variation is computed on the whole picture in NumPy (it is cheap and local).
"""

from __future__ import annotations

import math

import numpy as np

from nst.optimise.graphs import cost_weight, deepest, make_session, projection_directions
from nst.optimise.settings import DISTRIBUTION_LAYERS
from nst.optimise.tiling import plan, stride_of
from nst.weights.load import MEAN_RGB, VGGWeights

SAMPLE_POSITIONS = 2 ** 20  # at most this many positions per layer give the distribution term's ranks
TABLE_BINS = 2 ** 16  # bins of each direction's value -> target table (pass 2)


def sample_step(positions: int, cap: int | None = None) -> int:
    """Every k-th row and column of a layer's positions: the smallest odd k giving about ``cap``
    (default SAMPLE_POSITIONS) of them or fewer (k^2 >= positions / cap; rounding each side up may add a
    row and a column).  Odd, because the optimised picture carries a faint lattice on
    VGG's pooling grid (periods 2, 4, 8, 16): an even step would sample one phase of it only, and the
    ranks it gives the other phases would be biased (measured at 1024 px with k = 2: the distribution
    term stalled at 7x the whole picture's value)."""
    step = max(1, math.ceil(math.sqrt(positions / (cap or SAMPLE_POSITIONS))))
    return step if step % 2 else step + 1


class TileGraph:
    """VGG-19 on an outer box of any size, cut to the core at each layer used; one graph for every tile.

    ``layers``: content layer, style layers and (with ``distribution``) DISTRIBUTION_LAYERS.
    """

    def __init__(self, weights: VGGWeights, settings, distribution: bool):
        import tensorflow as tf

        from nst.host.precision import compute_dtype
        from nst.optimise.vgg import build_vgg19

        s = settings
        self.content_layer, self.style_layers = s.content_layer, [name for name, _ in s.style_layers]
        self.distribution_layers = list(DISTRIBUTION_LAYERS) if distribution else []
        used = [self.content_layer, *self.style_layers, *self.distribution_layers]
        self.last_layer = deepest(used)
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.pixels = tf.compat.v1.placeholder(tf.float32, [1, None, None, 3], name="pixels")  # RGB 0..255
            net = build_vgg19(weights, self.pixels - MEAN_RGB, pooling=s.pooling, last_layer=self.last_layer,
                              dtype=compute_dtype(s.precision))
            self.crops = {stride: tf.compat.v1.placeholder(tf.int32, [4]) for stride in {stride_of(n) for n in used}}
            core = {name: self._cut(net[name], self.crops[stride_of(name)]) for name in set(used)}
            self.channels = {name: int(core[name].shape[-1]) for name in core}  # n_C of each layer used
            self._statistics(core)
            self._gradient(core, s)
        self.session = make_session(self.graph)

    @staticmethod
    def _cut(activation, crop):
        """[1, h, w, n_C] -> the core [1, rows, columns, n_C]; crop = (row, column, rows, columns)."""
        import tensorflow as tf

        core = tf.slice(activation, [0, crop[0], crop[1], 0], [1, crop[2], crop[3], -1])
        core.set_shape([1, None, None, activation.shape[-1]])  # the channels, which the slice's shape loses
        return core

    def _statistics(self, core) -> None:
        """Pass 1's fetches: Grams F^T F [n_C, n_C], the content core, the sample's projections [n, n_C]."""
        import tensorflow as tf

        self.grams = {}
        for name in self.style_layers:
            features = tf.reshape(core[name], [-1, core[name].shape[-1]])  # [positions, n_C]
            self.grams[name] = tf.matmul(features, features, transpose_a=True)
        self.content = core[self.content_layer]
        self.sample_at = {name: tf.compat.v1.placeholder(tf.int32, [3]) for name in self.distribution_layers}
        self.samples = {}
        for name in self.distribution_layers:
            row, column, step = self.sample_at[name][0], self.sample_at[name][1], self.sample_at[name][2]
            n_C = core[name].shape[-1]
            sampled = tf.strided_slice(core[name], [0, row, column, 0], tf.shape(core[name]), [1, step, step, 1])
            sampled.set_shape([1, None, None, n_C])
            self.samples[name] = tf.matmul(tf.reshape(sampled, [-1, n_C]), projection_directions(n_C))

    def _gradient(self, core, s) -> None:
        """Pass 2: the tile's cost (module docstring) and its gradient [1, h, w, 3] at the outer box."""
        import tensorflow as tf

        scalar = tf.compat.v1.placeholder
        n_C = core[self.content_layer].shape[-1]
        self.content_target = scalar(tf.float32, [1, None, None, n_C])
        self.content_scale = scalar(tf.float32, [])
        self.content_sum = tf.reduce_sum(tf.square(core[self.content_layer] - self.content_target))
        cost = self.content_scale * self.content_sum
        self.uppers = {}
        for name in self.style_layers:
            n_C = core[name].shape[-1]
            features = tf.reshape(core[name], [-1, n_C])
            self.uppers[name] = scalar(tf.float32, [n_C, n_C])
            cost += 0.5 * tf.reduce_sum(tf.matmul(features, self.uppers[name]) * features)
        self.tables, self.distribution_sums = {}, {}
        for name in self.distribution_layers:
            n_C = core[name].shape[-1]
            projections = tf.matmul(tf.reshape(core[name], [-1, n_C]), projection_directions(n_C))  # [n, n_C]
            table = (scalar(tf.float32, [n_C, TABLE_BINS + 1]), scalar(tf.float32, [n_C]), scalar(tf.float32, [n_C]),
                     scalar(tf.float32, []))
            self.tables[name] = table
            matched = tf.stop_gradient(_look_up(projections, *table[:3]))
            self.distribution_sums[name] = tf.reduce_sum(tf.square(projections - matched))
            cost += table[3] * self.distribution_sums[name]
        self.gradient = tf.gradients(cost, self.pixels)[0]

    def feed(self, image: np.ndarray, tile) -> dict:
        """The outer box of ``image`` [h, w, 3] and the core's place at each stride."""
        top, bottom, left, right = tile.outer
        feed = {self.pixels: image[None, top:bottom, left:right]}
        feed.update({placeholder: tile.crop(stride) for stride, placeholder in self.crops.items()})
        return feed

    def close(self) -> None:
        self.session.close()


def _look_up(projections, table, low, inverse_width):
    """Each projection [n, n_C] mapped through its direction's table [n_C, B + 1] (linear between bins)."""
    import tensorflow as tf

    bins = TABLE_BINS
    where = tf.clip_by_value((projections - low) * inverse_width, 0.0, float(bins))  # [n, n_C] in bins
    below = tf.minimum(tf.floor(where), bins - 1.0)
    fraction = where - below
    flat = tf.reshape(table, [-1])
    index = tf.cast(below, tf.int32) + tf.range(tf.shape(table)[0]) * (bins + 1)  # [n, n_C] into flat
    return tf.gather(flat, index) * (1.0 - fraction) + tf.gather(flat, index + 1) * fraction


def statistics(graph: TileGraph, image: np.ndarray, tiles, content: bool = False, steps=None) -> dict:
    """Pass 1 over ``image`` [h, w, 3]: {"grams": {layer: G [n_C, n_C] float64, summed over the cores},
    "samples": {layer: projections [n, n_C] of every ``steps[layer]``-th row and column}, and with
    ``content`` "content": the content layer's features of the whole picture [1, n_H, n_W, n_C]}."""
    steps = steps or {}
    grams = {name: 0.0 for name in graph.style_layers}
    samples = {name: [] for name in steps}
    pieces = []
    fetches = {"grams": graph.grams, "samples": {name: graph.samples[name] for name in steps}}
    if content:
        fetches["content"] = graph.content
    for tile in tiles:
        feed = graph.feed(image, tile)
        for name, step in steps.items():
            stride = stride_of(name)
            feed[graph.sample_at[name]] = [(-tile.core[0] // stride) % step, (-tile.core[2] // stride) % step, step]
        found = graph.session.run(fetches, feed)
        for name, gram in found["grams"].items():
            grams[name] = grams[name] + gram.astype(np.float64)
        for name, sample in found["samples"].items():
            samples[name].append(sample)
        if content:
            pieces.append((tile, found["content"]))
    result = {"grams": grams, "samples": {name: np.concatenate(parts) for name, parts in samples.items()}}
    if content:
        result["content"] = _assemble(pieces, stride_of(graph.content_layer), *image.shape[:2])
    return result


def _assemble(pieces, stride: int, height: int, width: int) -> np.ndarray:
    """The cores' features [(tile, [1, rows, columns, n_C]), ...] put together: [1, n_H, n_W, n_C]."""
    n_C = pieces[0][1].shape[-1]
    whole = np.empty((1, -(-height // stride), -(-width // stride), n_C), np.float32)
    for tile, features in pieces:
        row, column = tile.core[0] // stride, tile.core[2] // stride
        whole[:, row:row + features.shape[1], column:column + features.shape[2]] = features
    return whole


class TiledFeatures:
    """:class:`nst.optimise.graphs.FeatureGraph`'s two target methods for a picture cut into tiles of ``side``."""

    def __init__(self, graph: TileGraph, side: int):
        self.graph, self.side = graph, side

    def _tiles(self, image):
        return plan(*image.shape[:2], self.side, self.graph.last_layer)

    def content_features(self, image: np.ndarray) -> np.ndarray:
        """[1, n_H, n_W, n_C] of ``image`` [h, w, 3]."""
        return statistics(self.graph, image.astype(np.float32), self._tiles(image), content=True)["content"]

    def style_targets(self, image: np.ndarray, projections: bool = False) -> tuple:
        """({layer: Gram per position [n_C, n_C]}, {layer: sampled projections, each column sorted [n, n_C]})."""
        image = image.astype(np.float32)
        steps = {}
        if projections:
            steps = {name: sample_step(_positions(name, *image.shape[:2])) for name in self.graph.distribution_layers}
        found = statistics(self.graph, image, self._tiles(image), steps=steps)
        grams = {name: gram / _positions(name, *image.shape[:2]) for name, gram in found["grams"].items()}
        return grams, {name: _sorted_columns(sample) for name, sample in found["samples"].items()}


def _positions(layer: str, height: int, width: int) -> int:
    """n_H n_W of ``layer`` on a ``height`` x ``width`` picture ('SAME' pooling keeps partial windows)."""
    stride = stride_of(layer)
    return -(-height // stride) * -(-width // stride)


class TiledProblem:
    """:class:`nst.optimise.graphs.Problem`'s interface at one size, computed tile by tile.

    No ``train`` op: L-BFGS calls :meth:`evaluate`, Adam steps in NumPy from it.  No temporal
    term (a video frame at print size is not a use this path serves).
    """

    train = None

    def __init__(self, graph: TileGraph, settings, height: int, width: int, side: int, distribution_weight: float,
                 tv_weight: float = 0.0):
        self.graph, self.settings, self.shape = graph, settings, (1, height, width, 3)
        self.tiles = plan(height, width, side, graph.last_layer)
        self.distribution_weight, self.tv_weight = distribution_weight, tv_weight  # this scale's
        layers = [settings.content_layer, *graph.style_layers, *graph.distribution_layers]
        self.positions = {name: _positions(name, height, width) for name in layers}
        self.steps = {name: sample_step(self.positions[name])
                      for name in graph.distribution_layers} if distribution_weight else {}
        self.target = None

    def targets(self, content: np.ndarray, grams: dict, temporal=None, distributions=None) -> dict:
        """As :meth:`Problem.targets`: content [1, n_H, n_W, n_C], Grams per position, the styles'
        sorted projections [(blend weight, {layer: [M, n_C]}), ...]."""
        if temporal is not None:
            raise ValueError("the temporal (video) term is not available on a tiled picture; lower the size")
        return {"content": content, "distributions": distributions or [],
                "grams": {name: gram * self.positions[name] for name, gram in grams.items()}}

    def start(self, image: np.ndarray, targets: dict) -> None:
        self.target = targets

    def evaluate(self, image: np.ndarray) -> tuple:
        """(costs dict of floats, gradient [h, w, 3] float32) at ``image`` [h, w, 3]."""
        s = self.settings
        image = np.ascontiguousarray(image, dtype=np.float32)
        first = statistics(self.graph, image, self.tiles, steps=self.steps)
        style, uppers = self._style(first["grams"])
        tables = {name: self._table(name, sample) for name, sample in first["samples"].items()}
        content, distribution, gradient = self._gradient_pass(image, uppers, tables)
        tv, tv_gradient = total_variation(image)
        costs = {"content": content, "style": style, "tv": tv}
        total = cost_weight(s.content_weight) * content + cost_weight(s.style_weight) * style
        if self.tv_weight:
            total += cost_weight(self.tv_weight) * tv
            gradient += cost_weight(self.tv_weight) * tv_gradient
        if self.steps:
            costs["distribution"] = distribution
            total += cost_weight(self.distribution_weight) * distribution
        costs["total"] = float(total)
        return costs, gradient

    def _style(self, grams: dict) -> tuple:
        """(J_style, {layer: U_l [n_C, n_C] float32}) from the whole picture's Grams (module docstring)."""
        s, style, uppers = self.settings, 0.0, {}
        for name, layer_weight in s.style_layers:
            difference = grams[name] - self.target["grams"][name]  # [n_C, n_C] float64
            scale = (self.graph.channels[name] * self.positions[name]) ** 2
            style += layer_weight * float(np.sum(np.square(difference))) / (4.0 * scale)
            uppers[name] = (float(cost_weight(s.style_weight)) * layer_weight * difference / scale).astype(np.float32)
        return style, uppers

    def _table(self, name: str, sample: np.ndarray) -> tuple:
        """Pass 2's map for one layer from pass 1's sample [n, n_C]: (table [n_C, B + 1], low [n_C],
        1 / bin width [n_C], the cost's scale).  Knots: the sample's order statistics at ranks
        (i + 0.5) / n, each mapped to the blended styles' quantile at the same rank."""
        knots = _sorted_columns(sample)  # [n, n_C]
        targets = sum(w * _quantiles(d[name], len(knots)) for w, d in self.target["distributions"])  # [n, n_C]
        low, high = knots[0], knots[-1]
        width = (high - low) / TABLE_BINS
        grid = low[:, None] + width[:, None] * np.arange(TABLE_BINS + 1)  # [n_C, B + 1]
        table = np.stack([np.interp(grid[c], knots[:, c], targets[:, c]) for c in range(knots.shape[1])])
        inverse = np.divide(1.0, width, out=np.zeros_like(width), where=width > 0)
        scale = float(cost_weight(self.distribution_weight)) / (
            len(self.graph.distribution_layers) * knots.shape[1] * self.positions[name])
        return table.astype(np.float32), low, inverse.astype(np.float32), np.float32(scale)

    def _gradient_pass(self, image: np.ndarray, uppers: dict, tables: dict) -> tuple:
        """Pass 2: (J_content, J_distribution, the gradient [h, w, 3] of the content, style and distribution terms)."""
        s, graph = self.settings, self.graph
        layer, target = s.content_layer, self.target["content"]
        stride, n_C = stride_of(layer), target.shape[-1]
        content_scale = np.float32(cost_weight(s.content_weight) / (4.0 * self.positions[layer] * n_C))
        gradient = np.zeros(image.shape, np.float32)
        content_sum, distribution_sums = 0.0, {name: 0.0 for name in tables}
        fetches = {"gradient": graph.gradient, "content": graph.content_sum,
                   "distribution": {name: graph.distribution_sums[name] for name in tables}}
        for tile in self.tiles:
            feed = graph.feed(image, tile)
            row, column = tile.core[0] // stride, tile.core[2] // stride
            _, _, rows, columns = tile.crop(stride)
            feed[graph.content_target] = target[:, row:row + rows, column:column + columns]
            feed[graph.content_scale] = content_scale
            feed.update({graph.uppers[name]: upper for name, upper in uppers.items()})
            for name, placeholders in graph.tables.items():
                values = tables.get(name) or _no_table(placeholders)
                feed.update(dict(zip(placeholders, values)))
            found = graph.session.run(fetches, feed)
            top, bottom, left, right = tile.outer
            gradient[top:bottom, left:right] += found["gradient"][0]
            content_sum += float(found["content"])
            for name, value in found["distribution"].items():
                distribution_sums[name] += float(value)
        content = content_sum / (4.0 * self.positions[layer] * n_C)
        distribution = sum(total / (graph.channels[name] * self.positions[name]) for name, total in distribution_sums.items())
        return content, distribution / max(1, len(distribution_sums)), gradient

    def close(self) -> None:
        """Nothing of its own: the tile graph is the :class:`Stylizer`'s, shared by every tiled size."""


def _sorted_columns(values: np.ndarray) -> np.ndarray:
    """[n, n_C] with each column sorted, the columns shared among the sort threads of :mod:`nst.optimise.costs`."""
    from nst.optimise.costs import sort_threads

    rows = np.ascontiguousarray(values.T)  # [n_C, n]: each direction's values contiguous

    def sort(part):
        rows[part].sort(axis=1)

    pool, workers = sort_threads()
    bounds = np.linspace(0, len(rows), min(workers, len(rows)) + 1).astype(int)
    list(pool.map(sort, [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]))
    return rows.T


def _quantiles(ordered: np.ndarray, count: int) -> np.ndarray:
    """:func:`nst.optimise.graphs.quantiles` for every column at once (the same evenly spaced linear
    interpolation, without a loop over columns): sorted [M, n_C] -> [count, n_C]."""
    where = np.clip((np.arange(count) + 0.5) * (len(ordered) / count) - 0.5, 0, len(ordered) - 1)
    below = np.minimum(where.astype(np.int64), len(ordered) - 2) if len(ordered) > 1 else np.zeros(count, np.int64)
    fraction = (where - below).astype(np.float32)[:, None]
    above = np.minimum(below + 1, len(ordered) - 1)
    return ordered[below] * (1 - fraction) + ordered[above] * fraction


def _no_table(placeholders) -> tuple:
    """Zeros for a graph built with the distribution term at a scale where it is off (its scale is 0)."""
    n_C = placeholders[1].shape[0]
    return (np.zeros((n_C, TABLE_BINS + 1), np.float32), np.zeros(n_C, np.float32), np.zeros(n_C, np.float32),
            np.float32(0.0))


def total_variation(image: np.ndarray) -> tuple:
    """(J_tv, its gradient [h, w, 3]) of ``image`` [h, w, 3], as :func:`nst.optimise.costs.total_variation`."""
    dy = image[1:] - image[:-1]  # [h - 1, w, 3]
    dx = image[:, 1:] - image[:, :-1]  # [h, w - 1, 3]
    pixels = float(image.shape[0] * image.shape[1])
    gradient = np.zeros_like(image)
    gradient[1:] += dy
    gradient[:-1] -= dy
    gradient[:, 1:] += dx
    gradient[:, :-1] -= dx
    value = (float(np.sum(np.square(dy, dtype=np.float64))) + float(np.sum(np.square(dx, dtype=np.float64)))) / pixels
    return value, gradient * np.float32(2.0 / pixels)
