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
    return [images.resize(images.read_rgb(path), w, h) for path, (w, h) in ((content, (344, 264)), (style, (200, 160)))]


@pytest.mark.parametrize("runtime", ["onnx", "tensorflow"])
def test_tiled_result_equals_the_whole_run(fast_paths, pair, runtime):
    """Tiles of 128 px (16 features) on a 344x264 picture: 3 x 3 tiles, the last ones partial (344 is not a
    multiple of 128 or of 8's tile grid in features: 43 features).  Every pixel within one grey level."""
    content, style = pair
    options = dict(runtime=runtime) if runtime == "onnx" else dict(precision="fp32", compiled=False)
    whole = fast.FastStylizer(*fast_paths, tile=0, **options).stylize(content, [style])
    tiled = fast.FastStylizer(*fast_paths, tile=128, **options).stylize(content, [style])
    difference = np.abs(whole.astype(int) - tiled.astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.01


def test_encoder_tiles_give_the_whole_features(fast_paths, pair):
    """The features themselves, tile against whole, with a tile smaller than the receptive field's margin."""
    stylizer = fast.FastStylizer(*fast_paths, runtime="onnx", tile=0)
    content = pair[0].astype(np.float32) / 255
    whole = stylizer.encode(content)
    tiled = tiles.encode_tiled(lambda x: stylizer.encode(x[0])[None], content, 5)
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole).max() <= 1e-4 * np.abs(whole).max()


def test_tile_size_follows_the_memory_free():
    """Whole when the picture fits and is not larger than WHOLE_UP_TO_PIXELS; else the largest multiple of 64
    within the memory free (and that size's estimate), never below MIN_TILE; the check refuses only what
    cannot fit even in the smallest tiles."""
    plenty = 64 * 2 ** 30
    assert fast.tile_for(1536, 2048, available=plenty) == 0
    assert fast.tile_for(1536, 2048, available=2 * 2 ** 30) > 0  # fits in tiles only
    for available in (plenty, 4 * 2 ** 30):
        tile = fast.tile_for(3072, 4096, available=available)
        budget = min(available, fast.estimated_peak_bytes(fast.WHOLE_UP_TO_PIXELS, 1))
        assert tile % 64 == 0 and fast.MIN_TILE <= tile < 4096
        assert fast._tiled_peak_bytes(3072, 4096, tile) <= budget < fast._tiled_peak_bytes(3072, 4096, tile + 64)
    fast.check_fits(3072, 4096, available=4 * 2 ** 30)
    with pytest.raises(fast.FastError, match="give a smaller size"):
        fast.check_fits(3072, 4096, available=1 * 2 ** 30)


def test_borders_are_where_tiles_meet():
    assert tiles.tile_borders(300, 130, 16) == ([128, 256], [128])
