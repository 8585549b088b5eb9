"""Image I/O: sample images, safe reading of user images, resizing, atomic saving.

Every user mistake becomes an :class:`ImageError` with a one-line message
that says what to do; nothing here writes a partial file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from nst.io.files import (PROJECT_ROOT, FileProblem, atomic_path, check_regular_file, publish_verified, sha256_of,
                    stat_path)

IMAGES_DIR = PROJECT_ROOT / "images"
SAMPLE_URL = "https://raw.githubusercontent.com/jcjohnson/neural-style/master/examples/inputs/{name}"
# A local copy of the same files, tried when the public URL cannot be reached.
MIRROR_DIR = Path(os.environ.get("NST_IMAGE_MIRROR", PROJECT_ROOT.parent / "shared" / "images"))
SAMPLE_SHA256 = {
    "golden_gate.jpg": "f8476ac216e0d409af2e52bf82ad2cdc3433e23d7895e6f9b2048fc014ed57ba",
    "tubingen.jpg": "e67d1869f01fd805385c681a80d9ebcf0f70ea4a5fe6127f0606bb1c7f4bf506",
    "starry_night.jpg": "0592ab0f7b51b3ce72608a95e53880bd93971e5b48f93a0ce8dfd3cbccf3d098",
    "the_scream.jpg": "f3075cddeb974a9ee1d6418f7f33fd05185a7ac7dcb4288bd2805d499a9dcaee",
    "shipwreck.jpg": "4f7cf34e3cd4a5daaf3f421f059ca9a01aaa2a3afd7243d6670c9c8bc001a213",
    "seated-nude.jpg": "f398757cfb5346842c3bc309ca65d03381b38b1f5f8d7c60abe68a804a405cf1",
    "woman-with-hat-matisse.jpg": "6a8b2383d9c110354a97a42c74bdcc5341be879cbb842ddb7ab5843dbdf56d53",
    "starry_night_crop.png": "776279d5e9daf676fb7e36c9eab953497445d4b3422bdd660b96ce984ac39721",
}
DEFAULT_CONTENT = "tubingen.jpg"
DEFAULT_STYLE = "starry_night.jpg"

# Refuse images above this many pixels (decompression-bomb guard): 64 megapixels
# is far beyond what style transfer on a CPU can use.
MAX_PIXELS = 64_000_000


class ImageError(FileProblem):
    """A user-facing image problem (message is one line and says what to do)."""


# --------------------------------------------------------------------------
# Sample images

def _download(url: str, target: str, timeout: float) -> None:
    import urllib.request  # here, not at the top: the command's start-up does without it

    with urllib.request.urlopen(url, timeout=timeout) as response:
        Path(target).write_bytes(response.read())


def fetch_sample(name: str, images_dir=IMAGES_DIR, mirror_dir=None, timeout: float = 10.0) -> Path:
    """Return ``images_dir/name``, fetched from the public URL or else the mirror, hash-checked."""
    if name not in SAMPLE_SHA256:
        raise ImageError(f"unknown sample image {name!r}; choose one of {', '.join(sorted(SAMPLE_SHA256))}")
    expected = SAMPLE_SHA256[name]
    images_dir = Path(images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    target = images_dir / name
    if target.is_file() and sha256_of(target) == expected:
        return target
    if os.environ.get("NST_OFFLINE") != "1":
        try:
            url = SAMPLE_URL.format(name=name)
            if publish_verified(target, expected, lambda temporary: _download(url, temporary, timeout)):
                return target
        except OSError:
            pass  # offline or blocked: fall through to the mirror
    mirror = Path(mirror_dir or MIRROR_DIR) / name
    if mirror.is_file() and publish_verified(target, expected, lambda temporary: shutil.copyfile(mirror, temporary)):
        return target
    raise ImageError(f"could not fetch sample {name} (no network and no verified copy in {mirror.parent}); "
                     f"set NST_IMAGE_MIRROR to a folder holding it")


def fetch_default_pair(images_dir=IMAGES_DIR) -> tuple[Path, Path]:
    """The default (content, style) pair: Tubingen and The Starry Night."""
    return fetch_sample(DEFAULT_CONTENT, images_dir), fetch_sample(DEFAULT_STYLE, images_dir)


# --------------------------------------------------------------------------
# Reading user images

def read_rgb(path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read any common image as ``uint8 [h, w, 3]`` RGB.

    Honours the EXIF orientation, flattens transparency onto white, converts
    grayscale, palette, CMYK and 16-bit images, and refuses what cannot be a
    usable picture (missing, a folder, not an image, truncated, tiny, huge).
    """
    from PIL import Image, ImageOps

    try:
        path = check_regular_file(path, "image", hint="give an image file")
    except FileProblem as problem:
        raise ImageError(str(problem)) from None
    try:
        with warnings.catch_warnings(), _native_stderr_silenced():
            warnings.simplefilter("ignore")  # PIL's warnings about odd metadata: the picture is what counts
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(f"{path} is {width}x{height}, over the {max_pixels:,}-pixel limit; "
                                     f"shrink it first")
                image.load()  # decode now, so a truncated file fails here
                image = ImageOps.exif_transpose(image)
                rgb = _to_rgb(image)
    except ImageError:
        raise
    except _UnsupportedPixels as error:
        raise ImageError(f"{path}: {error}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path} is too large to decode safely (decompression-bomb guard); shrink it first") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{path} is not an image PIL can read; give a JPEG, PNG, BMP, TIFF or WebP") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{path} is damaged or truncated ({error}); re-export or re-download it") from None
    if min(rgb.shape[:2]) < 16:
        raise ImageError(f"{path} is only {rgb.shape[1]}x{rgb.shape[0]} pixels; give an image at least 16x16")
    return rgb


@contextlib.contextmanager
def _native_stderr_silenced():
    """Divert file descriptor 2 while PIL decodes: libtiff and libjpeg print warnings there
    that would come before (and garble) the single ``error:`` line a bad file gets."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no stderr at all: nothing to protect
        yield
        return
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _UnsupportedPixels(ValueError):
    """Pixel values this reader cannot map onto 0..255 without losing the picture."""


def _to_rgb(image) -> np.ndarray:
    """PIL image of any mode -> uint8 [h, w, 3]."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        gray = _gray_to_uint8(np.asarray(image), image.mode)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


# Ranges a deep grayscale image's values are read in, smallest first: floats in 0..1 (the
# usual convention for float TIFFs), then 8 and 16 bits.  The first range that holds every
# value is scaled to 0..255, so nothing turns black or saturates.
_GRAY_RANGES = ((0.0, 1.0), (0.0, 255.0), (0.0, 65535.0))


def _gray_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """A 16-bit, 32-bit integer or 32-bit float grayscale array -> uint8 by its value range."""
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise _UnsupportedPixels("it holds NaN or infinite pixel values; export it as an 8- or 16-bit image")
    low, high = float(values.min()), float(values.max())
    if mode.startswith("I;16"):
        ranges = _GRAY_RANGES[2:3]  # 16-bit files use their full range, whatever the values
    elif mode == "F":
        ranges = _GRAY_RANGES
    else:
        ranges = _GRAY_RANGES[1:]
    if mode == "I" and 0 <= low and high > 65535:
        ranges = [(0.0, high)]  # 32-bit integers have no agreed white: their own maximum is white
    for bottom, top in ranges:
        if bottom <= low and high <= top:
            return np.clip(np.round(values / max(top, 1.0) * 255.0), 0, 255).astype(np.uint8)
    raise _UnsupportedPixels(f"its pixel values span {low:g}..{high:g}, outside 0..1 and 0..65535; "
                     f"export it as an 8- or 16-bit image")


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``uint8 [h, w, 3]`` to ``[height, width, 3]`` (Lanczos when shrinking, bicubic when growing)."""
    from PIL import Image

    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    method = Image.LANCZOS if shrinking else Image.BICUBIC
    return np.asarray(Image.fromarray(image).resize((width, height), method))


def resize_painting(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """:func:`resize` for a style image, whose pixel grain the optimisation copies: where it grows by f > 1,
    the bicubic result is blurred (Gaussian, radius f / 2).  A bicubic enlargement passes through the
    painting's own pixels, so its rows and columns differ in a pattern of period f, and a print run
    painted that grain onto VGG-19's pooling grid as a mesh of specks (bench/RESULTS.md, issue 32)."""
    from PIL import Image, ImageFilter

    enlarged = resize(image, width, height)
    factor = max(width / image.shape[1], height / image.shape[0])
    if factor <= 1:
        return enlarged
    return np.asarray(Image.fromarray(enlarged).filter(ImageFilter.GaussianBlur(factor / 2)))


def size_for_long_side(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) scaled so the longer side is ``long_side``, aspect ratio kept."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


# --------------------------------------------------------------------------
# Writing

OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def check_output_path(path, overwrite: bool = False, extensions=OUTPUT_EXTENSIONS, probe: bool = True) -> Path:
    """Fail early (before any work) if ``path`` cannot be written (``extensions=None``: any name).

    ``probe=False`` skips creating a probe file in the folder, for a companion of an output
    whose folder was just probed.
    """
    path = Path(path)
    try:
        info = stat_path(path, "output")
        folder = path.parent if str(path.parent) else Path(".")
        folder_info = stat_path(folder, "output folder")
    except FileProblem as problem:
        raise ImageError(str(problem)) from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise ImageError(f"output {path} is a directory; give a file name such as {path / 'result.png'}")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise ImageError(f"output {path} is not a regular file (a pipe, socket or device); choose another name")
    if info is not None and not overwrite:
        raise ImageError(f"output {path} already exists; pass --overwrite or choose another name")
    if folder_info is None or not stat.S_ISDIR(folder_info.st_mode):
        raise ImageError(f"output folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK) or (probe and not _can_create_in(folder)):
        raise ImageError(f"output folder {folder} is not writable; choose another folder")
    if extensions is not None and path.suffix.lower() not in extensions:
        raise ImageError(f"output {path} has no image extension; end it in .png or .jpg")
    return path


def _can_create_in(folder: Path) -> bool:
    """Whether a file can really be created in ``folder`` (os.access is always true for root,
    even on a read-only mount); the probe file is removed at once."""
    try:
        handle, name = tempfile.mkstemp(prefix=".nst-probe.", dir=folder)
    except OSError:
        return False
    os.close(handle)
    os.unlink(name)
    return True


def write_rgb(handle, image: np.ndarray, suffix: str = ".png", quick: bool = False) -> None:
    """Encode ``uint8 [h, w, 3]`` into the open binary ``handle`` in the format ``suffix`` names.

    Pillow straight into a handle the caller closes, not imageio's writer: when an
    encode failed (a full disk) or was interrupted (Ctrl-C), imageio's plugin kept
    unfinished work for its ``__del__``, which later printed a traceback
    ("Exception ignored in PluginV3.__del__", issue 27).  The bytes are the same:
    imageio's writer is this same Pillow call.  ``quick``: a PNG at zlib's fastest level (for previews:
    3 % larger, written in 0.6x the time).
    """
    from PIL import Image

    Image.init()
    picture = Image.fromarray(np.asarray(image, dtype=np.uint8))
    image_format = Image.registered_extensions()[(suffix or ".png").lower()]
    picture.save(handle, format=image_format, **({"compress_level": 1} if quick and image_format == "PNG" else {}))


def encode_rgb(image: np.ndarray, suffix: str = ".png") -> bytes:
    """``uint8 [h, w, 3]`` as the bytes of an image file (what :func:`save_rgb` would write)."""
    import io

    buffer = io.BytesIO()
    write_rgb(buffer, image, suffix)
    return buffer.getvalue()


def save_rgb(path, image: np.ndarray, quick: bool = False) -> Path:
    """Save ``uint8 [h, w, 3]`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    with atomic_path(path) as name, open(name, "wb") as handle:
        write_rgb(handle, image, path.suffix, quick)
    return path


def main(argv=None) -> int:
    """``python -m nst.io.images [NAME ...]``: fetch sample images into images/."""
    names = (argv if argv is not None else sys.argv[1:]) or [DEFAULT_CONTENT, DEFAULT_STYLE]
    try:
        for name in names:
            print(fetch_sample(name))
    except ImageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
