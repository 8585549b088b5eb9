"""L-BFGS in float32 inside a box, for the engine's pixel optimisation.

Why not SciPy's L-BFGS-B: it works in float64 only. At 1024x768 (n = 2.4 M
pixel values) its workspace ((2m + 5) n doubles) and the float64 copies of the
image and gradient at every evaluation came to about 0.7 GB, more than the
whole float32 history kept here (2 m n floats, 189 MB for m = 10).

The method is the textbook one (Nocedal and Wright, *Numerical Optimization*,
2nd ed., 2006, Algorithms 7.4 and 7.5) with the box handled by projection, as
in projected quasi-Newton methods (Bertsekas 1982; Kim, Sra and Dhillon 2010):

- variables held at a bound by the gradient ("active") are left out of the
  direction, which the two-loop recursion computes for the others;
- each trial point is clipped into the box;
- a weak Wolfe line search grows or shrinks the step from 1 (to the course's
  cost at 400x300: 54 evaluations for 49 iterations); the Wolfe curvature
  condition makes s.y > 0, and a pair enters the history only then, which
  keeps the implicit inverse Hessian positive definite.

The very first step has no curvature to scale it, so its trial length moves
the largest pixel by ``first_step`` units, whatever the cost's scale, and the
line search doubles it from there.
"""

from __future__ import annotations

from typing import Callable, Iterator, Tuple

import numpy as np

ARMIJO = 1e-4  # sufficient-decrease constant c1 (Nocedal and Wright's suggestion)
CURVATURE = 0.9  # curvature constant c2 of the weak Wolfe condition (theirs for quasi-Newton)
MAX_TRIALS = 20  # evaluations per line search before it settles for the best point seen
FIRST_STEP = 1.0  # largest change of any variable in the first trial step, in units of x


class History:
    """The m most recent pairs (s, y) as float32 rows of two [m, n] arrays, oldest overwritten."""

    def __init__(self, size: int, n: int):
        self.s = np.empty((size, n), np.float32)  # s_k = x_{k+1} - x_k
        self.y = np.empty((size, n), np.float32)  # y_k = g_{k+1} - g_k
        self.rho = np.zeros(size)  # 1 / (s_k . y_k), float64
        self.order = []  # row indices, oldest first

    def add(self, s: np.ndarray, y: np.ndarray, sy: float) -> None:
        row = self.order.pop(0) if len(self.order) == len(self.rho) else len(self.order)
        self.s[row], self.y[row], self.rho[row] = s, y, 1.0 / sy
        self.order.append(row)

    def clear(self) -> None:
        self.order = []

    def direction(self, gradient: np.ndarray) -> np.ndarray:
        """-H g by the two-loop recursion (Nocedal and Wright, Algorithm 7.4); float32 [n]."""
        q = gradient.copy()
        alphas = {}
        for row in reversed(self.order):
            alphas[row] = self.rho[row] * _dot(self.s[row], q)
            q -= np.float32(alphas[row]) * self.y[row]
        newest = self.order[-1]
        # H0 = gamma I with gamma = s.y / y.y, the usual scaling (their eq. 7.20).
        q *= np.float32(1.0 / (self.rho[newest] * _dot(self.y[newest], self.y[newest])))
        for row in self.order:
            beta = self.rho[row] * _dot(self.y[row], q)
            q += np.float32(alphas[row] - beta) * self.s[row]
        return np.negative(q, out=q)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def _line_search(evaluate, x, cost, gradient, direction, lower, upper):
    """A point along the projected ray x + t d meeting the weak Wolfe conditions, or None.

    Bracketing on t from 1 (after Lewis and Overton 2013, Algorithm 4.6):
    Armijo failing shrinks the bracket from above, and the next trial is
    interpolated inside it; the slope still steeply negative (curvature
    condition failing) moves it up, doubling while there is no upper end,
    which is what lets the unscaled first step grow.  The slopes are taken
    along the actual (clipped) step.  If the trials run out, the lowest point
    with sufficient decrease is used.
    """
    low, high, step = 0.0, np.inf, 1.0
    low_cost, low_slope = cost, _dot(gradient, direction)  # slope: d(cost)/d(step) at ``low``
    fallback = None
    for _ in range(MAX_TRIALS):
        trial = np.clip(x + np.float32(step) * direction, lower, upper)
        trial_cost, trial_gradient, trial_details = evaluate(trial)
        moved = trial - x
        slope_moved = _dot(gradient, moved)  # first-order change of the cost along the actual step
        if not trial_cost <= cost + ARMIJO * slope_moved:
            high, high_cost = step, trial_cost
        elif _dot(trial_gradient, moved) < CURVATURE * slope_moved:
            low, low_cost, low_slope = step, trial_cost, _dot(trial_gradient, direction)
            if fallback is None or trial_cost < fallback[1]:
                fallback = (trial, trial_cost, trial_gradient, trial_details)
        else:
            return trial, trial_cost, trial_gradient, trial_details
        step = 2 * step if high == np.inf else _shrink(low, low_cost, low_slope, high, high_cost)
    return fallback


def _shrink(low, low_cost, low_slope, high, high_cost):
    """Next step inside [low, high]: the minimiser of the quadratic through the cost and slope at
    ``low`` and the cost at ``high``, kept within 10%..50% of the bracket (plain bisection would
    need several halvings when a step overshoots by far, as the second one often does)."""
    width = high - low
    curvature = high_cost - low_cost - low_slope * width  # > 0 when high_cost is finite and too high
    # q(low + u) = low_cost + low_slope u + curvature (u / width)^2, minimal at u = fraction * width
    fraction = -low_slope * width / (2 * curvature) if np.isfinite(curvature) and curvature > 0 else 0.5
    return low + width * min(0.5, max(0.1, fraction))


def minimize(evaluate: Callable[[np.ndarray], Tuple[float, np.ndarray, object]], x0: np.ndarray, lower: float,
             upper: float, history: int, first_step: float = FIRST_STEP) -> Iterator[Tuple[int, np.ndarray, float, object]]:
    """Minimise ``evaluate`` over lower <= x <= upper; yields (iteration, x, cost, details) from 0.

    ``evaluate(x)`` takes a float32 [n] array and returns (cost, gradient
    float32 [n], details); ``details`` (anything, such as the cost's terms)
    comes back with the accepted point.  The caller stops by leaving the
    loop; the generator ends by itself only at a point where no variable can
    move downhill, or when the line search finds no decrease (the cost is
    flat to float32 precision).
    """
    x = np.clip(np.asarray(x0, np.float32).reshape(-1), lower, upper)
    cost, gradient, details = evaluate(x)
    yield 0, x, cost, details
    pairs = History(history, x.size)
    iteration = 0
    while True:
        # Active: at a bound with the gradient pushing outwards; they stay where they are.
        active = ((x <= lower) & (gradient > 0)) | ((x >= upper) & (gradient < 0))
        free_gradient = np.where(active, np.float32(0), gradient)
        if not free_gradient.any():
            return
        if pairs.order:
            direction = pairs.direction(free_gradient)
            direction[active] = 0
            if _dot(direction, free_gradient) >= 0:  # not downhill (float32 round-off): start afresh
                pairs.clear()
        if not pairs.order:
            direction = -free_gradient * np.float32(first_step / np.abs(free_gradient).max())
        found = _line_search(evaluate, x, cost, gradient, direction, lower, upper)
        if found is None:
            return
        trial, trial_cost, trial_gradient, details = found
        s = trial - x
        y = trial_gradient - gradient
        sy = _dot(s, y)
        if sy > 0:
            pairs.add(s, y, sy)
        x, cost, gradient = trial, trial_cost, trial_gradient
        iteration += 1
        yield iteration, x, cost, details
