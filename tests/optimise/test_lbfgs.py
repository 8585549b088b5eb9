"""The float32 box-constrained L-BFGS (nst/optimise/lbfgs.py) on problems with known minimisers."""

import numpy as np
import pytest

from nst.optimise import lbfgs


def run(evaluate, x0, lower, upper, iterations, history=10):
    steps = list(zip(range(iterations + 1), lbfgs.minimize(evaluate, x0, lower, upper, history)))
    return [step for _, step in steps]


def quadratic(curvature, centre):
    """0.5 sum a_i (x_i - c_i)^2: minimiser over a box is clip(c)."""
    curvature, centre = np.asarray(curvature, np.float64), np.asarray(centre, np.float64)

    def evaluate(x):  # in float64, so that the cost's round-off does not stop the line search early
        residual = x.astype(np.float64) - centre
        return float(0.5 * np.sum(curvature * residual**2)), (curvature * residual).astype(np.float32), None

    return evaluate


def test_ill_conditioned_quadratic_reaches_the_clipped_centre():
    rng = np.random.default_rng(0)
    n = 500
    curvature = np.logspace(0, 3, n)  # condition number 1000: plain gradient descent would crawl
    centre = rng.uniform(-50, 300, n)  # about a sixth of the minimiser lies outside 0..255
    steps = run(quadratic(curvature, centre), np.full(n, 128.0), 0.0, 255.0, iterations=300)
    x = steps[-1][1]
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, np.clip(centre, 0, 255), atol=0.05)
    assert (x == 0).sum() == (centre < 0).sum() and (x == 255).sum() == (centre > 255).sum()


def test_every_iterate_stays_in_the_box_and_the_cost_never_rises():
    rng = np.random.default_rng(1)
    centre = rng.uniform(-100, 400, 300)
    steps = run(quadratic(np.ones(300), centre), rng.uniform(0, 255, 300), 0.0, 255.0, iterations=30)
    costs = [cost for _, _, cost, _ in steps]
    assert all(later <= earlier for earlier, later in zip(costs, costs[1:]))
    for _, x, _, _ in steps:
        assert x.min() >= 0 and x.max() <= 255


def test_rosenbrock_converges_to_its_minimum():
    def rosenbrock(x):
        x64 = x.astype(np.float64)
        a, b = x64[0], x64[1]
        cost = (1 - a) ** 2 + 100 * (b - a * a) ** 2
        gradient = np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)], np.float32)
        return float(cost), gradient, None

    steps = run(rosenbrock, np.array([-1.2, 1.0]), -10.0, 10.0, iterations=200)
    np.testing.assert_allclose(steps[-1][1], [1.0, 1.0], atol=2e-3)
    assert len(steps) < 200  # it stops by itself once no decrease is possible


def test_a_stationary_start_ends_at_once():
    evaluate = quadratic(np.ones(4), [1.0, 2.0, 3.0, 4.0])
    steps = run(evaluate, np.array([1.0, 2.0, 3.0, 4.0]), 0.0, 255.0, iterations=10)
    assert len(steps) == 1 and steps[0][2] == 0.0


def test_variables_pushed_against_a_bound_stay_there():
    # Minimiser at -5 for every variable: from anywhere, all end on the lower bound 0.
    steps = run(quadratic(np.ones(10), np.full(10, -5.0)), np.linspace(0, 200, 10), 0.0, 255.0, iterations=20)
    np.testing.assert_array_equal(steps[-1][1], np.zeros(10, np.float32))


def test_history_keeps_only_the_newest_pairs():
    history = lbfgs.History(size=2, n=3)
    for k in range(1, 4):
        history.add(np.full(3, k, np.float32), np.full(3, 2 * k, np.float32), sy=6.0 * k * k)
    kept = sorted(float(history.s[row][0]) for row in history.order)
    assert kept == [2.0, 3.0]


def test_the_unscaled_first_step_grows_to_a_useful_length():
    # The first trial moves the largest variable by 1 unit; the minimiser is 150 units away.
    # The line search must double its way there instead of crawling one unit per iteration.
    evaluate = quadratic(np.ones(50), np.full(50, 150.0))
    steps = run(evaluate, np.zeros(50), 0.0, 255.0, iterations=3)
    assert steps[1][2] < 0.9 * steps[0][2]  # one unit would leave (149/150)^2 = 0.987 of the cost
    assert steps[-1][2] < 1e-3 * steps[0][2]  # and the curvature it learnt takes it to the minimum


def test_an_overshooting_step_shrinks_to_the_interpolated_minimiser():
    # q(u) = -4u + 8u^2 through cost 0, slope -4 at 0 and cost 4 at 1: minimal at u = 0.25.
    assert lbfgs._shrink(0.0, 0.0, -4.0, 1.0, 4.0) == pytest.approx(0.25)
    assert lbfgs._shrink(2.0, 0.0, -4.0, 4.0, 8.0) == pytest.approx(2.5)  # same, in a bracket of width 2
    assert lbfgs._shrink(0.0, 10.0, -2.0, 1.0, 1e6) == pytest.approx(0.1)  # far overshoot: at least 10%
    assert lbfgs._shrink(0.0, 0.0, -4.0, 1.0, float("inf")) == 0.5  # nothing to interpolate: bisect
