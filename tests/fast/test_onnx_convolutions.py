"""nst.fast.onnx_network's conv algorithms on ONNX Runtime equal a reflection-padded 3x3 conv, up to float rounding.

The reference is computed here in float64 with NumPy (np.pad 'reflect' is torch's ReflectionPad2d), so it
shares no code with the graphs under test.  Random inputs and kernels, odd and even sizes, sizes that are
not a multiple of Winograd's 4-pixel tile and sizes smaller than one tile.  The bound is the one of
tests/fast/test_fastconv.py for F(4x4, 3x3) (its transforms carry factors up to 8 and 1/24).
"""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from nst.fast import onnx_network  # noqa: E402

TOLERANCE = 5e-5  # of the output's largest value; measured: up to 1e-5 for winograd4, 1e-6 otherwise
SIZES = [(8, 8), (9, 7), (6, 11), (2, 3), (3, 2), (5, 13)]


def _case(height, width, channels_in, channels_out, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, channels_in, height, width)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, channels_in, channels_out)) * (2.0 / (9 * channels_in)) ** 0.5
    return x, kernel.astype(np.float32), (rng.standard_normal(channels_out) * 0.1).astype(np.float32)


def _reference(x, kernel, bias, relu):
    """Reflection pad by one, 3x3 'valid' conv, bias, ReLU, in float64: [1, in, h, w] -> [1, out, h, w]."""
    padded = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (1, 1), (1, 1)], mode="reflect")
    height, width = x.shape[2:]
    y = sum(np.einsum("nchw,co->nohw", padded[:, :, i:i + height, j:j + width], kernel[i, j].astype(np.float64))
            for i in range(3) for j in range(3)) + bias.reshape(1, -1, 1, 1)
    return np.maximum(y, 0) if relu else y


def _run(model, x):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _assert_close(result, reference):
    assert result.shape == reference.shape
    assert np.abs(result - reference).max() <= TOLERANCE * np.abs(reference).max()


@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("channels_in, channels_out", [(128, 128), (256, 64), (16, 256)])
def test_winograd4_equals_a_direct_conv(height, width, channels_in, channels_out):
    x, kernel, bias = _case(height, width, channels_in, channels_out)
    _assert_close(_run(onnx_network.conv_model(kernel, bias, "winograd4"), x), _reference(x, kernel, bias, True))


@pytest.mark.parametrize("height, width", SIZES + [(1, 1), (1, 4)])
@pytest.mark.parametrize("relu", [True, False])
def test_upsampled_equals_upsampling_then_a_direct_conv(height, width, relu):
    x, kernel, bias = _case(height, width, 32, 24, seed=1)
    upsampled = np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)
    _assert_close(_run(onnx_network.conv_model(kernel, bias, "upsampled", relu), x),
                  _reference(upsampled, kernel, bias, relu))


@pytest.mark.parametrize("height, width", SIZES)
def test_the_direct_graph_is_the_reference_conv(height, width):
    x, kernel, bias = _case(height, width, 3, 64, seed=2)
    _assert_close(_run(onnx_network.conv_model(kernel, bias, "direct", relu=False), x),
                  _reference(x, kernel, bias, False))


def test_choice_per_layer():
    """Winograd where both sides are wide and one has 256 channels, the upsampling folded after an upsampling,
    direct otherwise."""
    choose = onnx_network.onnx_algorithm
    assert [choose(512, 256, False, "auto"), choose(128, 256, False, "auto"), choose(64, 128, False, "auto"),
            choose(3, 64, False, "auto"), choose(64, 64, True, "auto"), choose(256, 256, False, "direct"),
            choose(64, 64, True, "direct"), choose(128, 128, False, "auto")] == [
        "winograd4", "winograd4", "direct", "direct", "upsampled", "direct", "direct", "direct"]
