"""Every setting of the optimisation engine: its default, its check and its command-line option.

Defined once here.  :class:`Settings` holds a run's choices; :meth:`Settings.resolved`
checks them and makes each choice explicit.  :data:`NUMBERS` says what each number
may be (checked by :meth:`Number.check`, for the engine and the command line alike)
and :data:`OPTIONS` how each field appears on the command line (``nst.commands.options``
builds its parser from it), so a new setting is added in this module only.

Imports nothing heavy: the command line reads it before TensorFlow starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from nst.host.precision import DEFAULT_PRECISION, PRECISIONS
from nst.optimise.vgg import POOLINGS  # noqa: F401 (defined once, beside the pooling code; re-exported)
from nst.weights.load import CONV_LAYERS

# --------------------------------------------------------------------------
# Defaults: the CLI shows them in --help.
# Measured on the sample pair (tubingen / starry_night) with the normalised
# VGG-19, see README "Command line" for the figures behind them.

DEFAULT_SIZE = 512  # long side of the result, pixels
DEFAULT_OPTIMIZER = "lbfgs"
OPTIMIZERS = ("adam", "lbfgs")
# Iterations per optimiser (per scale with multiscale).  An L-BFGS iteration costs
# about 1.1 gradient evaluations, an Adam iteration one.  Sample pair at 160 px,
# total cost at 25/50/100/150 iterations: L-BFGS 1.02/0.76/0.60/0.56, Adam (lr 10)
# 1.02/0.70/0.59/0.58: by 150-200 the curve has flattened (about 7% per 50 more).
DEFAULT_ITERATIONS = {"adam": 300, "lbfgs": 200}  # a single scale (--no-multiscale)
# Coarse to fine (the default): most iterations where they are cheap.  A 128 px iteration
# costs 1/16 of a 512 px one, so (80, 40, 25) costs about as much as 40 iterations at
# 512 px.  The coarse scales lay out the large shapes (swirls, bands); the last one refines
# the brush strokes and pulls the photo back.  Tubingen x starry_night, style weight 400, seed 0
# (bench/bench_look.py's metric: content, style at 512/256/128 px):
#   120, 60, 20: 0.192, 0.0016/0.0042/0.0063 (style at 256 px only equal to the reference's)
#   120, 60, 25: 0.178, 0.0012/0.0034/0.0062
#   100, 50, 25: 0.180, 0.0012/0.0032/0.0062
#    80, 40, 25: 0.179, 0.0012/0.0037/0.0063 (the default: the same look, about 20 s less than 120, 60, 25)
#    60, 30, 25: 0.178, 0.0013/0.0042/0.0070, weaker swirls in the sky
# See README "The defaults".  (The Adam schedule was scaled from the earlier L-BFGS one,
# 120, 60, 20, by the measured 1.4x; its look is not measured.)
DEFAULT_SCHEDULE = {"adam": (180, 80, 25), "lbfgs": (80, 40, 25)}
# Above this long side each scale costs 3-4x the one before (an L-BFGS iteration took 48 s at 2048 px
# and 145 s at 4096 px, both tiled, on a 2-core Zen 4 in bf16: bench/RESULTS.md, issue 32), and runs up to it keep DEFAULT_SCHEDULE as
# it was measured.  The last scale still needs the schedule's last count: after upsampling, its costs
# start far above the converged ones, and stopping early leaves a lattice of 4 px blocks (the gradient
# through VGG's 2x2 poolings is constant on such blocks).  Tubingen x starry_night at 1024 px, 80/80/40
# below, then N at 1024: N = 6 left the total cost at 45.7 and the rows and columns at multiples of
# 4 px 1.76x as different from their neighbours as the others; N = 12: 8.2 and 1.47; N = 25: 3.3 and
# 1.27 (bench/bench_print.py --last-scale 6 12 25).  A scale between PRINT_SIDE and the last is re-optimised at the last, so it takes the last count
# halved per doubling of the side (an 8192 px run: 12 at 4096 px); a 4096 px run is 80, 80, 80, 40, 25, 25.
PRINT_SIDE = 2048
# Adam step in 0..255 pixel units.  On the sample pair at 160 px, total cost after 50/150
# iterations: lr 2 (the course's) 0.956/0.665, lr 5 0.766/0.593, lr 10 0.703/0.580.
DEFAULT_LEARNING_RATE = 10.0
# L-BFGS correction pairs kept.  Each pair holds two float32 copies of the image, 19 MB at
# 1024x768.  Sample pair at 256 px (measured with SciPy's L-BFGS-B, which nst.optimise.lbfgs replaced),
# total cost after 50/100/150 iterations: 20 pairs 0.814/0.687/0.637, 10 pairs
# 0.822/0.691/0.640, 5 pairs 0.852/0.705/0.654.
LBFGS_HISTORY = 10
# Largest pixel change of L-BFGS's first trial step (0..255 units), before it knows any
# curvature; its line search doubles or shrinks it.  From the course's noisy start at 400x300
# the first step settled at 128: starting at 1 cost 8 evaluations, at 32 three.
LBFGS_FIRST_STEP = 32.0
DEFAULT_INIT = "content"
# "fast": the feed-forward (AdaIN) result.  Measured on tubingen x starry_night (bench/bench_look.py,
# README "Defaults"): it reaches the same look as "content" with the default schedule, and a worse one
# with a third of it, so it saves no iterations and is not the default.
INITS = ("content", "noise", "style", "fast")  # or a path to an image
DEFAULT_NOISE_RATIO = 0.6  # the course's: noise_ratio * U(-20, 20) + (1 - noise_ratio) * content
DEFAULT_CONTENT_WEIGHT = 10.0  # the course's alpha
# The course's beta is 40; with the normalised VGG-19 that leaves the photo under a fine texture.
# On tubingen x starry_night at 512 px (bench/bench_look.py), with the sliced-Wasserstein term
# below and 20 iterations at 512 px: style weight 450 gave a content cost of 0.201 (the issue's
# ceiling is 0.2), 400 gave 0.192, 405-425 gave 0.193-0.197, not in order (the optimisation's path
# is sensitive: oneDNN's rounding alone moved 415's from 0.197 to 0.191).  With 25 iterations at
# 512 px (the schedule above), 400 is well inside both targets.
DEFAULT_STYLE_WEIGHT = 400.0
DEFAULT_TV_WEIGHT = 0.0
# Sliced-Wasserstein term (Heitz et al. 2021) beside the Gram matrices, on the layers whose Grams a
# flat region cannot satisfy without specks (README "The defaults").  One weight per scale is allowed,
# like the iterations.  Tubingen x shipwreck at 512 px, 4x crops of the sky: without it a diamond
# lattice; weight 40 at 128 and 256 px only: a faint mesh; 40 at every scale: a smooth sky with a few
# isolated dots; 100 or 300 at the coarse scales: no better.  One profiled run each: 143.6 s and
# 159.8 s for the two weights of 40.
DEFAULT_DISTRIBUTION_WEIGHT = 40.0
DISTRIBUTION_LAYERS = ("conv1_1", "conv2_1")
DEFAULT_CONTENT_LAYER = "conv4_2"
DEFAULT_STYLE_LAYERS = (("conv1_1", 0.2), ("conv2_1", 0.2), ("conv3_1", 0.2), ("conv4_1", 0.2), ("conv5_1", 0.2))
DEFAULT_POOLING = "avg"
DEFAULT_STYLE_SCALE = 1.0
DEFAULT_MULTISCALE = True  # coarse to fine: the large shapes of a painting come from the coarse scales
DEFAULT_MIN_SIZE = 128  # smallest scale of --multiscale
MIN_SIDE = 16  # VGG-19 pools four times before conv5_1: below 16 px the deep layers are empty
MIN_TILE = 32  # --tile's least core side (two of conv5_1's 16 px positions); the automatic choice is larger

PIXEL_MIN, PIXEL_MAX = 0.0, 255.0


class LayerError(ValueError):
    """An unknown layer name or a malformed layer list (message suggests valid names)."""


# --------------------------------------------------------------------------
# Numbers: what each may be, checked in one place

@dataclass(frozen=True)
class Number:
    """An int or a finite float, optionally bounded: ``check`` for values, ``parse`` for command-line text."""

    kind: type  # int or float
    minimum: Optional[float] = None
    positive: bool = False
    maximum: Optional[float] = None

    def reason(self, value):
        """(converted value, None) or (None, why it is refused: "must be ..., not ...")."""
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                return None, f"must be an integer, not {value!r}"
            value = int(value)
        else:
            try:
                value = float(value)
            except (TypeError, ValueError):
                return None, f"must be a number, not {value!r}"
            if not np.isfinite(value):
                return None, f"must be a finite number, not {value!r}"
        if self.positive and value <= 0:
            return None, f"must be positive, not {value:g}"
        if self.minimum is not None and value < self.minimum:
            return None, f"must be at least {self.minimum:g}, not {value:g}"
        if self.maximum is not None and value > self.maximum:
            return None, f"must be at most {self.maximum:g}, not {value:g}"
        return value, None

    def parse(self, text: str):
        """Command-line text -> the number; ValueError("must be ..., not ...") (the caller names the flag)."""
        value = text
        if self.kind is int and re.fullmatch(r"\s*[+-]?\d+\s*", text):
            value = int(text)
        value, reason = self.reason(value)
        if reason is not None:
            raise ValueError(reason)
        return value

    def check(self, name: str, value):
        """``value`` converted, or ValueError("NAME must be ..., not ...")."""
        value, reason = self.reason(value)
        if reason is not None:
            raise ValueError(f"{name} {reason}")
        return value


NON_NEGATIVE = Number(float, minimum=0)
PER_SCALE = ("iterations", "distribution_weight", "tv_weight")  # Settings fields that take one value per scale
NUMBERS = {  # Settings field -> what it may be
    "size": Number(int, minimum=MIN_SIDE),
    "min_size": Number(int, minimum=MIN_SIDE),
    "iterations": Number(int, minimum=1),  # each entry of a schedule
    "learning_rate": Number(float, positive=True),
    "style_scale": Number(float, positive=True),
    "noise_ratio": Number(float, minimum=0, maximum=1),
    "seed": Number(int, minimum=0),
    "tile": Number(int, minimum=MIN_TILE),
    "content_weight": NON_NEGATIVE,
    "style_weight": NON_NEGATIVE,
    "tv_weight": NON_NEGATIVE,
    "distribution_weight": NON_NEGATIVE,
    "style_blend_weights": NON_NEGATIVE,  # each weight
}


def per_scale(schedule, n_scales: int) -> list:
    """The value at each of ``n_scales`` scales (coarse to fine) from one value or a schedule.

    A schedule longer than the scales gives its last (finest) entries; a shorter one
    repeats its first entry at the extra coarse scales.
    """
    if not isinstance(schedule, (list, tuple)):
        return [schedule] * n_scales
    schedule = list(schedule)[-n_scales:]
    return [schedule[0]] * (n_scales - len(schedule)) + schedule


def scale_iterations(iterations, n_scales: int) -> list:
    """Iterations at each of ``n_scales`` scales: :func:`per_scale` of an int or a schedule."""
    return [int(n) for n in per_scale(iterations, n_scales)]


def default_schedule(optimizer: str, sizes) -> tuple:
    """The default iterations at each of ``sizes`` [(h, w), ...] (coarse to fine) with multiscale:
    DEFAULT_SCHEDULE up to PRINT_SIDE; above it, the last count at the last scale and that count
    halved per doubling of the side at the scales between."""
    within = [size for size in sizes if max(size) <= PRINT_SIDE]
    counts = scale_iterations(DEFAULT_SCHEDULE[optimizer], len(within)) if within else []
    last = DEFAULT_SCHEDULE[optimizer][-1]
    between = [max(1, round(last * PRINT_SIDE / max(size))) for size in sizes[len(within):-1]]
    return tuple(counts + between + ([last] if len(sizes) > len(within) else []))


def check_schedule(name: str, value):
    """For a per-scale field (PER_SCALE): one number (every scale), a
    sequence of numbers (coarse to fine) or the text ``"N"`` / ``"N,N,..."``; checked by NUMBERS[name]."""
    if isinstance(value, str):
        value = tuple(part.strip() for part in value.split(","))
        value = value[0] if len(value) == 1 else value
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name} must list at least one number")
        return tuple(NUMBERS[name].check(name, part) for part in value)
    return NUMBERS[name].check(name, value)


def check_iterations(iterations):
    """An int (every scale), a sequence of ints (coarse to fine) or the text ``"N"`` / ``"N,N,..."``."""
    return check_schedule("iterations", iterations)


# --------------------------------------------------------------------------
# Layers and blend weights

def parse_layer(name: str) -> str:
    """Check one layer name; ``reluX_Y`` (jcjohnson/neural-style's names) means ``convX_Y`` after its ReLU."""
    name = str(name).strip()
    if name.startswith("relu"):
        name = "conv" + name[4:]
    if name not in CONV_LAYERS:
        close = difflib.get_close_matches(name, CONV_LAYERS, n=3, cutoff=0.5)
        # Typos difflib cannot rank: look-alike characters (conv3_l) and a missing underscore (conv42).
        fixed = re.sub(r"^(?:conv|relu)?_?(\d)_?(\d)$", r"conv\1_\2",
                       name.lower().translate(str.maketrans("lio", "110")).replace("c0nv", "conv"))
        if fixed in CONV_LAYERS:
            close = [fixed] + [c for c in close if c != fixed][:2]
        hint = f"did you mean {' or '.join(close)}?" if close else f"valid names: {', '.join(CONV_LAYERS)}"
        raise LayerError(f"unknown layer {name!r}; {hint}")
    return name


def parse_style_layers(spec) -> tuple:
    """``"conv1_1:0.2,conv2_1"`` or ``[("conv1_1", 0.2), "conv2_1"]`` -> ``(("conv1_1", 0.2), ...)``.

    Layers without a weight share what the given weights leave of 1 equally
    (all of 1 when none is given): ``conv1_1,conv2_1`` gives 0.5 each.
    Given weights are used as they are (not renormalised).
    """
    items = [part for part in spec.split(",")] if isinstance(spec, str) else list(spec)
    if not items or all(str(item).strip() == "" for item in items):
        raise LayerError("no style layers given; e.g. conv1_1,conv2_1,conv3_1,conv4_1,conv5_1")
    pairs = []
    for item in items:
        if isinstance(item, str):
            name, _, weight = item.partition(":")
            weight = weight.strip() or None
        else:
            name, weight = item
        name = parse_layer(name)
        if weight is not None:
            try:
                weight = NON_NEGATIVE.check(f"weight of style layer {name}", weight)
            except ValueError as error:
                raise LayerError(str(error)) from None
        pairs.append([name, weight])
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise LayerError(f"style layer {repeated[0]} is listed twice")
    unset = [pair for pair in pairs if pair[1] is None]
    if unset:
        left = max(0.0, 1.0 - sum(w for _, w in pairs if w is not None))
        for pair in unset:
            pair[1] = left / len(unset)
    if sum(w for _, w in pairs) <= 0:
        raise LayerError("the style layer weights are all zero")
    return tuple((name, float(weight)) for name, weight in pairs)


def style_layers_spec(pairs) -> str:
    """``(("conv1_1", 0.2), ...)`` -> ``"conv1_1:0.2,..."`` (the command line's form)."""
    return ",".join(f"{name}:{weight:g}" for name, weight in pairs)


def normalise_blend_weights(weights, n_styles: int) -> tuple:
    """Blend weights for ``n_styles`` styles, scaled to sum to 1 (equal when None)."""
    if weights is None:
        return tuple([1.0 / n_styles] * n_styles)
    weights = [NUMBERS["style_blend_weights"].check("style blend weight", w) for w in weights]
    if len(weights) != n_styles:
        raise ValueError(f"got {len(weights)} style blend weights for {n_styles} style image(s); give one per style")
    largest = max(weights)
    if largest <= 0:
        raise ValueError("the style blend weights are all zero")
    weights = [w / largest for w in weights]  # in 0..1 first, so that 1e308 + 1e308 cannot overflow
    total = sum(weights)
    return tuple(w / total for w in weights)


# --------------------------------------------------------------------------
# Settings

@dataclass
class Settings:
    """Everything that decides the result (all JSON-serialisable but ``init`` given as an array)."""

    size: int = DEFAULT_SIZE
    optimizer: str = DEFAULT_OPTIMIZER
    iterations: object = None  # per scale: an int, or one int per scale coarse to fine; None: the default
    learning_rate: float = DEFAULT_LEARNING_RATE
    init: object = DEFAULT_INIT  # "content" | "noise" | "style" | uint8 [h, w, 3] array
    noise_ratio: float = DEFAULT_NOISE_RATIO
    seed: Optional[int] = None  # None: drawn at random and recorded in the result
    content_weight: float = DEFAULT_CONTENT_WEIGHT
    style_weight: float = DEFAULT_STYLE_WEIGHT
    tv_weight: object = DEFAULT_TV_WEIGHT  # per scale, like iterations: a number or one per scale
    distribution_weight: object = DEFAULT_DISTRIBUTION_WEIGHT  # per scale, like iterations: a number or one per scale
    content_layer: str = DEFAULT_CONTENT_LAYER
    style_layers: Sequence = DEFAULT_STYLE_LAYERS  # ((name, weight), ...) or "conv1_1:0.5,conv2_1"
    style_blend_weights: Optional[Sequence[float]] = None  # None: equal
    style_scale: float = DEFAULT_STYLE_SCALE
    pooling: str = DEFAULT_POOLING
    preserve_colors: bool = False
    multiscale: bool = DEFAULT_MULTISCALE
    min_size: int = DEFAULT_MIN_SIZE
    precision: str = DEFAULT_PRECISION  # "auto" | "fp32" | "bf16": the convolutions' number format (nst.host.precision)
    tile: Optional[int] = None  # None: tile only the scales that do not fit in memory; N: every scale over N px

    def resolved(self, n_styles: int) -> "Settings":
        """A checked copy with every choice made explicit (raises ValueError / LayerError).

        The default iterations are DEFAULT_SCHEDULE's; a run above PRINT_SIDE replaces them with
        :func:`default_schedule` of its sizes (:func:`nst.optimise.stylize.resolve`)."""
        s = dataclasses.replace(self)
        for name, allowed in (("optimizer", OPTIMIZERS), ("pooling", POOLINGS), ("precision", PRECISIONS)):
            if getattr(s, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(s, name)!r}")
        if s.precision == "auto":  # explicit fp32 / bf16 are honoured (front ends ask precision.choose first)
            from nst.host.precision import choose

            s.precision = choose("auto")[0]
        if s.iterations is None:
            s.iterations = (DEFAULT_SCHEDULE if s.multiscale else DEFAULT_ITERATIONS)[s.optimizer]
        s.iterations = check_iterations(s.iterations)
        s.distribution_weight = check_schedule("distribution_weight", s.distribution_weight)
        s.tv_weight = check_schedule("tv_weight", s.tv_weight)
        for name in ("size", "min_size", "learning_rate", "style_scale", "content_weight", "style_weight",
                     "noise_ratio"):
            NUMBERS[name].check(name, getattr(s, name))  # checked, kept as given
        if isinstance(s.init, str) and s.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)} or an image array, not {s.init!r}")
        s.content_layer = parse_layer(s.content_layer)
        s.style_layers = parse_style_layers(s.style_layers)
        s.style_blend_weights = normalise_blend_weights(s.style_blend_weights, n_styles)
        if s.seed is None:
            s.seed = int(np.random.SeedSequence().entropy % (2 ** 31))
        NUMBERS["seed"].check("seed", s.seed)
        if s.tile is not None:
            NUMBERS["tile"].check("tile", s.tile)
        return s

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        if not isinstance(self.init, str):
            data["init"] = "array"
        data["style_layers"] = [list(pair) for pair in self.style_layers] if not isinstance(
            self.style_layers, str) else self.style_layers
        return data


# --------------------------------------------------------------------------
# The command line's view of each field (nst.commands.options builds the parser from it)

@dataclass(frozen=True)
class Option:
    """One Settings field as a command-line option ``--field-name`` in help group ``group``."""

    field: str
    group: str  # "size" | "style" | "optimisation"
    help: str  # argparse help; %(default)s is the default below
    default: object = "settings"  # "settings": the Settings field's default
    choices: Optional[tuple] = None
    metavar: Optional[str] = None
    many: bool = False  # one or more values (nargs="+")
    # The command line's own lower bound where it is looser than the engine's (--method fast takes
    # any size, 0 for the image's own; the optimisation's minimum is checked by Settings.resolved).
    cli_minimum: Optional[int] = None

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    def default_value(self):
        if isinstance(self.default, str) and self.default == "settings":
            return {f.name: f.default for f in dataclasses.fields(Settings)}[self.field]
        return self.default


def _schedule_text(optimizer: str) -> str:
    return ",".join(map(str, DEFAULT_SCHEDULE[optimizer]))


OPTIONS = (
    Option("size", "size", "long side of the result in pixels; aspect ratio kept; 0 keeps the content's own size "
           f"(--method fast only; the optimisation needs at least {MIN_SIDE}) (default: %(default)s)",
           cli_minimum=0),
    Option("style_scale", "size", "style images are resized to a long side of SIZE x this: smaller gives finer "
           "brush strokes, larger bigger ones (default: %(default)s)"),
    Option("tile", "size", "optimise every scale whose long side exceeds N in tiles with cores of about N px "
           "(the same picture up to rounding, in less memory, in more time) (default: only the scales that do not "
           "fit in memory, with tiles as large as half the memory free allows)", metavar="N"),
    Option("multiscale", "size", "coarse to fine: start at the smallest of SIZE/2, SIZE/4, ... that is >= "
           "--min-size, upsample each result as the next start; --iterations per scale (default: %(default)s)"),
    Option("min_size", "size", "smallest long side of --multiscale (default: %(default)s)"),
    Option("style_blend_weights", "style", "one weight per style image, normalised to sum 1 (default: equal)",
           metavar="W", many=True),
    Option("content_weight", "style", "weight of the content cost (default: %(default)s)"),
    Option("style_weight", "style", "the strength of the style against the content (weight 10): the default "
           "paints the photo over; halve it to keep more of the photo, double it for more of the painting; "
           "the course's 40 leaves a textured photo (default: %(default)s)"),
    Option("tv_weight", "style", "weight of the total-variation cost (mean squared difference of neighbouring "
           "pixels, 0..255 units), one number for every scale or one per scale from coarse to fine like "
           "--iterations: smooths noise; on the 512 px sample the raw TV is about 5000, so 1e-5 adds "
           "about 0.05 to a total near 1.6 (default: %(default)s)", metavar="W[,W...]"),
    Option("distribution_weight", "style", "weight of a sliced-Wasserstein term on "
           f"{' and '.join(DISTRIBUTION_LAYERS)}, one number for every scale or one per scale from coarse to fine "
           "like --iterations: matches the whole distribution of their features, not only their Gram matrices, "
           "which keeps some paintings from leaving a lattice of specks in a flat sky; 0 turns it off, 40,40,0 "
           "keeps it off the last scale for about 10%% less time (default: %(default)s)", metavar="W[,W...]"),
    Option("content_layer", "style", "VGG-19 layer for the content cost (default: %(default)s)"),
    Option("style_layers", "style", "style layers with optional weights; unweighted layers share what is left "
           "of 1 equally; reluX_Y is accepted for convX_Y (default: %(default)s)",
           default=style_layers_spec(DEFAULT_STYLE_LAYERS), metavar="LAYER[:W],..."),
    Option("pooling", "style", "VGG pooling: avg gives smoother results (Gatys et al.) (default: %(default)s)",
           choices=POOLINGS),
    Option("preserve_colors", "style", "luminance-only transfer: keep the content's colours (Gatys et al. 2016)"),
    Option("optimizer", "optimisation", "lbfgs: L-BFGS (float32) inside the pixel range, lowest cost after many "
           "iterations; adam: cheaper iterations and less memory, about 1.4x the time to a given cost at 400x300 "
           "(default: %(default)s)", choices=OPTIMIZERS),
    Option("iterations", "optimisation", "iterations at each scale: one number for every scale, or one per scale "
           "from coarse to fine with --multiscale, e.g. 100,40,10 (where iterations are cheap) "
           f"(default: {_schedule_text('lbfgs')} with lbfgs, {_schedule_text('adam')} with adam; "
           f"{DEFAULT_ITERATIONS['lbfgs']} and {DEFAULT_ITERATIONS['adam']} with --no-multiscale)",
           metavar="N[,N...]"),
    Option("learning_rate", "optimisation",
           f"Adam step in pixel units 0..255 (default: {DEFAULT_LEARNING_RATE:g}; lbfgs has none)", default=None),
    Option("init", "optimisation", "starting image: the content, the course's noisy content, the style, the fast "
           "mode's result, or an image file (default: %(default)s)", metavar="{" + ",".join(INITS) + "} or PATH"),
    Option("noise_ratio", "optimisation", "share of U(-20,20) noise in --init noise; 1 is pure noise "
           "(default: %(default)s)"),
    Option("seed", "optimisation", "random seed (noise init); the same seed repeats a run bit for bit "
           "(default: drawn at random and recorded in OUT.json)"),
    Option("precision", "optimisation", "number format of the convolutions: auto takes bf16 where the CPU has "
           "bfloat16 units (amx_bf16, avx512_bf16), fp32 elsewhere; bf16 on a CPU without them runs fp32 and says "
           "so; costs, Grams and the image stay float32 (default: %(default)s)", choices=PRECISIONS),
)
