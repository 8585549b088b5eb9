"""nst.fast.tiles: a picture run tile by tile equals the whole run up to float rounding, with no seam.

The real networks (the converted weights) on the sample pair at a size where both runs fit, tiles forced
small so that a picture has several of them in each direction, on both runtimes.
"""

import numpy as np
import pytest

from nst.fast import stylizer as fast, tiles
from nst.io import images


@pytest.fixture(scope="module")
def pair(fast_paths):
    content, style = images.fetch_default_pair()
    return [images.resize(images.read_rgb(path), w, h) for path, (w, h) in ((content, (341, 263)), (style, (200, 160)))]


def _stylize(fast_paths, pair, runtime, tile):
    options = dict(precision="fp32", compiled=False) if runtime == "tensorflow" else dict(runtime=runtime)
    return fast.FastStylizer(*fast_paths, tile=tile, **options).stylize(pair[0], [pair[1]])


# Whole against tiled, per runtime: (largest difference, mean difference) in grey levels.  float32 rounds
# alike in both.  OpenVINO in bfloat16: measured 0 on a Zen 4 (the same kernels for every shape); a few levels
# are allowed for a host where it picks other kernels for other shapes (not measured; bf16 itself is 0.45-0.67
# levels from float32 on average).
TOLERANCES = {"onnx": (1, 0.01), "tensorflow": (1, 0.01), "openvino": (4, 0.05)}


@pytest.mark.parametrize("runtime", ["onnx", "tensorflow", "openvino"])
def test_tiled_result_equals_the_whole_run(fast_paths, pair, runtime):
    """Tiles of 128 px (16 features) on a 341x263 picture (43 x 33 features, neither side a multiple of 8):
    3 x 3 tiles, the last ones partial, the last features from partial pooling windows."""
    if runtime == "openvino":
        pytest.importorskip("openvino")
    whole, tiled = (_stylize(fast_paths, pair, runtime, tile) for tile in (0, 128))
    difference = np.abs(whole.astype(int) - tiled.astype(int))
    assert difference.max() <= TOLERANCES[runtime][0] and difference.mean() < TOLERANCES[runtime][1]


@pytest.mark.parametrize("margins, exact", [((40, 4), True), ((32, 3), False)])
def test_margins_cover_the_receptive_fields(fast_paths, pair, monkeypatch, margins, exact):
    """Margins of 40 pixels and 4 features (the receptive fields' 34 and 3.75, rounded up) already give the
    whole run's picture; 32 and 3 leave visible differences at the tile borders."""
    whole = _stylize(fast_paths, pair, "onnx", 0)
    monkeypatch.setattr(tiles, "ENCODER_MARGIN", margins[0])
    monkeypatch.setattr(tiles, "DECODER_MARGIN", margins[1])
    difference = np.abs(whole.astype(int) - _stylize(fast_paths, pair, "onnx", 128).astype(int)).max()
    assert (difference <= 1) == exact, difference


def test_encoder_tiles_give_the_whole_features(fast_paths, pair):
    """The features themselves, tile against whole, with a tile smaller than the receptive field's margin."""
    stylizer = fast.FastStylizer(*fast_paths, runtime="onnx", tile=0)
    content = pair[0].astype(np.float32) / 255
    whole = stylizer.encode(content)
    tiled = tiles.encode_tiled(lambda x: stylizer.encode(x[0])[None], content, 5)
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()


def test_a_bad_tile_is_refused(fast_paths):
    with pytest.raises(fast.FastError, match="tile must be a number of pixels"):
        fast.FastStylizer(*fast_paths, runtime="onnx", tile=-16)


def test_tile_size_follows_the_memory_free():
    """Whole when the picture fits and is not larger than WHOLE_UP_TO_PIXELS; else the largest multiple of 64
    within the memory free (and that size's estimate), never below MIN_TILE; the check refuses only what
    cannot fit even in the smallest tiles."""
    plenty = 64 * 2 ** 30
    assert fast.tile_for(1536, 2048, available=plenty) == 0
    assert fast.tile_for(1536, 2048, available=2 * 2 ** 30) > 0  # fits in tiles only
    for available in (plenty, 6 * 2 ** 30):
        tile = fast.tile_for(3072, 4096, available=available)
        budget = min(available, fast.estimated_peak_bytes(fast.WHOLE_UP_TO_PIXELS, 1))
        assert tile % 64 == 0 and fast.MIN_TILE <= tile < 4096
        assert fast._tiled_peak_bytes(3072, 4096, tile) <= budget < fast._tiled_peak_bytes(3072, 4096, tile + 64)
    fast.check_fits(3072, 4096, available=5 * 2 ** 30)  # 256 px tiles and the whole picture's arrays: 4.6 GB
    with pytest.raises(fast.FastError, match="give a smaller size"):
        fast.check_fits(3072, 4096, available=4 * 2 ** 30)


def test_borders_are_where_tiles_meet():
    assert tiles.tile_borders(300, 130, 16) == ([128, 256], [128])
