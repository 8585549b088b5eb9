"""nst.fast.convolutions: every conv algorithm equals reflection padding + tf.nn.conv2d up to float rounding.

Random inputs and kernels of several channel counts, on odd and even sizes,
plain and under XLA (jit_compile, how the fast mode runs Winograd).  The bound:
float32's epsilon (1.2e-7) times the square root of the terms summed per output
(9 x 256 at most here, about 48), rounded up to 1e-5 of the output's largest value;
measured differences are 3e-7 to 8e-7 of it.  The Winograd grid is exhaustive only
with the slow tests (`make test-slow`); the default suite runs a cross-section of it.
"""

import numpy as np
import pytest

from nst.fast import convolutions as fastconv, network as fastnet

pytestmark = pytest.mark.host  # numbers that depend on the CPU's kernels and flags

tf = pytest.importorskip("tensorflow")
RELATIVE_TOLERANCE = 1e-5
# F(4x4, 3x3)'s transforms carry factors up to 8 and 1/24 and lose more: measured up to 1.1e-5.
WINOGRAD4_TOLERANCE = 5e-5


def _case(height, width, channels_in, channels_out, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, height, width, channels_in)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, channels_in, channels_out)) * (2.0 / (9 * channels_in)) ** 0.5
    bias = rng.standard_normal(channels_out) * 0.1
    return x, kernel.astype(np.float32), bias.astype(np.float32)


def _reference(x, kernel, bias, relu, upsample=False):
    if upsample:
        x = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)
    return fastconv.direct_conv(tf, tf.constant(x), tf.constant(kernel), tf.constant(bias), relu=relu).numpy()


def _run(algorithm, x, kernel, bias, relu, jit=False):
    conv = fastconv.PreparedConv(tf, kernel, bias, algorithm, tf.float32, relu=relu)
    function = tf.function(lambda image: conv(tf, image), jit_compile=jit)
    return function(tf.constant(x)).numpy()


def _assert_close(result, reference, tolerance=RELATIVE_TOLERANCE):
    assert result.shape == reference.shape
    assert np.abs(result - reference).max() <= tolerance * np.abs(reference).max()


SIZES = [(8, 8), (9, 7), (6, 11), (2, 3), (3, 2), (5, 10)]  # multiples of 2 and 4 or not; the smallest
WINOGRAD_SHAPES = [(h, w, False) for h, w in SIZES] + [(9, 7, True), (3, 2, True)]  # (height, width, jit)
WINOGRAD_CHANNELS = [(3, 8), (16, 16), (128, 64), (256, 256)]
# The default suite's share of the grid: fewer inputs than outputs, and the 256-channel layers where the
# fast mode picks winograd4 (the widest sum, so the loosest rounding); a size that is a multiple of 4,
# an odd one, one even but not a multiple of 4, one smaller than a tile; odd and tiny under XLA.
# The rest of the grid (about 35 s of the file's 60 s) runs with the slow tests.
WINOGRAD_DEFAULT = {"channels": [(3, 8), (256, 256)],
                    "shapes": [(8, 8, False), (9, 7, False), (6, 11, False), (2, 3, False), (9, 7, True),
                               (3, 2, True)]}


def _winograd_grid():
    for algorithm in ("winograd", "winograd4"):
        for channels in WINOGRAD_CHANNELS:
            for shape in WINOGRAD_SHAPES:
                exhaustive = channels not in WINOGRAD_DEFAULT["channels"] or shape not in WINOGRAD_DEFAULT["shapes"]
                yield pytest.param(algorithm, *channels, *shape, marks=[pytest.mark.slow] if exhaustive else [])


@pytest.mark.parametrize("algorithm,channels_in,channels_out,height,width,jit", list(_winograd_grid()))
def test_winograd_equals_conv2d(algorithm, height, width, channels_in, channels_out, jit):
    x, kernel, bias = _case(height, width, channels_in, channels_out)
    tolerance = WINOGRAD4_TOLERANCE if algorithm == "winograd4" else RELATIVE_TOLERANCE
    _assert_close(_run(algorithm, x, kernel, bias, relu=False, jit=jit), _reference(x, kernel, bias, relu=False),
                  tolerance)


@pytest.mark.parametrize("height,width,jit", [(8, 8, False), (9, 7, False), (1, 5, False), (4, 13, False),
                                              (9, 7, True)])
@pytest.mark.parametrize("channels_in,channels_out", [(3, 4), (64, 64), (256, 128)])
def test_upsampled_equals_upsample_then_conv2d(height, width, channels_in, channels_out, jit):
    # Upsampled first, so even one row reflects: the 2x image has two.
    x, kernel, bias = _case(height, width, channels_in, channels_out, seed=1)
    _assert_close(_run("upsampled", x, kernel, bias, relu=True, jit=jit),
                  _reference(x, kernel, bias, relu=True, upsample=True))


@pytest.mark.parametrize("algorithm,channels_in,channels_out",
                         [("few_outputs", 64, 3), ("few_outputs", 8, 1), ("few_inputs", 3, 64), ("few_inputs", 1, 16)])
@pytest.mark.parametrize("height,width", [(8, 8), (7, 9), (2, 3)])
@pytest.mark.parametrize("relu", [False, True])
def test_few_channel_paths_equal_conv2d(algorithm, channels_in, channels_out, height, width, relu):
    x, kernel, bias = _case(height, width, channels_in, channels_out, seed=2)
    _assert_close(_run(algorithm, x, kernel, bias, relu=relu), _reference(x, kernel, bias, relu=relu))


def test_kernel_transforms_match_their_definitions():
    kernel = np.random.default_rng(3).standard_normal((3, 3, 2, 5))
    u = fastconv.winograd_kernel(kernel).reshape(4, 4, 2, 5)
    # G g G^T written out for one channel pair, G from Lavin and Gray's paper.
    g = kernel[:, :, 1, 4]
    G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    np.testing.assert_allclose(u[:, :, 1, 4], G @ g @ G.T)
    # Upsampled kernel, sub-pixel (1, 0) = even output row, odd output column: the
    # 2x2 window's rows get kernel rows {0} and {1, 2}, its columns {0, 1} and {2}.
    k2 = fastconv.upsampled_kernel(kernel).reshape(2, 2, 2, 2, 2, 5)[:, :, 0, 1, 0, 2]
    k = kernel[:, :, 0, 2]
    expected = [[k[0, 0] + k[0, 1], k[0, 2]],
                [k[1, 0] + k[2, 0] + k[1, 1] + k[2, 1], k[1, 2] + k[2, 2]]]
    np.testing.assert_allclose(k2, expected)


def test_choice_per_layer():
    assert fastconv.choose(256, 256, after_upsample=True, compiled=False) == "upsampled"
    assert fastconv.choose(64, 3, after_upsample=False, compiled=True) == "few_outputs"
    assert fastconv.choose(3, 64, after_upsample=False, compiled=True) == "few_inputs"
    assert fastconv.choose(256, 256, after_upsample=False, compiled=True) == "winograd4"
    assert fastconv.choose(64, 64, after_upsample=False, compiled=True) == "direct"
    assert fastconv.choose(256, 256, after_upsample=False, compiled=False) == "direct"  # unfused transforms lose
    encoder, decoder = fastnet.conv_algorithms([(3, 3, 256, 256)], [(3, 3, 256, 256)] * 2, "bf16", "auto", True)
    assert encoder + decoder == ["direct"] * 3  # bfloat16 keeps tf.nn.conv2d


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="unknown convolution algorithm"):
        fastconv.PreparedConv(tf, np.zeros((3, 3, 1, 1)), np.zeros(1), "fft", tf.float32)


def test_compile_on_repeat_switches_per_shape(monkeypatch):
    monkeypatch.setattr(fastnet, "COMPILE_AFTER", 2)
    calls = []
    runner = fastnet.CompileOnRepeat(lambda a: calls.append("plain"), lambda a: calls.append("compiled"))
    small, large = np.zeros((1, 4, 4, 3)), np.zeros((1, 8, 8, 3))
    for array in (small, small, large, small, small, large):
        runner(array)
    assert calls == ["plain", "plain", "plain", "compiled", "compiled", "plain"]
    only = fastnet.CompileOnRepeat(lambda a: "plain")
    assert [only(small) for _ in range(4)] == ["plain"] * 4
