"""The optimisation in tiles (nst.optimise.tiling, nst.optimise.tiled): where tiles lie, and that the
tiled cost and gradient are the whole picture's.  Precision pinned to fp32: the comparison is of two
ways to compute one float32 function (bf16's rounding would differ with the tile's shape)."""

import dataclasses

import numpy as np
import pytest

from nst.optimise import stylize as st
from nst.optimise import tiled, tiling
from nst.optimise.graphs import FeatureGraph, Problem
from nst.optimise.settings import Settings, default_schedule, per_scale
from test_stylize import tiny_weights  # noqa: F401 (the tiny network, a fixture)


# ------------------------------------------------------------------ geometry

@pytest.mark.parametrize("height, width, side", [(240, 320, 96), (97, 131, 32), (3072, 4096, 896), (64, 64, 512)])
def test_cores_cover_the_picture_once_on_the_pooling_grid(height, width, side):
    tiles = tiling.plan(height, width, side, "conv5_1")
    owner = np.zeros((height, width), int)
    for tile in tiles:
        top, bottom, left, right = tile.core
        owner[top:bottom, left:right] += 1
        assert top % 16 == 0 and left % 16 == 0 and tile.outer[0] % 16 == 0 and tile.outer[2] % 16 == 0
        o_top, o_bottom, o_left, o_right = tile.outer
        assert o_top == max(0, top - 80) and o_bottom == min(height, bottom + 80)
        assert o_left == max(0, left - 80) and o_right == min(width, right + 80)
    assert (owner == 1).all()


def test_the_margin_covers_what_a_conv5_1_feature_sees(tiny_weights):
    """Measured on the network: one pixel changed moves conv5_1 features whose 16 px cells lie at most the
    receptive radius away, and the radius is not loose: the farthest moved lies within one cell of it."""
    import tensorflow as tf

    from nst.optimise.vgg import build_vgg19

    side, centre = 320, 160
    image = np.random.default_rng(0).uniform(0, 255, (2, side, side, 3)).astype(np.float32)
    image[1] = image[0]
    image[1, centre, centre] += 50.0
    graph = tf.Graph()
    with graph.as_default():
        net = build_vgg19(tiny_weights, tf.constant(image), last_layer="conv5_1")
        with tf.compat.v1.Session(graph=graph) as session:
            features = session.run(net["conv5_1"])  # [2, 20, 20, n_C]
    moved = np.argwhere(np.abs(features[0] - features[1]).max(axis=-1) > 0)  # feature rows, columns
    # A feature at position p covers pixels 16p .. 16p + 15; its distance to the changed pixel:
    reach = max(max(abs(16 * p + 15 * (16 * p < centre) - centre) for p in point) for point in moved)
    radius = tiling.receptive_radius("conv5_1")
    assert radius - 16 < reach <= radius <= tiling.margin_for("conv5_1")


def test_the_budget_knows_the_margin():
    from nst.host import budget

    assert budget.TILE_MARGIN == tiling.margin_for("conv5_1")


def test_crop_gives_the_core_in_layer_positions():
    tile = tiling.Tile(core=(96, 200, 0, 64), outer=(0, 200, 0, 160))  # bottom 200: the picture's edge
    assert tile.crop(1) == (96, 0, 104, 64)
    assert tile.crop(16) == (6, 0, 13 - 6, 4)  # ceil(200 / 16) = 13: 'SAME' pooling keeps the partial row


# ------------------------------------------------------------------ the tiled cost is the whole cost

def _both(weights, settings, content, style, height, width, side, distribution):
    """A whole-picture Problem and a TiledProblem of one scale, with their targets loaded."""
    s = settings
    features = FeatureGraph(weights, s.pooling, s.content_layer, [name for name, _ in s.style_layers])
    graph = tiled.TileGraph(weights, s, distribution=distribution > 0)
    whole_targets = st._scale_targets(features, s, content, [style], height, width, None, distribution)
    tiled_targets = st._scale_targets(tiled.TiledFeatures(graph, side), s, content, [style], height, width, None,
                                      distribution)
    whole = Problem(weights, s, height, width, distribution_weight=distribution, tv_weight=s.tv_weight)
    whole.start(whole_targets["content_in"], whole.targets(whole_targets["content"], whole_targets["grams"], None,
                                                           whole_targets["distributions"]))
    in_tiles = tiled.TiledProblem(graph, s, height, width, side, distribution, s.tv_weight)
    in_tiles.start(None, in_tiles.targets(tiled_targets["content"], tiled_targets["grams"], None,
                                          tiled_targets["distributions"]))
    return whole, in_tiles, whole_targets, tiled_targets


@pytest.mark.parametrize("distribution", [0.0, 40.0])
def test_tiled_cost_and_gradient_equal_the_whole_pictures(weights_path, sample_pair, distribution):
    """Real weights, 160x208 in 3x4 tiles of 64 px: the content, style and TV costs and the gradient
    to float32 rounding; the distribution term to its sample's resolution (here every position)."""
    from nst.io.images import read_rgb, resize

    weights = st.get_weights(weights_path)
    settings = Settings(precision="fp32", tv_weight=1e-3, distribution_weight=distribution).resolved(1)
    height, width = 160, 208
    content = resize(read_rgb(sample_pair[0]), width, height)
    whole, in_tiles, whole_targets, tiled_targets = _both(weights, settings, content, read_rgb(sample_pair[1]),
                                                          height, width, 64, distribution)
    assert len(in_tiles.tiles) == 12
    np.testing.assert_allclose(tiled_targets["content"], whole_targets["content"], rtol=0, atol=1e-4)
    for name, gram in whole_targets["grams"].items():
        np.testing.assert_allclose(tiled_targets["grams"][name], gram, rtol=1e-5, atol=1e-6 * np.abs(gram).max())
    noisy = np.clip(content + np.random.default_rng(1).normal(0, 20, content.shape), 0, 255).astype(np.float32)
    costs, gradient = whole.evaluate(noisy)
    tiled_costs, tiled_gradient = in_tiles.evaluate(noisy)
    assert set(costs) == set(tiled_costs)
    for name in ("content", "style", "tv", "total"):  # measured: relative differences below 1e-6
        assert tiled_costs[name] == pytest.approx(costs[name], rel=1e-5), name
    if distribution:  # measured: 1e-6 relative
        assert tiled_costs["distribution"] == pytest.approx(costs["distribution"], rel=1e-4)
    # measured: 4e-7 relative L2 without the distribution term, 8e-6 with it
    assert np.linalg.norm(tiled_gradient - gradient) < 1e-4 * np.linalg.norm(gradient)
    whole.close()
    in_tiles.graph.close()


def test_tiled_cost_and_gradient_at_an_odd_size(tiny_weights):
    """157x203 (not on the 16 px grid): the last tiles end inside a pooling cell, where 'SAME' pooling keeps
    a partial row and column; the tiled cost and gradient are still the whole picture's."""
    settings = Settings(precision="fp32", tv_weight=1e-3, distribution_weight=40.0).resolved(1)
    height, width = 157, 203
    rng = np.random.default_rng(5)
    content = rng.integers(0, 255, (height, width, 3)).astype(np.uint8)
    style = rng.integers(0, 255, (96, 96, 3)).astype(np.uint8)
    whole, in_tiles, _, _ = _both(tiny_weights, settings, content, style, height, width, 48, 40.0)
    assert len(in_tiles.tiles) == 4 * 5 and in_tiles.tiles[-1].core[1:4:2] == (height, width)
    noisy = np.clip(content + rng.normal(0, 20, content.shape), 0, 255).astype(np.float32)
    costs, gradient = whole.evaluate(noisy)
    tiled_costs, tiled_gradient = in_tiles.evaluate(noisy)
    for name in ("content", "style", "tv", "distribution", "total"):  # measured: at most 2.3e-6 relative
        assert tiled_costs[name] == pytest.approx(costs[name], rel=1e-4), name
    assert np.linalg.norm(tiled_gradient - gradient) < 1e-4 * np.linalg.norm(gradient)  # measured: 2.5e-7
    whole.close()
    in_tiles.graph.close()


def test_the_rank_sample_is_the_same_positions_whatever_the_tiles(tiny_weights):
    """Each tile samples the whole picture's every k-th row and column, not its own: in 48 px tiles the
    sample is, value for value, the one a single tile over the whole picture takes."""
    settings = Settings(precision="fp32").resolved(1)
    image = np.random.default_rng(6).uniform(0, 255, (157, 203, 3)).astype(np.float32)
    graph = tiled.TileGraph(tiny_weights, settings, distribution=True)
    steps = {"conv1_1": 3, "conv2_1": 5}
    single = tiled.statistics(graph, image, tiling.plan(157, 203, 256, graph.last_layer), steps=steps)["samples"]
    many = tiled.statistics(graph, image, tiling.plan(157, 203, 48, graph.last_layer), steps=steps)["samples"]
    for name, step in steps.items():
        rows, columns = (-(-n // tiling.stride_of(name)) for n in (157, 203))  # positions at the layer
        assert many[name].shape == single[name].shape == (-(-rows // step) * -(-columns // step), many[name].shape[1])
        np.testing.assert_allclose(np.sort(many[name], axis=0), np.sort(single[name], axis=0), rtol=0,
                                   atol=1e-5 * np.abs(single[name]).max())
    graph.close()


def test_tiled_runs_follow_the_whole_runs_with_either_optimizer(tiny_weights):
    """Forced tiles give the whole run's costs at every step, to rounding (Adam in NumPy against TF's)."""
    y, x = np.mgrid[0:96, 0:128]
    content = np.stack([60 + x, 70 + y, 150 - x // 2 - y // 2], axis=-1).astype(np.uint8)
    style = np.random.default_rng(3).integers(0, 255, (64, 64, 3)).astype(np.uint8)
    for optimizer in ("adam", "lbfgs"):
        settings = Settings(size=128, min_size=64, iterations=(3, 4), optimizer=optimizer, precision="fp32", seed=0)
        whole = st.stylize(content, [style], settings, weights=tiny_weights)
        in_tiles = st.stylize(content, [style], dataclasses.replace(settings, tile=32), weights=tiny_weights)
        assert in_tiles.tiles == [32, 32] and whole.tiles == [None, None]
        assert len(in_tiles.history) == len(whole.history)
        for a, b in zip(whole.history, in_tiles.history):
            assert b.total == pytest.approx(a.total, rel=1e-3), optimizer
        assert np.abs(in_tiles.image.astype(int) - whole.image.astype(int)).mean() < 0.5


def test_total_variation_gradient_is_the_derivative():
    image = np.random.default_rng(0).uniform(0, 255, (6, 7, 3)).astype(np.float64)
    value, gradient = tiled.total_variation(image)
    step = np.zeros_like(image)
    step[2, 3, 1] = 1e-3
    numeric = (tiled.total_variation(image + step)[0] - tiled.total_variation(image - step)[0]) / 2e-3
    assert numeric == pytest.approx(gradient[2, 3, 1], rel=1e-5)


# ------------------------------------------------------------------ how much is tiled, and the schedule

def test_only_what_does_not_fit_is_tiled_and_in_half_the_memory_free():
    from nst.host import budget

    gib = 2 ** 30
    sizes = [(384, 512), (768, 1024), (1536, 2048), (3072, 4096)]
    assert budget.tile_sides(sizes[:2], available=23 * gib) == [None, None]
    sides = budget.tile_sides(sizes, available=23 * gib)
    assert sides[:2] == [None, None] and sides[2] and sides[3]
    assert budget.tiled_peak_bytes(3072, 4096, sides[3]) <= 23 * gib // 2
    assert budget.tiled_peak_bytes(3072, 4096, sides[3] + budget.TILE_STEP) > 23 * gib // 2  # the largest that fits
    assert budget.tile_sides(sizes, available=23 * gib, forced=600) == [None, 600, 600, 600]
    with pytest.raises(budget.MemoryBudgetError, match="largest --size that fits is about"):
        budget.tile_sides(sizes, available=4 * gib)
    # A forced tile is checked too: 2048 px cores need more than 16 GiB, and the 2048 px scale runs whole.
    with pytest.raises(budget.MemoryBudgetError, match="with --tile 2048 .* use a smaller --tile"):
        budget.tile_sides(sizes, available=16 * gib, forced=2048)
    assert budget.tile_sides(sizes, available=16 * gib, forced=512) == [None, 512, 512, 512]
    # A deeper last layer needs a wider margin (conv5_4: 128 px), so smaller cores in the same memory.
    deep = budget.tile_sides(sizes, available=23 * gib, margin=tiling.margin_for("conv5_4"))
    assert deep[3] < sides[3]


def test_the_largest_size_suggested_fits_with_its_style_image():
    """The suggestion counts the style image held whole beside the tiles (16 bytes a pixel)."""
    from nst.host import budget

    gib, available = 2 ** 30, 16 * 2 ** 30
    for style_ratio in (0.0, 1.0, 4.0):
        side = budget.largest_fitting_side(4096, 4096, available, style_ratio)
        budget.check_fits(side, side, round(style_ratio * side * side), available=available)  # no exception
        with pytest.raises(budget.MemoryBudgetError):
            budget.check_fits(side + 64, side + 64, round(style_ratio * (side + 64) ** 2), available=available)
    assert budget.largest_fitting_side(4096, 4096, available, 4.0) < budget.largest_fitting_side(4096, 4096, available)


def test_the_schedule_saves_only_between_the_print_side_and_the_last_scale():
    sizes = [(96 * 2 ** k, 128 * 2 ** k) for k in range(7)]  # 128 .. 8192 px
    for n in range(1, 6):  # up to 2048 px: DEFAULT_SCHEDULE as it always was
        assert list(default_schedule("lbfgs", sizes[:n])) == per_scale((80, 40, 25), n)
    assert default_schedule("lbfgs", sizes[:6]) == (80, 80, 80, 40, 25, 25)
    assert default_schedule("lbfgs", sizes) == (80, 80, 80, 40, 25, 12, 25)
    assert default_schedule("lbfgs", sizes[5:]) == (12, 25)  # every scale above the print side
    settings, found = st.resolve(Settings(size=8192), 1, 768, 1024)
    assert found == sizes and settings.iterations == (80, 80, 80, 40, 25, 12, 25)
    settings, _ = st.resolve(Settings(size=4096, iterations=3), 1, 768, 1024)
    assert settings.iterations == 3  # given iterations are kept


def test_the_rank_sample_is_unbiased_on_a_pooling_lattice(tiny_weights):
    """A picture with a 2 px checkerboard (the kind of lattice VGG's poolings leave): sampling every 2nd row
    and column sees one phase of it and misranks the other (measured: the distribution term 1.38x the whole
    picture's); an odd step sees every phase (0.965x), and step 1 is exact.  sample_step is always odd."""
    s = Settings(precision="fp32").resolved(1)
    height, width = 192, 256
    y, x = np.mgrid[0:height, 0:width]
    content = np.stack([60 + x // 2, 70 + y // 2, 150 - x // 4 - y // 4], -1).astype(np.uint8)
    style = np.random.default_rng(3).integers(0, 255, (128, 128, 3)).astype(np.uint8)
    features = FeatureGraph(tiny_weights, s.pooling, s.content_layer, [name for name, _ in s.style_layers])
    targets = st._scale_targets(features, s, content, [style], height, width, None, 40.0)
    whole = Problem(tiny_weights, s, height, width, distribution_weight=40.0)
    whole.start(content.astype(np.float32), whole.targets(targets["content"], targets["grams"], None,
                                                          targets["distributions"]))
    lattice = np.clip(content + 40.0 * (((y % 2) + (x % 2)) % 2)[..., None], 0, 255).astype(np.float32)
    exact = whole.evaluate(lattice)[0]["distribution"]
    graph = tiled.TileGraph(tiny_weights, s, distribution=True)
    ratios = {}
    for step in (1, 2, 3):
        in_tiles = tiled.TiledProblem(graph, s, height, width, 96, 40.0)
        in_tiles.steps = {name: step for name in in_tiles.steps}
        in_tiles.start(None, in_tiles.targets(targets["content"], targets["grams"], None, targets["distributions"]))
        ratios[step] = in_tiles.evaluate(lattice)[0]["distribution"] / exact
    assert ratios[1] == pytest.approx(1.0, rel=1e-5)
    assert abs(ratios[3] - 1) < 0.1 < abs(ratios[2] - 1)
    assert all(tiled.sample_step(n, 2 ** 10) % 2 == 1 for n in range(1, 200_000, 997))
    graph.close()
