"""The assignment's test cells, run as written, print the course's expected outputs.

They run in this (eager) process: each cell's ``with tf.Session()`` puts its graph in
graph mode, as the notebook's process is after ``import nst_utils``.  Importing
nst_utils itself, which switches eager execution off for good, happens only in a
subprocess here, so the eager tests (tests/eager) can share this process.
"""

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# The assignment's test cells, verbatim (seeds/coursera_nst_notebook_v2.md).
CONTENT_CELL = '''
tf.reset_default_graph()

with tf.Session() as test:
    tf.set_random_seed(1)
    a_C = tf.random_normal([1, 4, 4, 3], mean=1, stddev=4)
    a_G = tf.random_normal([1, 4, 4, 3], mean=1, stddev=4)
    J_content = compute_content_cost(a_C, a_G)
    print("J_content = " + str(J_content.eval()))
'''
GRAM_CELL = '''
tf.reset_default_graph()

with tf.Session() as test:
    tf.set_random_seed(1)
    A = tf.random_normal([3, 2*1], mean=1, stddev=4)
    GA = gram_matrix(A)
    
    print("GA = " + str(GA.eval()))
'''
STYLE_LAYER_CELL = '''
tf.reset_default_graph()

with tf.Session() as test:
    tf.set_random_seed(1)
    a_S = tf.random_normal([1, 4, 4, 3], mean=1, stddev=4)
    a_G = tf.random_normal([1, 4, 4, 3], mean=1, stddev=4)
    J_style_layer = compute_layer_style_cost(a_S, a_G)
    
    print("J_style_layer = " + str(J_style_layer.eval()))
'''
TOTAL_CELL = '''
tf.reset_default_graph()

with tf.Session() as test:
    np.random.seed(3)
    J_content = np.random.randn()    
    J_style = np.random.randn()
    J = total_cost(J_content, J_style)
    print("J = " + str(J))
'''
EXPECTED_GA = np.array([[6.42230511, -4.42912197, -2.09668207],
                        [-4.42912197, 19.46583748, 19.56387138],
                        [-2.09668207, 19.56387138, 20.6864624]])


# The assignment's expected output of the gram_matrix cell, as the course printed it.
COURSE_GA_PRINT = ("GA = [[  6.42230511  -4.42912197  -2.09668207]\n"
                   " [ -4.42912197  19.46583748  19.56387138]\n"
                   " [ -2.09668207  19.56387138  20.6864624 ]]")


ROOT = Path(__file__).resolve().parents[2]


def run_cell(source):
    import tensorflow.compat.v1 as tf

    from nst.classroom import GRADED_COST_FUNCTIONS, course

    namespace = {"tf": tf, "np": np, **{name: getattr(course, name) for name in GRADED_COST_FUNCTIONS}}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(source, namespace)
    return printed.getvalue().strip()


@pytest.fixture
def course_compat():
    from nst.classroom.tf1_compat import disable_course_compat, enable_course_compat

    enable_course_compat()
    yield
    disable_course_compat()


def test_content_cost_cell(course_compat):
    assert run_cell(CONTENT_CELL) == "J_content = 6.76559"


def test_layer_style_cost_cell(course_compat):
    assert run_cell(STYLE_LAYER_CELL) == "J_style_layer = 9.19028"


def test_total_cost_cell(course_compat):
    assert run_cell(TOTAL_CELL) == "J = 35.34667875478276"


def test_gram_matrix_cell(course_compat):
    printed = run_cell(GRAM_CELL)
    # NumPy 1.13's layout, as the course printed it: every digit may vary (see below), every
    # space, sign, bracket and point must sit where the course's did.
    assert re.sub(r"\d", "9", printed) == re.sub(r"\d", "9", COURSE_GA_PRINT), printed
    values = np.array([float(x) for x in re.findall(r"-?\d+\.\d+", printed)]).reshape(3, 3)
    # Six of nine entries agree to all 8 printed decimals; the rest differ by at most
    # 2 float32 ulps (the course printed below float32 resolution; see README).
    assert np.sum(np.abs(values - EXPECTED_GA) < 5e-9) >= 6
    np.testing.assert_allclose(values, EXPECTED_GA, rtol=0, atol=5e-7)


def test_course_print_mode_trims_each_elements_zeros_and_undoes():
    from nst.classroom.tf1_compat import disable_course_compat, enable_course_compat

    before = str(np.array([1.0, 0.5]))
    enable_course_compat()
    try:
        # NumPy 1.13's own outputs (its documentation's examples of the old style).
        assert repr(np.array([1.0, 0.5])) == "array([ 1. ,  0.5])"
        assert str(np.array([1.0, 0.5])) == "[ 1.   0.5]"
    finally:
        disable_course_compat()
    assert str(np.array([1.0, 0.5])) == before == "[1.  0.5]"


def test_tf1_seeds_are_scoped():
    """Without the compat layer TF 2's own seeds apply (J_content 7.641...); with it, TF 1's."""
    from nst.classroom.tf1_compat import tf1_op_seeds

    plain = run_cell(CONTENT_CELL)
    with tf1_op_seeds():
        inside = run_cell(CONTENT_CELL)
    after = run_cell(CONTENT_CELL)
    assert float(inside.split("=")[1]) == pytest.approx(6.76559, abs=5e-6)
    assert float(plain.split("=")[1]) == pytest.approx(7.641, abs=1e-3)
    assert after == plain


def test_course_functions_match_numpy_on_other_shapes():
    """Hidden-case style check: a non-square activation, against NumPy formulas."""
    import tensorflow.compat.v1 as tf

    from nst.classroom import course

    rng = np.random.default_rng(5)
    a_S, a_G = rng.normal(1, 4, (2, 1, 3, 5, 7)).astype(np.float32)
    tf.reset_default_graph()
    with tf.Session() as sess:
        content, style = sess.run([course.compute_content_cost(tf.constant(a_S), tf.constant(a_G)),
                                   course.compute_layer_style_cost(tf.constant(a_S), tf.constant(a_G))])
    n_H, n_W, n_C = 3, 5, 7
    assert content == pytest.approx(((a_S - a_G) ** 2).sum() / (4 * n_H * n_W * n_C), rel=1e-5)
    unroll = lambda a: a.reshape(n_H * n_W, n_C).T.astype(np.float64)  # noqa: E731
    gram = lambda a: unroll(a) @ unroll(a).T  # noqa: E731
    assert style == pytest.approx(((gram(a_S) - gram(a_G)) ** 2).sum() / (4 * n_C ** 2 * (n_H * n_W) ** 2), rel=1e-4)


def test_load_vgg_model_dict(weights_path):
    import tensorflow.compat.v1 as tf

    from nst.classroom.course_utils import load_vgg_model

    with tf.Graph().as_default():  # a fresh graph: the names below are its first ops'
        model = load_vgg_model(str(weights_path), height=60, width=80)
    expected = {"input"} | {f"conv{b}_{i}" for b, n in zip(range(1, 6), (2, 2, 4, 4, 4)) for i in range(1, n + 1)} \
        | {f"avgpool{b}" for b in range(1, 6)}
    assert set(model) == expected
    assert str(model["input"]) == "<tf.Variable 'Variable:0' shape=(1, 60, 80, 3) dtype=float32_ref>"
    assert model["conv1_1"].name == "Relu:0" and model["avgpool5"].name == "AvgPool_4:0"
    assert model["conv4_2"].shape.as_list() == [1, 8, 10, 512]


@pytest.mark.slow
def test_course_pipeline_end_to_end(tmp_path, weights_path, sample_pair):
    """Real weights, the sample pair at 400x300, a few Adam steps: cost falls, images are written."""
    import imageio.v3 as iio

    from nst.classroom import course, course_utils

    image, history = course.run_course_pipeline(*sample_pair, num_iterations=21, output_dir=tmp_path, seed=1)
    costs = [total for _, total, _, _ in history]
    assert [i for i, *_ in history] == [0, 20]
    assert costs[1] < 0.7 * costs[0]
    saved = iio.imread(tmp_path / "generated_image.jpg")
    assert saved.shape == (300, 400, 3)
    content = course_utils.load_image(sample_pair[0])
    assert np.abs(saved.astype(float) - content).mean() > 5  # stylised, not the input
    assert (tmp_path / "0.png").exists() and (tmp_path / "20.png").exists()
    assert image.shape == (1, 300, 400, 3)


def test_crop_to_aspect_takes_the_centre():
    from nst.classroom.course_utils import crop_to_aspect

    image = np.arange(100 * 160 * 3).reshape(100, 160, 3)  # 16:10
    # 4:3 from a height of 100: width round(133.3) = 133, (160 - 133) // 2 = 13 columns off the left.
    np.testing.assert_array_equal(crop_to_aspect(image, 400, 300), image[:, 13:146])
    # 4:3 from a width of 160 (too tall at 160x200): height 120, 40 rows off the top.
    tall = np.zeros((200, 160, 3))
    assert crop_to_aspect(tall, 4, 3).shape == (120, 160, 3)
    assert crop_to_aspect(image[:90, :120], 4, 3).shape == (90, 120, 3)  # already 4:3


def test_load_image_crops_instead_of_squeezing(tmp_path):
    from nst.io.images import save_rgb
    from nst.classroom.course_utils import load_image

    # A 16:10 picture: red bands 16 px wide at each side, grey between.  A 4:3 centre crop keeps
    # columns 13..145, so 3 px of red on the left and 2 on the right: 9 and 6 px at 400x300.
    picture = np.full((100, 160, 3), 128, dtype=np.uint8)
    picture[:, :16] = picture[:, -16:] = (255, 0, 0)
    save_rgb(tmp_path / "wide.png", picture)
    loaded = load_image(tmp_path / "wide.png")
    assert loaded.shape == (300, 400, 3)
    red = (loaded[150, :, 0] > 200) & (loaded[150, :, 1] < 60)
    # Squeezed, the bands would be 16 * 400 / 160 = 40 px wide.
    assert 7 <= red[:40].sum() <= 11 and 4 <= red[-40:].sum() <= 8


def test_only_nst_utils_switches_eager_off_and_it_reexports_the_course_api():
    """Importing every nst module leaves eager mode on; ``from nst_utils import *`` gives the course's names."""
    code = ("import pkgutil, importlib, tensorflow as tf, nst\n"
            "for info in pkgutil.walk_packages(nst.__path__, 'nst.'):\n"
            "    if not info.name.endswith('__main__'):\n"
            "        importlib.import_module(info.name)\n"
            "assert tf.executing_eagerly(), 'an nst module switched eager execution off'\n"
            "namespace = {}\n"
            "exec('from nst_utils import *', namespace)\n"
            "assert not tf.executing_eagerly()\n"
            "print(sorted(name for name in namespace if not name.startswith('_')))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # The course's API (seeds/coursera_nst_notebook_v2.md) and what the notebook's cells use.
    assert result.stdout.split("\n")[-2] == str(sorted(
        ["CONFIG", "Path", "build_vgg19", "crop_to_aspect", "generate_noise_image", "load_image",
         "load_vgg_model", "np", "reshape_and_normalize_image", "save_image", "tf"]))


def test_course_pipeline_runs_in_an_eager_process(tmp_path, weights_path, sample_pair):
    """run_course_pipeline builds its TF 1 graph in a graph of its own: eager mode stays on around it."""
    import tensorflow as tf

    from nst.classroom import course, course_utils

    saved = (course_utils.CONFIG.IMAGE_WIDTH, course_utils.CONFIG.IMAGE_HEIGHT)
    course_utils.CONFIG.IMAGE_WIDTH, course_utils.CONFIG.IMAGE_HEIGHT = 48, 32
    try:
        image, history = course.run_course_pipeline(*sample_pair, num_iterations=2, output_dir=tmp_path, seed=1)
    finally:
        course_utils.CONFIG.IMAGE_WIDTH, course_utils.CONFIG.IMAGE_HEIGHT = saved
    assert tf.executing_eagerly()
    assert image.shape == (1, 32, 48, 3) and [row[0] for row in history] == [0]
    assert (tmp_path / "generated_image.jpg").is_file()
