"""Tests of the eager TensorFlow 2 ``NST`` class (neural_style.py, second course tasks 0-10).

Expected values come from the spec (shapes, messages, layer names, parameter
count, the progress line format) or from hand computation; the spec's printed
costs depend on Keras' ImageNet weights and are not checked (see the module's
docstring).
"""

import re

import numpy as np
import pytest
import tensorflow as tf

import neural_style
from neural_style import NST

STYLE_LAYERS = ['block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1', 'block5_conv1']
NUMBER = r"(-?\d+(?:\.\d+)?(?:e[-+]\d+)?)"
PROGRESS = re.compile(r"^Cost at iteration (\d+): {0}, content {0}, style {0}, var {0}$".format(NUMBER))


def _image(h=20, w=30):
    return np.random.RandomState(0).randint(0, 256, size=(h, w, 3)).astype(np.uint8)


# --------------------------------------------------------------------------
# Task 0: class attributes, constructor validation, scale_image

def test_class_attributes():
    assert NST.style_layers == STYLE_LAYERS
    assert NST.content_layer == 'block5_conv2'


BAD_IMAGES = [[[[0, 0, 0]]], np.zeros((4, 4)), np.zeros((4, 4, 4)), np.zeros((1, 4, 4, 3))]


@pytest.mark.parametrize("bad", BAD_IMAGES, ids=["list", "2d", "4-channels", "rank-4"])
def test_style_image_must_be_hw3_array(bad):
    with pytest.raises(TypeError, match=r"^style_image must be a numpy\.ndarray with shape \(h, w, 3\)$"):
        NST(bad, _image())


@pytest.mark.parametrize("bad", BAD_IMAGES, ids=["list", "2d", "4-channels", "rank-4"])
def test_content_image_must_be_hw3_array(bad):
    with pytest.raises(TypeError, match=r"^content_image must be a numpy\.ndarray with shape \(h, w, 3\)$"):
        NST(_image(), bad)


@pytest.mark.parametrize("name", ["alpha", "beta", "var"])
@pytest.mark.parametrize("bad", [-1, -0.5, "1", None, float("nan")])
def test_weights_must_be_non_negative_numbers(name, bad):
    with pytest.raises(TypeError, match=r"^{} must be a non-negative number$".format(name)):
        NST(_image(), _image(), **{name: bad})


def test_scale_image_rejects_non_images():
    with pytest.raises(TypeError, match=r"^image must be a numpy\.ndarray with shape \(h, w, 3\)$"):
        NST.scale_image(np.zeros((4, 4, 4)))


def test_scale_image_starry_night_shape_and_range(style_array):
    # Spec, task 0: starry_night.jpg -> EagerTensor (1, 320, 512, 3), min 0.0, max 1.0.
    scaled = NST.scale_image(style_array)
    assert isinstance(scaled, tf.Tensor)
    assert tuple(scaled.shape) == (1, 320, 512, 3)
    assert scaled.dtype == tf.float32
    assert float(tf.reduce_min(scaled)) == 0.0
    assert float(tf.reduce_max(scaled)) == 1.0


@pytest.mark.parametrize("h, w, expected", [(100, 50, (1, 512, 256, 3)),
                                            (60, 60, (1, 512, 512, 3)),
                                            (1000, 2000, (1, 256, 512, 3))])
def test_scale_image_long_side_is_512(h, w, expected):
    assert tuple(NST.scale_image(_image(h, w)).shape) == expected


def test_scale_image_rescales_0_255_to_0_1():
    # A constant image stays constant under bicubic resizing: 51 / 255 = 0.2.
    scaled = NST.scale_image(np.full((30, 40, 3), 51, dtype=np.uint8))
    np.testing.assert_allclose(scaled.numpy(), 0.2, atol=1e-5)


def test_constructor_attributes(full_nst, style_array, content_array):
    assert tf.executing_eagerly()
    assert tuple(full_nst.style_image.shape) == (1, 320, 512, 3)
    assert tuple(full_nst.content_image.shape) == (1, 384, 512, 3)  # tubingen.jpg is 1024x768
    np.testing.assert_array_equal(full_nst.style_image.numpy(), NST.scale_image(style_array).numpy())
    np.testing.assert_array_equal(full_nst.content_image.numpy(), NST.scale_image(content_array).numpy())
    assert (full_nst.alpha, full_nst.beta, full_nst.var) == (1e4, 1, 10)


def test_weights_are_imagenet_unless_a_local_file_exists(tmp_path, monkeypatch):
    """The spec's weights='imagenet' on a learner's machine; a Keras file in the working directory wins."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(neural_style, "LOCAL_WEIGHTS", ("vgg19_notop.weights.h5", "pretrained-model/x.weights.h5"))
    assert neural_style.vgg19_weights() == "imagenet"
    (tmp_path / "pretrained-model").mkdir()
    (tmp_path / "pretrained-model" / "x.weights.h5").write_bytes(b"")
    assert neural_style.vgg19_weights() == "pretrained-model/x.weights.h5"
    (tmp_path / "vgg19_notop.weights.h5").write_bytes(b"")
    assert neural_style.vgg19_weights() == "vgg19_notop.weights.h5"


# --------------------------------------------------------------------------
# Task 1: the model

def test_model_layers_and_parameters(small_nst):
    model = small_nst.model
    names = [layer.name for layer in model.layers[1:]]
    assert names == ['block1_conv1', 'block1_conv2', 'block1_pool',
                     'block2_conv1', 'block2_conv2', 'block2_pool',
                     'block3_conv1', 'block3_conv2', 'block3_conv3', 'block3_conv4', 'block3_pool',
                     'block4_conv1', 'block4_conv2', 'block4_conv3', 'block4_conv4', 'block4_pool',
                     'block5_conv1', 'block5_conv2']
    pools = [layer for layer in model.layers if layer.name.endswith('_pool')]
    assert all(isinstance(layer, tf.keras.layers.AveragePooling2D) for layer in pools)
    assert model.count_params() == 15304768
    assert not model.trainable_weights
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    summary = "\n".join(lines)
    assert re.search(r"Total params: 15,304,768", summary)
    assert re.search(r"Trainable params: 0\b", summary)
    assert re.search(r"Non-trainable params: 15,304,768", summary)


def test_model_outputs_style_layers_then_content_layer(small_nst):
    outputs = small_nst.model(tf.zeros((1, 32, 48, 3)))
    assert len(outputs) == 6
    # Channels of block1..5_conv1 then block5_conv2; spatial size halves per pool.
    assert [tuple(o.shape) for o in outputs] == [(1, 32, 48, 64), (1, 16, 24, 128), (1, 8, 12, 256),
                                                  (1, 4, 6, 512), (1, 2, 3, 512), (1, 2, 3, 512)]


def test_preprocess_matches_keras_caffe_mode():
    image = np.random.RandomState(1).rand(1, 5, 7, 3).astype(np.float32)
    expected = tf.keras.applications.vgg19.preprocess_input(image * 255)
    np.testing.assert_allclose(NST.preprocess(tf.constant(image)).numpy(), expected, atol=1e-4)


def test_model_equals_project_vgg_on_rgb_input(small_nst, weights_path):
    """Caffe-preprocessed BGR through the Keras model == the project's RGB-minus-mean VGG graph."""
    from nst.optimise.vgg import build_vgg19
    from nst.weights.load import MEAN_RGB, load_vgg19

    image = np.random.RandomState(2).rand(1, 64, 96, 3).astype(np.float32)  # sides divisible by 16
    reference = build_vgg19(load_vgg19(weights_path), tf.constant(image * 255 - MEAN_RGB),
                            pooling="avg", last_layer="conv5_2")
    outputs = small_nst.model(NST.preprocess(tf.constant(image)))
    for output, name in zip(outputs, ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1", "conv5_2"]):
        expected = reference[name].numpy()
        scale = np.abs(expected).max()
        assert scale > 0
        np.testing.assert_allclose(output.numpy() / scale, expected / scale, atol=1e-4, err_msg=name)


# --------------------------------------------------------------------------
# Task 2: gram_matrix

@pytest.mark.parametrize("bad", [np.zeros((1, 2, 2, 3), np.float32), tf.zeros((2, 2, 3)),
                                 tf.zeros((1, 1, 2, 2, 3))], ids=["ndarray", "rank-3", "rank-5"])
def test_gram_matrix_needs_rank_4_tensor(bad):
    with pytest.raises(TypeError, match=r"^input_layer must be a tensor of rank 4$"):
        NST.gram_matrix(bad)


def test_gram_matrix_hand_example():
    # Two positions with features (1, 2) and (3, 4): G = [[1+9, 2+12], [2+12, 4+16]] / 2.
    layer = tf.constant([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    gram = NST.gram_matrix(layer)
    assert tuple(gram.shape) == (1, 2, 2)
    np.testing.assert_allclose(gram.numpy(), [[[5.0, 7.0], [7.0, 10.0]]])


def test_gram_matrix_accepts_variables_and_has_shape_1_c_c():
    gram = NST.gram_matrix(tf.Variable(tf.random.uniform((1, 5, 6, 7))))
    assert tuple(gram.shape) == (1, 7, 7)
    np.testing.assert_allclose(gram.numpy()[0], gram.numpy()[0].T, rtol=1e-6)


# --------------------------------------------------------------------------
# Task 3: generate_features

def test_generate_features(small_nst):
    channels = [64, 128, 256, 512, 512]
    assert [tuple(g.shape) for g in small_nst.gram_style_features] == [(1, c, c) for c in channels]
    # The style image (1, 40, 64, 3) reaches block5_conv2 at (1, 2, 4, 512); the content crop (1, 64, 64, 3) at 4x4.
    assert tuple(small_nst.content_feature.shape) == (1, 4, 4, 512)


# --------------------------------------------------------------------------
# Task 4: layer_style_cost

@pytest.mark.parametrize("bad", [np.zeros((1, 2, 2, 3), np.float32), tf.zeros((2, 2, 3))], ids=["ndarray", "rank-3"])
def test_layer_style_cost_needs_rank_4_style_output(small_nst, bad):
    with pytest.raises(TypeError, match=r"^style_output must be a tensor of rank 4$"):
        small_nst.layer_style_cost(bad, tf.zeros((1, 3, 3)))


@pytest.mark.parametrize("bad", [np.zeros((1, 3, 3), np.float32), tf.zeros((1, 3, 4)), tf.zeros((3, 3)),
                                 tf.zeros((2, 3, 3))], ids=["ndarray", "1x3x4", "3x3", "2x3x3"])
def test_layer_style_cost_needs_gram_target_1_c_c(small_nst, bad):
    with pytest.raises(TypeError, match=r"^gram_target must be a tensor of shape \[1, 3, 3\]$"):
        small_nst.layer_style_cost(tf.zeros((1, 2, 2, 3)), bad)


def test_layer_style_cost_hand_example(small_nst):
    # G = [[5, 7], [7, 10]] (see the gram test); against a zero target: (25 + 49 + 49 + 100) / 2^2.
    layer = tf.constant([[[[1.0, 2.0], [3.0, 4.0]]]])
    cost = small_nst.layer_style_cost(layer, tf.zeros((1, 2, 2)))
    assert float(cost) == pytest.approx(223 / 4)
    assert float(small_nst.layer_style_cost(layer, NST.gram_matrix(layer))) == 0.0


# --------------------------------------------------------------------------
# Task 5: style_cost

@pytest.mark.parametrize("bad", ["tuple", "short", "long"])
def test_style_cost_needs_list_of_5(small_nst, bad):
    outputs = small_nst.model(NST.preprocess(small_nst.content_image))[:-1]
    bad_value = {"tuple": tuple(outputs), "short": list(outputs[:4]), "long": list(outputs) + [outputs[0]]}[bad]
    with pytest.raises(TypeError, match=r"^style_outputs must be a list with a length of 5$"):
        small_nst.style_cost(bad_value)


def test_style_cost_weights_are_equal_and_sum_to_1(small_nst):
    outputs = list(small_nst.model(NST.preprocess(small_nst.content_image)))[:-1]
    layer_costs = [float(small_nst.layer_style_cost(o, g)) for o, g in zip(outputs, small_nst.gram_style_features)]
    assert all(cost > 0 for cost in layer_costs)
    assert float(small_nst.style_cost(outputs)) == pytest.approx(np.mean(layer_costs), rel=1e-5)


def test_style_cost_of_style_image_is_zero(small_nst):
    outputs = list(small_nst.model(NST.preprocess(small_nst.style_image)))[:-1]
    assert float(small_nst.style_cost(outputs)) == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------
# Task 6: content_cost

@pytest.mark.parametrize("bad", ["ndarray", "shape"])
def test_content_cost_needs_content_feature_shape(small_nst, bad):
    value = np.zeros((1, 4, 4, 512), np.float32) if bad == "ndarray" else tf.zeros((1, 4, 5, 512))
    with pytest.raises(TypeError, match=r"^content_output must be a tensor of shape \(1, 4, 4, 512\)$"):
        small_nst.content_cost(value)


def test_content_cost_values(small_nst):
    assert float(small_nst.content_cost(small_nst.content_feature)) == 0.0
    # Every entry off by 2: mean of 2^2 over h * w * c entries.
    assert float(small_nst.content_cost(small_nst.content_feature + 2.0)) == pytest.approx(4.0, rel=1e-6)


# --------------------------------------------------------------------------
# Task 7 and 10: total_cost and variational_cost

@pytest.mark.parametrize("method", ["total_cost", "compute_grads"])
@pytest.mark.parametrize("bad", ["ndarray", "shape"])
def test_generated_image_must_have_content_shape(small_nst, method, bad):
    value = np.zeros((1, 64, 64, 3), np.float32) if bad == "ndarray" else tf.zeros((1, 64, 63, 3))
    with pytest.raises(TypeError, match=r"^generated_image must be a tensor of shape \(1, 64, 64, 3\)$"):
        getattr(small_nst, method)(value)


def test_total_cost_of_content_image(full_nst):
    # The content image against itself: content cost 0, the rest from style and variation.
    J, J_content, J_style, J_var = full_nst.total_cost(full_nst.content_image)
    assert float(J_content) == 0.0
    assert float(J_style) > 0 and float(J_var) > 0
    assert float(J) == pytest.approx(1 * float(J_style) + 10 * float(J_var), rel=1e-6)


def test_total_cost_combines_weights(small_class, style_array, content_array):
    crop = np.ascontiguousarray(content_array[300:364, 400:464])
    nst = small_class(style_array, crop, alpha=2, beta=3, var=0.5)
    image = tf.clip_by_value(nst.content_image + 0.1, 0, 1)
    J, J_content, J_style, J_var = nst.total_cost(image)
    assert float(J_content) > 0
    assert float(J) == pytest.approx(2 * float(J_content) + 3 * float(J_style) + 0.5 * float(J_var), rel=1e-6)


def test_variational_cost_hand_example():
    # One channel, [[0, 1], [3, 7]]: vertical |3-0| + |7-1| = 9, horizontal |1-0| + |7-3| = 5.
    image = tf.constant([[[[0.0], [1.0]], [[3.0], [7.0]]]])  # (1, 2, 2, 1)
    assert float(NST.variational_cost(image)) == 14.0
    assert float(NST.variational_cost(tf.zeros((1, 5, 6, 3)))) == 0.0


def test_variational_cost_matches_tf_total_variation():
    image = tf.random.stateless_uniform((1, 9, 11, 3), seed=(1, 2))
    expected = tf.image.total_variation(image)[0]
    assert float(NST.variational_cost(image)) == pytest.approx(float(expected), rel=1e-6)


# --------------------------------------------------------------------------
# Task 8: compute_grads

def test_compute_grads_matches_finite_difference(small_class, style_array, content_array):
    crop = np.ascontiguousarray(content_array[300:364, 400:464])
    nst = small_class(style_array, crop, alpha=1, beta=1, var=0)
    image = tf.Variable(tf.clip_by_value(nst.content_image + 0.05, 0, 1))
    # The spec's four values (task 8), in the final form too.
    gradients, J_total, J_content, J_style = nst.compute_grads(image)
    assert tuple(gradients.shape) == (1, 64, 64, 3)
    J, expected_content, expected_style, _ = nst.total_cost(image)
    assert float(J_content) == pytest.approx(float(expected_content), rel=1e-6)
    assert float(J_style) == pytest.approx(float(expected_style), rel=1e-6)
    assert float(J_total) == pytest.approx(float(nst.total_cost(image)[0]), rel=1e-6)
    # Directional derivative along the gradient, by central differences.
    direction = gradients / tf.norm(gradients)
    eps = 1e-2
    plus = float(nst.total_cost(image + eps * direction)[0])
    minus = float(nst.total_cost(image - eps * direction)[0])
    assert (plus - minus) / (2 * eps) == pytest.approx(float(tf.norm(gradients)), rel=0.05)


# --------------------------------------------------------------------------
# Task 9 and 10: generate_image

GENERATE_ERRORS = [
    ({"iterations": 1.0}, TypeError, "iterations must be an integer"),
    ({"iterations": "5"}, TypeError, "iterations must be an integer"),
    ({"iterations": 0}, ValueError, "iterations must be positive"),
    ({"iterations": -3}, ValueError, "iterations must be positive"),
    ({"iterations": 5, "step": 1.0}, TypeError, "step must be an integer"),
    ({"iterations": 5, "step": "1"}, TypeError, "step must be an integer"),
    # Task 10's wording (task 9 said "step must be ..."): see neural_style's docstring.
    ({"iterations": 5, "step": 0}, ValueError, "iterations must be positive and less than iterations"),
    ({"iterations": 5, "step": -1}, ValueError, "iterations must be positive and less than iterations"),
    ({"iterations": 5, "step": 5}, ValueError, "iterations must be positive and less than iterations"),
    ({"iterations": 5, "step": 6}, ValueError, "iterations must be positive and less than iterations"),
    ({"lr": "0.1"}, TypeError, "lr must be a number"),
    ({"lr": None}, TypeError, "lr must be a number"),
    ({"lr": 0}, ValueError, "lr must be positive"),
    ({"lr": -0.5}, ValueError, "lr must be positive"),
    ({"beta1": 1}, TypeError, "beta1 must be a float"),
    ({"beta1": "0.9"}, TypeError, "beta1 must be a float"),
    ({"beta1": 1.5}, ValueError, r"beta1 must be in the range \[0, 1\]"),
    ({"beta1": -0.1}, ValueError, r"beta1 must be in the range \[0, 1\]"),
    ({"beta2": 0}, TypeError, "beta2 must be a float"),
    ({"beta2": "0.99"}, TypeError, "beta2 must be a float"),
    ({"beta2": 1.01}, ValueError, r"beta2 must be in the range \[0, 1\]"),
    ({"beta2": -0.5}, ValueError, r"beta2 must be in the range \[0, 1\]"),
]


@pytest.mark.parametrize("kwargs, error, message", GENERATE_ERRORS,
                         ids=["-".join("{}={!r}".format(k, v) for k, v in case[0].items()) for case in GENERATE_ERRORS])
def test_generate_image_validation(small_nst, kwargs, error, message):
    with pytest.raises(error, match="^{}$".format(message)):
        small_nst.generate_image(**kwargs)


def test_adam_update_matches_keras_adam():
    """Four steps of neural_style.adam_update equal tf.keras.optimizers.Adam's on the same gradients."""
    lr, beta1, beta2 = 0.02, 0.8, 0.95
    rng = np.random.RandomState(3)
    start = rng.rand(1, 6, 7, 3).astype(np.float32)
    gradients = [rng.randn(1, 6, 7, 3).astype(np.float32) * scale for scale in (1.0, 0.1, 3.0, 0.5)]
    ours = tf.Variable(start)
    m, v, t = tf.Variable(tf.zeros_like(start)), tf.Variable(tf.zeros_like(start)), tf.Variable(0.0)
    theirs = tf.Variable(start)
    optimizer = tf.keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2, epsilon=1e-7)
    for g in gradients:
        neural_style.adam_update(ours, m, v, t, tf.constant(g), tf.constant(lr), tf.constant(beta1),
                                 tf.constant(beta2))
        optimizer.apply_gradients([(tf.constant(g), theirs)])
    assert np.abs(ours.numpy() - start).max() > 0.05  # it moved
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-6)


def test_adam_update_with_beta1_equal_1_does_not_move():
    variable = tf.Variable(tf.ones((2, 2)))
    zeros = tf.zeros((2, 2))
    neural_style.adam_update(variable, tf.Variable(zeros), tf.Variable(zeros), tf.Variable(0.0),
                             tf.fill((2, 2), 3.0), 0.1, 1.0, 0.99)
    np.testing.assert_array_equal(variable.numpy(), np.ones((2, 2)))


def test_generate_image_real_run(small_nst, capsys):
    """A short run from the content image: progress lines, costs at iteration 0, lower cost, best image."""
    iterations, step = 6, 2
    image, cost = small_nst.generate_image(iterations=iterations, step=step)
    lines = capsys.readouterr().out.strip().splitlines()
    matches = [PROGRESS.match(line) for line in lines]
    assert all(matches), lines
    values = [[float(x) for x in m.groups()[1:]] for m in matches]
    assert [int(m.group(1)) for m in matches] == [0, 2, 4, 6]

    # Iteration 0 is the content image itself: content 0, other costs as computed directly.
    total0, content0, style0, var0 = values[0]
    assert content0 == 0.0
    J, _, J_style, J_var = small_nst.total_cost(small_nst.content_image)
    assert style0 == pytest.approx(float(J_style), rel=1e-5)
    assert var0 == pytest.approx(float(J_var), rel=1e-5)
    assert total0 == pytest.approx(small_nst.beta * style0 + small_nst.var * var0, rel=1e-6)

    totals = [v[0] for v in values]
    assert totals[-1] < totals[0]
    assert all(v[1] > 0 for v in values[1:])  # the image moved away from the content
    assert float(cost) <= min(totals)

    assert image.shape == tuple(small_nst.content_image.shape[1:]) == (64, 64, 3)
    assert image.min() >= 0.0 and image.max() <= 1.0
    # The returned cost is that of the returned image.
    assert float(small_nst.total_cost(tf.constant(image[np.newaxis]))[0]) == pytest.approx(float(cost), rel=1e-5)


def test_generate_image_prints_nothing_without_step_and_traces_once(small_nst, capsys):
    small_nst.generate_image(iterations=2, lr=0.05)
    small_nst.generate_image(iterations=3, step=1, lr=0.01, beta1=0.5, beta2=0.9)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [int(PROGRESS.match(line).group(1)) for line in lines] == [0, 1, 2, 3]
    assert small_nst._step_function.experimental_get_tracing_count() == 1
