"""nst.io.images on small synthetic files: every awkward input is read correctly or refused in one line."""

import os

import numpy as np
import pytest
from PIL import Image

from nst.io import images
from nst.io.images import ImageError


def _save(path, array_or_image, **kwargs):
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    image.save(path, **kwargs)
    return path


def _one_line(error):
    message = str(error.value)
    assert "\n" not in message and message
    return message


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError) as error:
        images.read_rgb(tmp_path / "nope.jpg")
    assert "no such file" in _one_line(error)


def test_directory(tmp_path):
    with pytest.raises(ImageError) as error:
        images.read_rgb(tmp_path)
    assert "is a directory" in _one_line(error)


def test_non_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture at all\n")
    with pytest.raises(ImageError) as error:
        images.read_rgb(path)
    assert "not an image" in _one_line(error)


def test_truncated_jpeg(tmp_path, rgb):
    full = _save(tmp_path / "full.jpg", np.kron(rgb, np.ones((8, 8, 1), dtype=np.uint8)), quality=95)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ImageError) as error:
        images.read_rgb(cut)
    assert "truncated" in _one_line(error)


def test_one_by_one_image(tmp_path):
    path = _save(tmp_path / "dot.png", np.zeros((1, 1, 3), dtype=np.uint8))
    with pytest.raises(ImageError) as error:
        images.read_rgb(path)
    assert "1x1" in _one_line(error)


def test_zero_by_zero_image(tmp_path):
    # PIL refuses to write a 0x0 PNG, so write its bytes: signature, IHDR with width = height = 0, IEND.
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = tmp_path / "empty.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))
    with pytest.raises(ImageError) as error:
        images.read_rgb(path)
    _one_line(error)


def test_decompression_bomb(tmp_path):
    # 9000 x 8000 = 72 Mpx of 1-bit pixels: a few kB on disk, over MAX_PIXELS (64 Mpx) once decoded.
    path = _save(tmp_path / "bomb.png", Image.new("1", (9000, 8000)))
    assert path.stat().st_size < 100_000
    with pytest.raises(ImageError) as error:
        images.read_rgb(path)
    assert "pixel limit" in _one_line(error)


def test_grayscale_becomes_rgb(tmp_path, rgb):
    gray = rgb[..., 0]
    out = images.read_rgb(_save(tmp_path / "gray.png", gray))
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))


def test_rgba_flattened_onto_white(tmp_path, rgb):
    alpha = np.zeros((24, 32), dtype=np.uint8)
    alpha[:, 16:] = 255
    out = images.read_rgb(_save(tmp_path / "rgba.png", np.dstack([rgb, alpha])))
    assert out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out[:, :16], 255)  # transparent -> white
    np.testing.assert_array_equal(out[:, 16:], rgb[:, 16:])  # opaque -> unchanged


def test_16_bit_png_scaled_not_clipped(tmp_path):
    values = np.linspace(0, 65535, 24 * 32).reshape(24, 32).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)  # mode I;16
    assert Image.open(path).mode.startswith("I")
    out = images.read_rgb(path)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    assert out.min() == 0 and out.max() == 255  # full range kept, not clipped at 255/65535
    np.testing.assert_allclose(out[..., 0], values / 65535 * 255, atol=0.51)


def test_cmyk_jpeg(tmp_path, rgb):
    path = _save(tmp_path / "cmyk.jpg", Image.fromarray(rgb).convert("CMYK"), quality=100)
    assert Image.open(path).mode == "CMYK"
    out = images.read_rgb(path)
    assert out.shape == (24, 32, 3)
    assert np.abs(out.astype(int) - rgb).mean() < 20  # colours survive the CMYK round trip


def test_exif_orientation_honoured(tmp_path):
    # Stored 40 wide x 20 high: left half red, right half blue.  Orientation 6 means
    # "rotate 90 degrees clockwise to display": displayed 20 wide x 40 high, red on top.
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(tmp_path / "rotated.jpg", stored, exif=exif.tobytes(), quality=100)
    out = images.read_rgb(path)
    assert out.shape == (40, 20, 3)
    assert out[5, 10, 0] > 200 and out[5, 10, 2] < 60  # top: red
    assert out[35, 10, 2] > 200 and out[35, 10, 0] < 60  # bottom: blue


def test_palette_with_transparency(tmp_path, rgb):
    image = Image.fromarray(rgb).convert("P")
    image.info["transparency"] = 0
    out = images.read_rgb(_save(tmp_path / "palette.png", image, transparency=0))
    assert out.shape == (24, 32, 3)


# ---------------------------------------------------------------- output paths

def test_output_missing_folder(tmp_path):
    with pytest.raises(ImageError) as error:
        images.check_output_path(tmp_path / "no" / "such" / "out.png")
    assert "does not exist" in _one_line(error)


def read_only_folder(tmp_path):
    """A folder this process cannot write to (chmod 555, or /proc when running as root)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permission bits
        folder = "/proc"
    return folder


def test_output_read_only_folder(tmp_path):
    folder = read_only_folder(tmp_path)
    with pytest.raises(ImageError) as error:
        images.check_output_path(os.path.join(folder, "out.png"))
    assert "not writable" in _one_line(error)
    assert not os.path.exists(os.path.join(folder, "out.png"))


def test_existing_output_needs_overwrite(tmp_path, rgb):
    path = _save(tmp_path / "out.png", rgb)
    with pytest.raises(ImageError) as error:
        images.check_output_path(path)
    assert "--overwrite" in _one_line(error)
    assert images.check_output_path(path, overwrite=True) == path


def test_output_extension_and_any_name(tmp_path):
    with pytest.raises(ImageError):
        images.check_output_path(tmp_path / "out.txt")
    assert images.check_output_path(tmp_path / "out.json", extensions=None).name == "out.json"


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "data.json"
    with pytest.raises(RuntimeError):
        with images.atomic_path(target) as name:
            open(name, "w").write("partial")
            raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []
    with images.atomic_path(target) as name:
        open(name, "w").write("{}")
    assert target.read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_save_rgb_round_trip(tmp_path, rgb):
    path = images.save_rgb(tmp_path / "x.png", rgb)
    np.testing.assert_array_equal(images.read_rgb(path), rgb)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_sample_from_the_mirror_is_published_only_when_its_hash_matches(tmp_path, monkeypatch, sample_pair):
    """Offline, a damaged mirror copy is refused (nothing left behind); a good one is copied in whole."""
    import os
    import shutil

    monkeypatch.setenv("NST_OFFLINE", "1")
    mirror, folder = tmp_path / "mirror", tmp_path / "images"
    mirror.mkdir()
    (mirror / "tubingen.jpg").write_bytes(b"not the picture")
    with pytest.raises(ImageError, match="could not fetch sample tubingen.jpg"):
        images.fetch_sample("tubingen.jpg", images_dir=folder, mirror_dir=mirror)
    assert list(folder.iterdir()) == []
    shutil.copyfile(sample_pair[0], mirror / "tubingen.jpg")
    fetched = images.fetch_sample("tubingen.jpg", images_dir=folder, mirror_dir=mirror)
    assert [p.name for p in folder.iterdir()] == ["tubingen.jpg"]
    assert fetched.read_bytes() == (mirror / "tubingen.jpg").read_bytes()
    umask = os.umask(0)
    os.umask(umask)
    assert fetched.stat().st_mode & 0o777 == 0o666 & ~umask  # as an ordinary new file, not mkstemp's 0600


def test_publish_verified_keeps_the_old_file_on_a_mismatch(tmp_path):
    import hashlib

    from nst.io.files import publish_verified

    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    good = hashlib.sha256(b"new").hexdigest()
    assert not publish_verified(target, good, lambda name: open(name, "wb").write(b"damaged"))
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["data.bin"]
    assert publish_verified(target, good, lambda name: open(name, "wb").write(b"new"))
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def _row_lattice(image: np.ndarray, period: int) -> float:
    """Mean |difference| between rows k - 1 and k at multiples of ``period``, against the other rows."""
    diffs = np.abs(np.diff(image.astype(np.float64), axis=0)).mean(axis=(1, 2))
    k = np.arange(1, len(diffs) + 1)
    return float(diffs[k % period == 0].mean() / diffs[k % period != 0].mean())


def test_a_painting_is_enlarged_without_the_grain_of_its_pixels():
    """Bicubic enlargement by 4 leaves every 4th row a step (the grain a print run copied as specks);
    resize_painting leaves no such period.  Shrinking is resize's."""
    from nst.io.images import resize, resize_painting

    grain = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    assert _row_lattice(resize(grain, 256, 256), 4) > 1.3  # measured: 1.52
    assert _row_lattice(resize_painting(grain, 256, 256), 4) < 1.2  # measured: 1.10
    np.testing.assert_array_equal(resize_painting(grain, 32, 32), resize(grain, 32, 32))
