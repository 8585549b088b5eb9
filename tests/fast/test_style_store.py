"""Style statistics kept on disk between processes: nst.fast.style_store and FastStylizer(style_store=...)."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from nst.fast import stylizer as fast, style_store
from nst.io import images

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adain"
CHANNELS = 512  # relu4_1


def _stats(seed):
    generator = np.random.default_rng(seed)
    return generator.normal(size=CHANNELS), generator.uniform(0.5, 2.0, size=CHANNELS)


def test_statistics_come_back_bit_for_bit(tmp_path):
    store = style_store.StyleStore(tmp_path / "styles", "net", CHANNELS)
    mean, std = _stats(0)
    assert store.get("a" * 32) is None
    store.put("a" * 32, mean, std)
    got = store.get("a" * 32)
    assert got is not None and got[0].tobytes() == mean.tobytes() and got[1].tobytes() == std.tobytes()
    assert list((tmp_path / "styles").iterdir()) == [store.path("a" * 32)]  # no temporary left


class _MakesFolder:
    """Unpickling this makes a folder: the sign that a file was unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "pickled", "wrong shape", "not finite", "zero std"])
def test_a_damaged_or_foreign_file_is_ignored_and_replaced(tmp_path, damage):
    store, key = style_store.StyleStore(tmp_path, "net", CHANNELS), "b" * 32
    path = store.path(key)
    mean, std = _stats(1)
    store.put(key, mean, std)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "garbage":
        path.write_bytes(os.urandom(1000))
    elif damage == "pickled":  # an object array needs pickle, which the store never unpickles
        payload = np.empty(CHANNELS, dtype=object)
        payload[:] = [_MakesFolder(tmp_path / "unpickled")] * CHANNELS
        np.savez(path, mean=payload, std=std)
    elif damage == "wrong shape":
        np.savez(path, mean=mean[:100], std=std[:100])
    elif damage == "not finite":
        np.savez(path, mean=np.where(np.arange(CHANNELS) == 7, np.nan, mean), std=std)
    else:
        np.savez(path, mean=mean, std=np.where(np.arange(CHANNELS) == 3, 0.0, std))
    assert store.get(key) is None
    assert not (tmp_path / "unpickled").exists()
    store.put(key, mean, std)
    assert store.get(key)[0].tobytes() == mean.tobytes()


def test_the_newest_files_are_kept_and_a_read_counts_as_use(tmp_path):
    store = style_store.StyleStore(tmp_path, "net", CHANNELS, keep=3)
    keys = [str(i) * 32 for i in range(5)]
    for age, key in enumerate(keys[:3]):
        store.put(key, *_stats(age))
        os.utime(store.path(key), ns=(age * 10**9, age * 10**9))  # oldest first, a second apart
    assert store.get(keys[0]) is not None  # read now: the newest
    store.put(keys[3], *_stats(3))
    store.put(keys[4], *_stats(4))
    assert sorted(tmp_path.glob("*.npz")) == sorted(store.path(key) for key in (keys[0], keys[3], keys[4]))


def test_an_unwritable_folder_only_costs_time(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = style_store.StyleStore(blocker / "styles", "net", CHANNELS)
    store.put("c" * 32, *_stats(2))  # no exception
    assert store.get("c" * 32) is None


def test_the_file_names_the_network_and_the_pixels(tmp_path):
    onnx_fp32 = style_store.StyleStore(tmp_path, "weights onnx fp32 auto", CHANNELS)
    openvino_bf16 = style_store.StyleStore(tmp_path, "weights openvino bf16 auto", CHANNELS)
    assert onnx_fp32.path("p" * 64) != openvino_bf16.path("p" * 64)
    assert onnx_fp32.path("p" * 64) != onnx_fp32.path("q" * 64)
    onnx_fp32.put("p" * 64, *_stats(5))
    assert openvino_bf16.get("p" * 64) is None and onnx_fp32.get("p" * 64) is not None


# ----------------------------------------------------------------------
# The stylizer with the real weights (ONNX Runtime: float32 on every kind of host)

@pytest.fixture(scope="module")
def pair():
    case = json.loads((FIXTURES / "manifest.json").read_text())["cases"][0]
    return images.read_rgb(FIXTURES / case["content"]), images.read_rgb(FIXTURES / case["styles"][0])


def _counting(stylizer):
    shapes = []
    original = stylizer.encode
    stylizer.encode = lambda image: shapes.append(image.shape[:2]) or original(image)
    return shapes


def test_a_second_process_reads_the_painting_instead_of_encoding_it(fast_paths, pair, tmp_path):
    content, style = pair
    plain = fast.FastStylizer(*fast_paths, runtime="onnx").stylize(content, [style])
    first = fast.FastStylizer(*fast_paths, runtime="onnx", style_store=tmp_path)
    first_shapes = _counting(first)
    assert first.stylize(content, [style]).tobytes() == plain.tobytes()
    assert first_shapes == [style.shape[:2], content.shape[:2]]
    assert len(list(tmp_path.glob("*.npz"))) == 1

    second = fast.FastStylizer(*fast_paths, runtime="onnx", style_store=tmp_path)  # a new stylizer, as a new process
    second_shapes = _counting(second)
    assert second.stylize(content, [style]).tobytes() == plain.tobytes()
    assert second_shapes == [content.shape[:2]]  # the style's statistics came from the file
    second.stylize(content, [style[::-1].copy()])  # another painting: encoded and stored
    assert second_shapes[-2] == style.shape[:2] and len(list(tmp_path.glob("*.npz"))) == 2


def test_another_precision_does_not_read_the_float32_statistics(fast_paths, pair, tmp_path):
    pytest.importorskip("openvino")
    content, style = pair
    fast.FastStylizer(*fast_paths, runtime="onnx", style_store=tmp_path).stylize(content, [style])
    other = fast.FastStylizer(*fast_paths, runtime="openvino", precision="bf16", style_store=tmp_path)
    shapes = _counting(other)
    other.stylize(content, [style])
    assert shapes[0] == style.shape[:2]  # encoded: the file of ONNX Runtime's float32 numbers was not used
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_weights_without_a_checksum_record_are_not_stored(fast_paths, pair, tmp_path):
    """A user's own weights file has no verified record to name the network by: memory only."""
    encoder = tmp_path / "own" / "my-vgg.mat"
    encoder.parent.mkdir()
    shutil.copy(fast_paths[0], encoder)
    content, style = pair
    fast.FastStylizer(encoder, fast_paths[1], runtime="onnx", style_store=tmp_path / "styles").stylize(
        content, [style])
    assert not (tmp_path / "styles").exists()
