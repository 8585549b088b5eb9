"""The optimisers of the pixels, in one table, and the bookkeeping of a run.

:data:`OPTIMIZER_TABLE` maps each name in :data:`nst.optimise.settings.OPTIMIZERS` to an
:class:`Optimizer`: ``build(problem, settings)`` adds its ops to a
:class:`nst.optimise.graphs.Problem`'s graph (None if it needs none) and
``run(problem, start, tracker)`` steps from ``start``, reporting every
iterate to the :class:`Tracker`.  A new optimiser is one more entry here
(plus its name and default iterations in :mod:`nst.optimise.settings`).

A :class:`Run` holds one call's state across its scales (settings, sizes,
clock, history, how it ended); a :class:`Tracker` keeps a scale's best image
and sends :class:`Progress` events to the caller's callback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Optional

import numpy as np

from nst.optimise.settings import LBFGS_FIRST_STEP, LBFGS_HISTORY, PIXEL_MAX, PIXEL_MIN, Settings, scale_iterations


class Stop(Exception):
    """Raise from a callback to end the optimisation early; the best image so far is returned."""


class HistoryRow(NamedTuple):
    """One event of a run: the costs of the image after ``step`` steps (over all scales)."""

    step: int
    elapsed: float  # seconds since the run started
    total: float  # weighted sum
    content: float  # unweighted costs
    style: float
    tv: float
    distribution: float = 0.0  # the sliced-Wasserstein term (0 at a scale where it is off)

    def record(self) -> dict:
        """The row as the JSON records write it."""
        return {"step": int(self.step), "elapsed_s": round(self.elapsed, 3), "total": self.total,
                "content": self.content, "style": self.style, "tv": self.tv, "distribution": self.distribution}


@dataclass
class Progress:
    """One event per optimisation step: the state *after* ``iteration`` steps at this scale.

    ``costs`` are those of exactly that image: ``total`` (weighted sum) and the
    unweighted ``content``, ``style``, ``tv`` (and ``temporal`` when given).  ``image()``
    returns it as ``uint8 [h, w, 3]`` (colours recombined under ``preserve_colors``);
    call it only when needed, it costs a copy.
    """

    step: int  # steps done over all scales
    total_steps: int
    iteration: int  # steps done at this scale (0: the starting image)
    iterations: int
    scale: int  # 0-based index into sizes
    sizes: list  # [(h, w), ...] coarse to fine
    costs: dict
    elapsed: float  # seconds since the run started
    best: bool  # lowest total cost so far at this scale
    tile: Optional[int] = None  # this scale's tiles' core side (nst.optimise.tiled), None when it runs whole
    _pixels: np.ndarray = field(repr=False, default=None)
    _finish: Callable = field(repr=False, default=None)

    def image(self) -> np.ndarray:
        return self._finish(self._pixels)


@dataclass
class Run:
    """One call of the engine: what it runs and how far it got, shared by its scales."""

    settings: Settings  # resolved
    sizes: list  # [(h, w), ...] coarse to fine
    callback: Optional[Callable] = None
    started: float = field(default_factory=time.perf_counter)
    history: list = field(default_factory=list)  # [HistoryRow, ...]
    status: str = "done"  # "done" | "interrupted" | "stopped" | "nonfinite"
    message: str = ""
    steps: int = 0  # optimisation steps done over all scales
    tiles: Optional[list] = None  # per scale: the tiles' core side, None for a whole scale

    def __post_init__(self):
        self.per_scale = scale_iterations(self.settings.iterations, len(self.sizes))  # iterations at each scale
        self.total_steps = sum(self.per_scale)

    def end(self, status: str, message: str) -> None:
        self.status, self.message = status, message


class NonFinite(Exception):
    pass


def finite(costs: dict) -> bool:
    return all(np.isfinite(v) for v in costs.values())


class Tracker:
    """Keeps the lowest-cost image of one scale and emits progress events."""

    def __init__(self, run: Run, scale: int, finish: Callable):
        self.run, self.scale, self.finish = run, scale, finish
        self.best = {"pixels": None, "costs": None, "iteration": -1, "finish": finish}
        self.iterations, self.offset = run.per_scale[scale], sum(run.per_scale[:scale])  # here; steps before

    def _nonfinite_message(self, iteration: int, costs: dict) -> str:
        """Name the cost that is NaN or infinite: the total can still be finite (a huge style cost
        times a zero weight), and quoting a finite total as the culprit misleads."""
        name = next(key for key in sorted(costs, key=lambda key: key != "total") if not np.isfinite(costs[key]))
        what = "the cost" if name == "total" else f"the {name} cost"
        where = f"iteration {iteration}" + (f" of scale {self.scale + 1}" if len(self.run.sizes) > 1 else "")
        kept = (f"kept the best image (iteration {self.best['iteration']})" if self.best["pixels"] is not None
                else "no finite image to keep")
        return f"{what} became {costs[name]} at {where}; {kept}; lower the weights or the learning rate"

    def report(self, iteration: int, costs: dict, pixels: np.ndarray) -> None:
        """Record the image after ``iteration`` steps at this scale (raises NonFinite)."""
        if not finite(costs):
            raise NonFinite(self._nonfinite_message(iteration, costs))
        is_best = self.best["costs"] is None or costs["total"] < self.best["costs"]["total"]
        if is_best:
            self.best.update(pixels=np.array(pixels, dtype=np.float32), costs=dict(costs), iteration=iteration)
        run = self.run
        elapsed = time.perf_counter() - run.started
        step = self.offset + iteration
        run.history.append(HistoryRow(step, elapsed, costs["total"], costs["content"], costs["style"], costs["tv"],
                                      costs.get("distribution", 0.0)))
        if iteration > 0:
            run.steps = step
        if run.callback is not None:
            run.callback(Progress(step=step, total_steps=run.total_steps, iteration=iteration,
                                  iterations=self.iterations, scale=self.scale, sizes=run.sizes,
                                  costs=dict(costs), elapsed=elapsed, best=is_best,
                                  tile=run.tiles[self.scale] if run.tiles else None,
                                  _pixels=pixels, _finish=self.finish))


def optimise(problem, start: np.ndarray, tracker: Tracker) -> dict:
    """Run the settings' optimiser on ``problem`` from ``start``; Ctrl-C, :class:`Stop` and
    non-finite costs end the run with a status.  Returns the scale's best (pixels, costs, iteration)."""
    run = tracker.run
    try:
        OPTIMIZER_TABLE[run.settings.optimizer].run(problem, start, tracker)
    except KeyboardInterrupt:
        run.end("interrupted", "interrupted (Ctrl-C); kept the best image so far")
    except Stop as stop:
        run.end("stopped", str(stop) or "stopped by the callback; kept the best image so far")
    except NonFinite as error:
        run.end("nonfinite", str(error))
    return tracker.best


# --------------------------------------------------------------------------
# The optimisers

def build_adam(problem, settings: Settings):
    """Adam's step on the pixel variable, then a projection back into the pixel range."""
    import tensorflow as tf

    optimizer = tf.compat.v1.train.AdamOptimizer(settings.learning_rate)
    apply = optimizer.apply_gradients([(problem.gradient, problem.variable)])
    with tf.control_dependencies([apply]):
        return problem.variable.assign(tf.clip_by_value(problem.variable, PIXEL_MIN, PIXEL_MAX)).op


def run_adam(problem, start: np.ndarray, tracker: Tracker) -> None:
    """Adam (Kingma and Ba 2015) on the pixels, projected onto 0..255 after each step.

    Each run fetches the pre-step costs and pixels with the train op (the
    forward pass computes them anyway), so the event for iteration i is sent
    while step i+1 runs; one extra forward pass gives the last image's costs.
    """
    if problem.train is None:  # a TiledProblem: no graph of the whole picture to hold Adam's state
        return _run_adam_in_numpy(problem, start, tracker)
    session = problem.session
    for i in range(tracker.iterations):
        _, costs, pixels = session.run([problem.train, problem.costs, problem.pixels])
        tracker.report(i, {k: float(v) for k, v in costs.items()}, pixels[0])
    costs, pixels = session.run([problem.costs, problem.pixels])
    tracker.report(tracker.iterations, {k: float(v) for k, v in costs.items()}, pixels[0])


ADAM_BETAS, ADAM_EPSILON = (0.9, 0.999), 1e-8  # tf.compat.v1.train.AdamOptimizer's defaults


def _run_adam_in_numpy(problem, start: np.ndarray, tracker: Tracker) -> None:
    """The same steps as :func:`build_adam`'s (TF 1's Adam: bias correction folded into the step
    size, epsilon added after the square root), from ``problem.evaluate``'s gradient."""
    (beta1, beta2), rate = ADAM_BETAS, tracker.run.settings.learning_rate
    x = np.array(start, dtype=np.float32)  # [h, w, 3]
    m, v = np.zeros_like(x), np.zeros_like(x)
    for i in range(tracker.iterations + 1):
        costs, gradient = problem.evaluate(x)
        tracker.report(i, costs, x)
        if i == tracker.iterations:
            break
        m = beta1 * m + (1 - beta1) * gradient
        v = beta2 * v + (1 - beta2) * np.square(gradient)
        step = rate * np.sqrt(1 - beta2 ** (i + 1)) / (1 - beta1 ** (i + 1))
        x = np.clip(x - np.float32(step) * m / (np.sqrt(v) + np.float32(ADAM_EPSILON)), PIXEL_MIN, PIXEL_MAX)


def run_lbfgs(problem, start: np.ndarray, tracker: Tracker) -> None:
    """L-BFGS on the pixels inside the box 0..255 (float32; :mod:`nst.optimise.lbfgs`).

    Each evaluation runs the graph once for the cost and its gradient; one
    event per L-BFGS iteration, with the costs of the accepted point.
    """
    from nst.optimise import lbfgs

    shape = start.shape
    last = {"iteration": -1}

    def evaluate(x):  # x: float32 [h * w * 3]
        costs, gradient = problem.evaluate(x.reshape(shape))
        if not finite(costs):
            tracker.report(last["iteration"] + 1, costs, x.reshape(shape))  # raises NonFinite
        return costs["total"], gradient.reshape(-1), costs

    steps = lbfgs.minimize(evaluate, start, PIXEL_MIN, PIXEL_MAX, history=LBFGS_HISTORY, first_step=LBFGS_FIRST_STEP)
    for iteration, x, _, costs in steps:
        last["iteration"] = iteration
        tracker.report(iteration, costs, x.reshape(shape))
        if iteration == tracker.iterations:
            break


@dataclass(frozen=True)
class Optimizer:
    run: Callable  # (problem, start [h, w, 3], tracker) -> None
    build: Optional[Callable] = None  # (problem, settings) -> train op, called inside the problem's graph


OPTIMIZER_TABLE = {"adam": Optimizer(run=run_adam, build=build_adam), "lbfgs": Optimizer(run=run_lbfgs)}
