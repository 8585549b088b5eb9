"""The reusable engine (nst.optimise.stylize.Stylizer): graphs kept across calls give exactly what fresh
one-call stylize() runs give, and the temporal cost pulls the result towards its image where the
mask is 1 only.  Most tests use the tiny random VGG-19 of tests/tiny_vgg.py; one the real weights."""

import numpy as np
import pytest

from nst.optimise import stylize as st
from nst.optimise.stylize import Settings, Stylizer, Temporal
from test_stylize import tiny_weights  # noqa: F401 (the tiny network, a fixture)


@pytest.fixture(scope="module")
def pictures():
    """Two different 48x36 contents and a striped style."""
    y, x = np.mgrid[0:36, 0:48]
    first = np.stack([60 + 2 * x, 70 + 3 * y, 150 - x - y], axis=-1).astype(np.uint8)
    second = np.stack([200 - 2 * x, 40 + 2 * y, 90 + x], axis=-1).astype(np.uint8)
    stripes = np.zeros((40, 40, 3), dtype=np.uint8)
    stripes[::4] = (220, 40, 30)
    stripes[1::4] = (30, 40, 220)
    stripes[2::4] = (240, 230, 30)
    return first, second, stripes


def costs_of(result):
    return [tuple(row[2:]) for row in result.history]  # every row but its step and time


@pytest.mark.parametrize("optimizer, multiscale", [("adam", False), ("lbfgs", False), ("lbfgs", True)])
def test_a_kept_stylizer_repeats_fresh_runs_exactly(tiny_weights, pictures, optimizer, multiscale):
    first, second, stripes = pictures
    settings = Settings(size=48, optimizer=optimizer, iterations=4, seed=0, multiscale=multiscale, min_size=24,
                        learning_rate=10.0 if optimizer == "adam" else Settings.learning_rate)
    fresh = [st.stylize(content, [stripes], settings, weights=tiny_weights) for content in (first, second, first)]
    with Stylizer(settings, weights=tiny_weights) as stylizer:
        kept = [stylizer.run(content, [stripes]) for content in (first, second, first)]
        problems = dict(stylizer._problems)
        assert len(problems) == len(kept[0].sizes)  # one graph per size, built once for the three calls
    for a, b in zip(fresh, kept):
        assert costs_of(a) == costs_of(b) and a.costs == b.costs
        np.testing.assert_array_equal(a.image, b.image)
    assert costs_of(kept[0]) == costs_of(kept[2]) and costs_of(kept[0]) != costs_of(kept[1])


def test_init_array_overrides_the_settings(tiny_weights, pictures):
    first, second, stripes = pictures
    with Stylizer(Settings(size=48, optimizer="adam", iterations=1, seed=0), weights=tiny_weights) as stylizer:
        starts = []
        stylizer.run(first, [stripes], init=second, callback=lambda p: starts.append(p.image()) if p.step == 0 else 0)
        stylizer.run(first, [stripes], callback=lambda p: starts.append(p.image()) if p.step == 0 else 0)
    np.testing.assert_array_equal(starts[0], second)
    np.testing.assert_array_equal(starts[1], first)


def _temporal_runs(tiny_weights, pictures, weight, optimizer="adam"):
    first, second, stripes = pictures
    mask = np.zeros((36, 48), np.float32)
    mask[:, :24] = 1.0  # the left half only
    previous = second.astype(np.float32)
    settings = Settings(size=48, optimizer=optimizer, iterations=12, seed=0, multiscale=False, style_weight=1e-3,
                        distribution_weight=0)  # the measured ratios below are without the distribution term
    with Stylizer(settings, weights=tiny_weights) as stylizer:
        plain = stylizer.run(first, [stripes])
        pulled = stylizer.run(first, [stripes], temporal=Temporal(previous, mask, weight))
    return plain, pulled, previous, mask


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_temporal_pulls_towards_the_image_where_the_mask_is_one(tiny_weights, pictures, optimizer):
    plain, pulled, previous, mask = _temporal_runs(tiny_weights, pictures, 1.0, optimizer)
    distance = lambda result, part: np.abs(result.image[:, part].astype(float) - previous[:, part]).mean()  # noqa
    left, right = slice(0, 24), slice(24, 48)
    kept_left = distance(pulled, left) / distance(plain, left)
    kept_right = distance(pulled, right) / distance(plain, right)
    # Measured (tiny network, 12 iterations): Adam 0.20 left, 1.11 right; L-BFGS 0.08 left, 0.75 right.
    assert kept_left < 0.3  # pulled most of the way where the mask is 1...
    assert kept_left < 0.35 * kept_right  # ...and far less where it is 0 (moved only through the network)
    assert "temporal" not in plain.costs
    expected = np.sum(mask[..., None] * (pulled.image - previous) ** 2) / pulled.image.size
    assert pulled.costs["temporal"] == pytest.approx(expected, rel=0.05)  # the image is rounded to uint8


def test_temporal_weight_zero_changes_nothing(tiny_weights, pictures):
    plain, pulled, _, _ = _temporal_runs(tiny_weights, pictures, 0.0)
    np.testing.assert_array_equal(plain.image, pulled.image)
    assert pulled.costs["total"] == pytest.approx(plain.costs["total"], rel=1e-6)


def test_temporal_must_match_the_result_size(tiny_weights, pictures):
    first, _, stripes = pictures
    with Stylizer(Settings(size=48, iterations=1, seed=0), weights=tiny_weights) as stylizer:
        with pytest.raises(ValueError, match="result's size"):
            stylizer.run(first, [stripes], temporal=Temporal(np.zeros((10, 10, 3)), np.zeros((10, 10)), 1.0))


def test_real_weights_kept_stylizer_equals_fresh_calls(weights_path, sample_pair):
    from nst.io import images

    weights = st.get_weights(weights_path)
    content, style = (images.read_rgb(path) for path in sample_pair)
    settings = Settings(size=64, iterations=5, seed=3, multiscale=False)
    fresh = [st.stylize(content, [style], settings, weights=weights) for _ in range(2)]
    with Stylizer(settings, weights=weights) as stylizer:
        kept = [stylizer.run(content, [style]) for _ in range(2)]
    for a, b in zip(fresh, kept):
        assert costs_of(a) == costs_of(b) and a.costs == b.costs
