"""The engine (nst.optimise.stylize): each setting changes what it should.

Most tests use a tiny random VGG-19 (8 channels per layer, same layer names,
written in the MatConvNet layout and loaded by the real loader), so graphs
build and run in a fraction of a second; the last tests use the real weights.
"""

import numpy as np
import pytest

from host_profiles import NO_CONTENT_COST
from nst.optimise import stylize as st
from nst.optimise.stylize import Settings
from nst.weights.load import load_vgg19

SIZE = 48


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    from tiny_vgg import write_tiny_vgg

    return load_vgg19(write_tiny_vgg(tmp_path_factory.mktemp("tiny") / "tiny-vgg.mat"))


@pytest.fixture(scope="module")
def pictures():
    """A smooth content picture (48x36, no values at 0 or 255) and two different style pictures."""
    y, x = np.mgrid[0:36, 0:48]
    content = np.stack([60 + 2 * x, 70 + 3 * y, 150 - x - y], axis=-1).astype(np.uint8)
    rng = np.random.default_rng(1)
    stripes = np.zeros((40, 40, 3), dtype=np.uint8)
    stripes[::4] = (220, 40, 30)
    stripes[1::4] = (30, 40, 220)
    stripes[2::4] = (240, 230, 30)
    blobs = rng.integers(0, 256, size=(10, 10, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    return content, stripes, blobs


def run(weights, pictures, styles=None, callback=None, **settings):
    content, stripes, _ = pictures
    settings.setdefault("size", SIZE)
    settings.setdefault("iterations", 6)
    settings.setdefault("optimizer", "adam")
    settings.setdefault("learning_rate", 10.0 if settings["optimizer"] == "adam" else 2.0)
    settings.setdefault("seed", 0)
    return st.stylize(content, styles if styles is not None else [stripes], callback=callback, weights=weights,
                      **settings)


def first_image(weights, pictures, **settings):
    images = []

    def grab(progress):
        if progress.step == 0:
            images.append(progress.image())

    run(weights, pictures, callback=grab, iterations=1, **settings)
    return images[0]


def total_variation(image):
    image = image.astype(np.float64)
    return (np.square(np.diff(image, axis=0)).sum() + np.square(np.diff(image, axis=1)).sum()) / image[..., 0].size


# ------------------------------------------------------------------ parsing

def test_style_layers_syntax():
    assert st.parse_style_layers("conv1_1:0.2,conv2_1:0.8") == (("conv1_1", 0.2), ("conv2_1", 0.8))
    assert st.parse_style_layers("conv1_1,conv2_1") == (("conv1_1", 0.5), ("conv2_1", 0.5))
    assert st.parse_style_layers("relu1_1:0.5,conv3_1,conv4_1") == (
        ("conv1_1", 0.5), ("conv3_1", 0.25), ("conv4_1", 0.25))
    assert st.parse_style_layers(st.DEFAULT_STYLE_LAYERS) == st.DEFAULT_STYLE_LAYERS


@pytest.mark.parametrize("spec, words", [
    ("conv1_1,conv9_1", ["conv9_1", "did you mean"]),
    ("conv1_1,conv2_2:abc", ["must be a number"]),
    ("conv1_1:-1", ["at least 0"]),
    ("conv1_1,conv1_1", ["twice"]),
    ("", ["no style layers"]),
])
def test_style_layers_errors(spec, words):
    with pytest.raises(st.LayerError) as error:
        st.parse_style_layers(spec)
    assert all(word in str(error.value) for word in words)


def test_unknown_layer_suggests_nearest():
    with pytest.raises(st.LayerError, match=r"did you mean conv4_2"):
        st.parse_layer("conv4_22")
    with pytest.raises(st.LayerError, match="valid names: conv1_1"):
        st.parse_layer("fc7")


def test_blend_weights_normalised():
    assert st.normalise_blend_weights([3, 1], 2) == (0.75, 0.25)
    assert st.normalise_blend_weights(None, 4) == (0.25,) * 4
    for bad in ([1], [0, 0], [-1, 2], ["x", 1], [float("nan"), 1]):
        with pytest.raises(ValueError):
            st.normalise_blend_weights(bad, 2)


@pytest.mark.parametrize("field, value", [("content_weight", -1), ("style_weight", float("inf")),
                                          ("tv_weight", "abc"), ("learning_rate", 0), ("iterations", 0),
                                          ("size", 8), ("noise_ratio", 1.5), ("optimizer", "sgd"),
                                          ("pooling", "min"), ("init", "zeros")])
def test_settings_refuse_bad_values(field, value):
    with pytest.raises(ValueError):
        Settings(**{field: value}).resolved(1)


def test_scale_sizes():
    assert st.scale_sizes(768, 1024, 512, multiscale=False) == [(384, 512)]
    assert st.scale_sizes(768, 1024, 512, multiscale=True, min_size=128) == [(96, 128), (192, 256), (384, 512)]
    with pytest.raises(ValueError, match="short side"):
        st.scale_sizes(100, 2000, 64, multiscale=False)


def test_yiq_round_trip():
    rgb = np.random.default_rng(0).uniform(0, 255, size=(5, 7, 3))
    np.testing.assert_allclose(st.yiq_to_rgb(st.rgb_to_yiq(rgb)), rgb, atol=1e-9)


# ------------------------------------------------------------------ each setting

def test_runs_iterations_and_lowers_cost(tiny_weights, pictures):
    result = run(tiny_weights, pictures, iterations=8)
    assert result.status == "done" and result.steps == 8
    assert [row.step for row in result.history] == list(range(9))  # the start and one event per step
    assert result.image.shape == (36, 48, 3) and result.image.dtype == np.uint8
    assert result.costs["total"] < 0.5 * result.history[0].total
    assert result.costs["total"] == min(row.total for row in result.history)  # the best image is returned


def test_size_keeps_aspect(tiny_weights, pictures):
    assert run(tiny_weights, pictures, size=32, iterations=1).image.shape == (24, 32, 3)


def test_seed_repeats_bit_for_bit(tiny_weights, pictures):
    a = run(tiny_weights, pictures, init="noise", seed=7)
    b = run(tiny_weights, pictures, init="noise", seed=7)
    c = run(tiny_weights, pictures, init="noise", seed=8)
    np.testing.assert_array_equal(a.image, b.image)
    assert [row[2:] for row in a.history] == [row[2:] for row in b.history]  # all but step and elapsed
    assert not np.array_equal(a.image, c.image)
    d = run(tiny_weights, pictures, init="noise", seed=7, optimizer="lbfgs")
    e = run(tiny_weights, pictures, init="noise", seed=7, optimizer="lbfgs")
    np.testing.assert_array_equal(d.image, e.image)


def test_seed_drawn_and_recorded(tiny_weights, pictures):
    result = run(tiny_weights, pictures, seed=None, iterations=1, init="noise")
    assert isinstance(result.settings.seed, int)
    again = run(tiny_weights, pictures, seed=result.settings.seed, iterations=1, init="noise")
    np.testing.assert_array_equal(result.image, again.image)


def test_init_content_starts_at_content(tiny_weights, pictures):
    np.testing.assert_array_equal(first_image(tiny_weights, pictures, init="content"), pictures[0])


def test_init_style_and_path_and_noise(tiny_weights, pictures, tmp_path):
    from nst.io.images import resize, resize_painting

    content, stripes, blobs = pictures
    # "style" starts from the painting as the style targets see it (enlarged smoothly here, 40 px to 48 px).
    np.testing.assert_allclose(first_image(tiny_weights, pictures, init="style").astype(int),
                               resize_painting(stripes, 48, 36).astype(int), atol=40)  # float vs uint8 bicubic
    np.testing.assert_allclose(first_image(tiny_weights, pictures, init=blobs).astype(int),
                               resize(blobs, 48, 36).astype(int), atol=40)
    from nst.io.images import save_rgb

    path = save_rgb(tmp_path / "start.png", blobs)
    np.testing.assert_array_equal(first_image(tiny_weights, pictures, init=str(path)),
                                  first_image(tiny_weights, pictures, init=blobs))
    noisy = first_image(tiny_weights, pictures, init="noise", noise_ratio=0.6).astype(float)
    # The course's noise image: 0.6 * (mean pixel + U(-20, 20)) + 0.4 * content.
    expected = 0.6 * st.MEAN_RGB + 0.4 * content
    assert np.abs(noisy - expected).max() <= 0.6 * 20 + 1
    assert noisy.std() > 0
    np.testing.assert_array_equal(first_image(tiny_weights, pictures, init="noise", noise_ratio=0.0), content)


def test_learning_rate_is_adams_first_step(tiny_weights, pictures):
    # Adam's first step moves every pixel by learning_rate * sign(gradient) (m / sqrt(v) = g / |g|).
    for rate in (1.0, 4.0):
        steps = []

        def grab(progress):
            steps.append(progress._pixels.copy())

        run(tiny_weights, pictures, iterations=1, learning_rate=rate, callback=grab)
        change = np.abs(steps[1] - steps[0])
        assert np.median(change) == pytest.approx(rate, rel=1e-3)


def test_style_weight_zero_keeps_content(tiny_weights, pictures):
    result = run(tiny_weights, pictures, style_weight=0.0, distribution_weight=0, init="content")
    np.testing.assert_array_equal(result.image, pictures[0])


def test_content_weight_pulls_towards_content(tiny_weights, pictures):
    # This network's style cost is about 1e5 and its content cost about 30: weigh the style down.
    loose = run(tiny_weights, pictures, content_weight=0.0, style_weight=1e-3, distribution_weight=0, iterations=10)
    tight = run(tiny_weights, pictures, content_weight=1e3, style_weight=1e-3, distribution_weight=0, iterations=10)
    content = pictures[0].astype(float)
    assert np.abs(tight.image - content).mean() < 0.5 * np.abs(loose.image - content).mean()


def test_tv_weight_lowers_total_variation(tiny_weights, pictures):
    plain = run(tiny_weights, pictures, iterations=10, init="noise", noise_ratio=1.0, style_weight=1e-3)
    smooth = run(tiny_weights, pictures, iterations=10, init="noise", noise_ratio=1.0, style_weight=1e-3,
                 tv_weight=1.0)
    assert smooth.costs["tv"] == pytest.approx(total_variation(smooth.image), rel=0.05)
    assert total_variation(smooth.image) < 0.7 * total_variation(plain.image)


def test_style_layer_weights_scale_the_style_cost(tiny_weights, pictures):
    one = run(tiny_weights, pictures, iterations=1, style_layers="conv2_1:1")
    two = run(tiny_weights, pictures, iterations=1, style_layers="conv2_1:2")
    both = run(tiny_weights, pictures, iterations=1, style_layers="conv2_1:1,conv3_1:1")
    three = run(tiny_weights, pictures, iterations=1, style_layers="conv3_1:1")
    assert two.history[0].style == pytest.approx(2 * one.history[0].style, rel=1e-5)
    assert both.history[0].style == pytest.approx(one.history[0].style + three.history[0].style, rel=1e-5)


def test_content_layer_changes_content_cost(tiny_weights, pictures):
    a = run(tiny_weights, pictures, iterations=3, content_layer="conv4_2")
    b = run(tiny_weights, pictures, iterations=3, content_layer="conv1_2")
    assert a.history[1].content != b.history[1].content
    assert not np.array_equal(a.image, b.image)


def test_pooling_max_differs_from_avg(tiny_weights, pictures):
    avg = run(tiny_weights, pictures, pooling="avg")
    big = run(tiny_weights, pictures, pooling="max")
    assert avg.history[0].style != big.history[0].style
    assert not np.array_equal(avg.image, big.image)


def test_two_styles_blend_one_zero_equals_one_style(tiny_weights, pictures):
    _, stripes, blobs = pictures
    single = run(tiny_weights, pictures, styles=[stripes])
    blended = run(tiny_weights, pictures, styles=[stripes, blobs], style_blend_weights=[1, 0])
    np.testing.assert_array_equal(single.image, blended.image)
    halves = run(tiny_weights, pictures, styles=[stripes, stripes], style_blend_weights=[2, 2])
    np.testing.assert_array_equal(single.image, halves.image)
    mixed = run(tiny_weights, pictures, styles=[stripes, blobs], style_blend_weights=[1, 1])
    assert not np.array_equal(single.image, mixed.image)


def test_style_scale_changes_the_target(tiny_weights, pictures):
    a = run(tiny_weights, pictures, iterations=1, style_scale=1.0)
    b = run(tiny_weights, pictures, iterations=1, style_scale=2.0)
    assert a.history[0].style != pytest.approx(b.history[0].style, rel=1e-3)


def test_preserve_colors_keeps_content_chroma(tiny_weights, pictures):
    content = pictures[0]
    result = run(tiny_weights, pictures, iterations=10, preserve_colors=True, learning_rate=8.0)
    plain = run(tiny_weights, pictures, iterations=10, learning_rate=8.0)
    chroma = lambda image: st.rgb_to_yiq(image)[..., 1:]  # noqa: E731  (I, Q)
    kept = np.abs(chroma(result.image) - chroma(content))
    assert kept.mean() < 1.0 and np.percentile(kept, 99) < 3.0  # rounding and clipping only
    assert np.abs(chroma(plain.image) - chroma(content)).mean() > 3 * kept.mean() + 1
    # ...while the luminance did change.
    assert np.abs(st.rgb_to_yiq(result.image)[..., 0] - st.rgb_to_yiq(content)[..., 0]).mean() > 2


def test_luminance_matching():
    style = np.random.default_rng(0).uniform(0, 100, size=(8, 8, 3))
    target = np.random.default_rng(1).uniform(100, 200, size=(8, 8))
    matched = st.luminance_rgb(style, match=target)[..., 0]
    assert matched.mean() == pytest.approx(target.mean()) and matched.std() == pytest.approx(target.std())


def test_lbfgs_respects_pixel_bounds_and_lowers_cost(tiny_weights, pictures):
    seen = []
    result = run(tiny_weights, pictures, optimizer="lbfgs", iterations=8,
                 callback=lambda p: seen.append((p._pixels.min(), p._pixels.max())))
    assert result.status == "done" and result.steps >= 5
    assert min(lo for lo, _ in seen) >= 0.0 and max(hi for _, hi in seen) <= 255.0
    assert result.costs["total"] < 0.5 * result.history[0].total


def test_multiscale_coarse_to_fine(tiny_weights, pictures):
    events = []
    result = run(tiny_weights, pictures, size=64, multiscale=True, min_size=32, iterations=4,
                 callback=lambda p: events.append((p.scale, p.iteration, p.sizes[p.scale], p.image())))
    assert result.sizes == [(24, 32), (48, 64)]
    assert result.image.shape == (48, 64, 3) and result.steps == 8
    assert [e[:2] for e in events] == [(0, i) for i in range(5)] + [(1, i) for i in range(5)]
    # The fine scale starts from the coarse result, upsampled (not from the content).
    coarse_best = min((e for e in events if e[0] == 0), key=lambda e: result.history[events.index(e)].total)[3]
    from nst.io.images import resize

    start_fine = events[5][3].astype(int)
    assert np.abs(start_fine - resize(coarse_best, 64, 48)).mean() < 3
    assert np.abs(start_fine - resize(pictures[0], 64, 48)).mean() > 3


def test_callback_stop_keeps_best(tiny_weights, pictures):
    def stop_at_three(progress):
        if progress.step == 3:
            raise st.Stop("enough")

    result = run(tiny_weights, pictures, iterations=20, callback=stop_at_three)
    assert result.status == "stopped" and result.message == "enough"
    assert len(result.history) == 4 and result.image is not None


def test_keyboard_interrupt_keeps_best(tiny_weights, pictures):
    def interrupt(progress):
        if progress.step == 2:
            raise KeyboardInterrupt

    result = run(tiny_weights, pictures, iterations=20, callback=interrupt)
    assert result.status == "interrupted" and result.steps == 2
    assert result.costs["total"] == min(row.total for row in result.history)


def _poison_costs_after_first(monkeypatch, bad):
    """From iteration 1 on, the tracker sees the costs in ``bad`` (e.g. NaN): overflow itself depends
    on the host (with oneDNN a style weight of 1e31 overflowed one component but not the total)."""
    from nst.optimise.optimizers import Tracker

    report = Tracker.report

    def poisoned(self, iteration, costs, pixels):
        return report(self, iteration, {**costs, **bad} if iteration >= 1 else costs, pixels)

    monkeypatch.setattr(Tracker, "report", poisoned)


def test_nan_in_costs_stops_and_keeps_best(tiny_weights, pictures, monkeypatch):
    # The run must stop at the first NaN and return the last finite image.
    _poison_costs_after_first(monkeypatch, {"total": float("nan"), "style": float("nan")})
    result = run(tiny_weights, pictures, iterations=20, optimizer="adam")
    assert result.status == "nonfinite"
    assert "the cost became nan at iteration 1" in result.message
    assert "kept the best image (iteration 0)" in result.message and "\n" not in result.message
    assert np.isfinite(result.history[0].total) and len(result.history) == 1
    np.testing.assert_array_equal(result.image, pictures[0])  # the start was the best finite image


def test_nonfinite_message_names_the_cost_that_overflowed(tiny_weights, pictures, monkeypatch):
    # A total that is still finite must not be quoted as the culprit.
    _poison_costs_after_first(monkeypatch, {"style": float("inf")})
    result = run(tiny_weights, pictures, iterations=5, optimizer="adam")
    assert result.status == "nonfinite" and "the style cost became inf at iteration 1" in result.message


def test_lbfgs_stops_at_a_nan_cost_and_keeps_the_best(tiny_weights, pictures, monkeypatch):
    # L-BFGS's line search keeps the cost far from overflow, so the NaN is injected: once
    # iteration 3 is reported, the next evaluation (iteration 4's line search) returns NaN costs.
    evaluate, armed = st.Problem.evaluate, []

    def nan_once_armed(problem, image):
        costs, gradient = evaluate(problem, image)
        return ({name: float("nan") for name in costs} if armed else costs), gradient

    def arm_after_third(progress):
        if progress.iteration == 3:
            armed.append(True)

    monkeypatch.setattr(st.Problem, "evaluate", nan_once_armed)
    result = run(tiny_weights, pictures, iterations=20, optimizer="lbfgs", callback=arm_after_third)
    assert result.status == "nonfinite" and "the cost became nan at iteration 4" in result.message
    assert "kept the best image (iteration 3)" in result.message and len(result.history) == 4
    assert result.costs["total"] == result.history[3].total < result.history[0].total


# ------------------------------------------------------------------ real weights

@pytest.fixture(scope="module")
def real(weights_path, sample_pair):
    from nst.io import images

    return st.get_weights(weights_path), images.read_rgb(sample_pair[0]), images.read_rgb(sample_pair[1])


@pytest.mark.host
def test_real_weights_stylise_and_lbfgs_beats_adam(real):
    weights, content, style = real
    # fp32 pinned: this test is about the optimisers, not the number format (auto is bf16 on some hosts).
    adam = st.stylize(content, [style], size=96, optimizer="adam", iterations=20, seed=0, weights=weights,
                      precision="fp32")
    lbfgs = st.stylize(content, [style], size=96, optimizer="lbfgs", iterations=20, seed=0, weights=weights,
                       precision="fp32")
    start = adam.history[0]
    assert start.total > 0 and start.content <= NO_CONTENT_COST * start.total  # starts at the content: all style
    for result in (adam, lbfgs):
        assert result.image.shape == (72, 96, 3)
        assert result.costs["style"] < 0.3 * start.style  # the style cost falls a lot in 20 iterations
    assert lbfgs.costs["total"] < adam.costs["total"]


def test_real_weights_preserve_colors(real):
    weights, content, style = real
    from nst.io.images import resize

    result = st.stylize(content, [style], size=64, iterations=10, preserve_colors=True, weights=weights)
    small = resize(content, 64, 48)
    chroma = np.abs(st.rgb_to_yiq(result.image)[..., 1:] - st.rgb_to_yiq(small)[..., 1:])
    assert chroma.mean() < 1.0


def test_live_preview_updates_in_place(tiny_weights, pictures, monkeypatch):
    import IPython.display

    from nst.optimise import pictures as pics

    shown, updates = [], []

    class Handle:
        def update(self, obj):
            updates.append(obj)

    def display(obj, display_id=False):
        shown.append(obj)
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    run(tiny_weights, pictures, iterations=4, callback=pics.live_preview(every=2))
    assert len(shown) == 2  # one image and one text line, created once
    assert shown[0].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(updates) == 4  # steps 2 and 4: image and text each
    assert "step 4/4" in updates[-1].data


def test_schedule_gives_each_scale_its_own_iterations(tiny_weights, pictures):
    events = []
    result = run(tiny_weights, pictures, size=64, multiscale=True, min_size=32, iterations=(5, 2),
                 callback=lambda p: events.append((p.scale, p.iteration, p.step, p.iterations, p.total_steps)))
    assert result.sizes == [(24, 32), (48, 64)] and result.steps == 7
    assert [e[:2] for e in events] == [(0, i) for i in range(6)] + [(1, i) for i in range(3)]
    assert [e[2] for e in events] == [0, 1, 2, 3, 4, 5, 5, 6, 7]  # steps count on across scales
    assert {e[3] for e in events if e[0] == 0} == {5} and {e[3] for e in events if e[0] == 1} == {2}
    assert {e[4] for e in events} == {7}
    assert result.settings.iterations == (5, 2)


def test_scale_iterations_fits_a_schedule_to_the_scales():
    assert st.scale_iterations(7, 3) == [7, 7, 7]
    assert st.scale_iterations((100, 50, 20), 3) == [100, 50, 20]
    assert st.scale_iterations((100, 50, 20), 1) == [20]  # a small image: the finest entry
    assert st.scale_iterations((50, 20), 4) == [50, 50, 50, 20]  # more scales: the coarsest repeats
    for bad in ((), (3, 0), (2.5,), "10"):
        with pytest.raises(ValueError):
            Settings(iterations=bad).resolved(1)


def test_default_iterations_follow_multiscale():
    multi = Settings(multiscale=True).resolved(1)
    single = Settings(multiscale=False).resolved(1)
    assert multi.iterations == st.DEFAULT_SCHEDULE["lbfgs"] and isinstance(single.iterations, int)
    assert single.iterations == st.DEFAULT_ITERATIONS["lbfgs"]


def test_distribution_term_is_weighted_into_the_total_where_asked(tiny_weights, pictures):
    # The sliced-Wasserstein term (settings.DISTRIBUTION_LAYERS) is built only at a scale whose weight is above 0.
    plain = run(tiny_weights, pictures, optimizer="lbfgs", iterations=4, distribution_weight=0)
    assert "distribution" not in plain.costs
    asked = run(tiny_weights, pictures, optimizer="lbfgs", iterations=4, distribution_weight=50.0)
    c = asked.costs
    assert np.isfinite(c["distribution"]) and c["distribution"] > 0
    s = asked.settings
    expected = s.content_weight * c["content"] + s.style_weight * c["style"] + 50.0 * c["distribution"]
    assert c["total"] == pytest.approx(expected, rel=1e-5)
    assert not np.array_equal(asked.image, plain.image)  # it steers the picture
    for bad, message in ((-1.0, "distribution_weight must be at least 0"), ((), "must list at least one number"),
                         ("10,x", "distribution_weight must be a number")):
        with pytest.raises(ValueError, match=message):
            run(tiny_weights, pictures, distribution_weight=bad)


def test_style_targets_give_grams_and_sorted_projections_in_one_pass(tiny_weights, pictures):
    from nst.optimise.graphs import DISTRIBUTION_LAYERS, FeatureGraph

    _, stripes, _ = pictures
    features = FeatureGraph(tiny_weights, "avg", "conv4_2", [name for name, _ in st.DEFAULT_STYLE_LAYERS])
    grams, projections = features.style_targets(stripes, projections=True)
    only_grams, none = features.style_targets(stripes)
    activations = features.session.run(features.activations, {features.pixels: stripes[None].astype(np.float32)})
    features.close()
    assert none == {} and set(projections) == set(DISTRIBUTION_LAYERS)
    for name, gram in grams.items():
        np.testing.assert_allclose(gram, only_grams[name], rtol=1e-6)
    for name, a in activations.items():
        columns = a.reshape(-1, a.shape[-1])  # [n_H n_W, n_C]
        sorted_columns = projections[name]
        assert sorted_columns.shape == columns.shape
        assert np.all(np.diff(sorted_columns, axis=0) >= 0)  # each column ascending
        # The directions are orthonormal, so the projections keep the features' total energy.
        assert np.sum(sorted_columns.astype(np.float64) ** 2) == pytest.approx(np.sum(columns.astype(np.float64) ** 2),
                                                                              rel=1e-4)


def test_distribution_term_takes_one_weight_per_scale(tiny_weights, pictures):
    from nst.optimise.settings import DEFAULT_DISTRIBUTION_WEIGHT

    def scales_with_the_term(**settings):
        seen = {}
        result = run(tiny_weights, pictures, size=128, multiscale=True, min_size=32, iterations=2, optimizer="lbfgs",
                     callback=lambda p: seen.setdefault(p.scale, set()).update(p.costs), **settings)
        assert len(result.sizes) == 3
        return ["distribution" in seen[scale] for scale in range(3)], result.settings.distribution_weight

    assert DEFAULT_DISTRIBUTION_WEIGHT > 0  # on by default, at every scale
    assert scales_with_the_term() == ([True, True, True], DEFAULT_DISTRIBUTION_WEIGHT)
    assert scales_with_the_term(distribution_weight="40,40,0") == ([True, True, False], (40.0, 40.0, 0.0))
    # A schedule shorter than the scales repeats its first (coarsest) entry.
    assert scales_with_the_term(distribution_weight=(0, 5)) == ([False, False, True], (0.0, 5.0))


def test_tv_weight_takes_one_weight_per_scale(tiny_weights, pictures):
    """The TV term counts in each scale's total with that scale's weight (0 at the coarse ones here)."""
    events = []
    result = run(tiny_weights, pictures, size=128, multiscale=True, min_size=32, iterations=2, optimizer="lbfgs",
                 style_weight=1e-3, distribution_weight=0, tv_weight="0,0,2",
                 callback=lambda p: events.append((p.scale, dict(p.costs))))
    assert result.settings.tv_weight == (0.0, 0.0, 2.0)
    assert {scale for scale, _ in events} == {0, 1, 2}
    for scale, costs in events:
        rest = costs["total"] - 10.0 * costs["content"] - 1e-3 * costs["style"]  # the default content weight
        assert costs["tv"] > 0
        assert rest == pytest.approx(2.0 * costs["tv"] if scale == 2 else 0.0, abs=1e-4 * costs["total"]), scale


def test_cost_plot_weights_each_scale_by_its_own_distribution_weight():
    from nst.optimise.pictures import _weight_at_steps

    steps = np.arange(11)  # a schedule of 6 then 4 iterations: steps 0..6 at the first scale, 6..10 at the second
    assert list(_weight_at_steps((40.0, 0.0), steps, [6, 4])) == [40.0] * 7 + [0.0] * 4
    assert list(_weight_at_steps(5.0, steps, [6, 4])) == [5.0] * 11
    assert list(_weight_at_steps((1.0, 2.0, 3.0), steps, [10])) == [3.0] * 11  # one scale: the finest entry

