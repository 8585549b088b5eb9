"""Reading the legacy (non-zip) PyTorch ``.pth`` files the weights come in, without torch.

Nothing in such a file is trusted: names resolve through an unpickler that
allows only the handful a state dict of float32 tensors needs (never a plain
``pickle.load``), every count is checked against the bytes present, and every
tensor view must lie inside its storage.
"""

from __future__ import annotations

import math
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nst.io.files import one_line, shown
from nst.weights.load import FETCH_HINT, WeightsError, check_weights_path, open_regular

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
        with open_regular(path) as handle:
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
