"""Files the tool reads and writes: regular-file checks, atomic writes, an output claim, all-or-none publishing.

Nothing here knows about images or networks; the CLI and the image module use it so that
* an input that is not a regular file (a FIFO would block the reader forever) is refused
  before it is opened;
* every output is written to a temporary name beside its target and renamed into place
  only when complete, and a run's outputs appear together or not at all;
* two runs cannot write the same output at once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import platform
import stat
import sys
import tempfile
from pathlib import Path

# The checkout's root: sample images, weights and outputs are found relative to it.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class FileProblem(Exception):
    """A user-facing problem with a path (the message is one line and says what to do)."""


def shown(path) -> str:
    """``path`` for a one-line message: as typed, or escaped if it holds a newline or other control character."""
    text = str(path)
    return text if text.isprintable() else ascii(text)


def one_line(error) -> str:
    """An exception's (or any object's) text on one line: library messages can span several or be empty."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if text.isprintable() else ascii(text)


def kind_of(mode: int) -> str:
    """What a non-regular file is, for a message."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def stat_path(path, what: str = "file", error=FileProblem):
    """``os.stat(path)``, or None if nothing is there; ``error`` if the path cannot be looked at."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        raise error(f"cannot look at {what} {shown(path)}: permission denied on a folder in its path (no search "
                    f"(x) permission); fix that folder's permissions or use another path") from None
    except (OSError, ValueError) as problem:  # a name too long, a loop of links, a NUL byte
        raise error(f"cannot look at {what} {shown(path)} ({one_line(problem)}); check the path") from None


def check_regular_file(path, what: str = "file", hint: str = "check the path", error=FileProblem) -> Path:
    """Return ``path`` if it is an existing, readable regular file; raise ``error`` otherwise.

    Never opens the file: a FIFO or a device given by mistake would block or stream forever.
    """
    path = Path(path)
    info = stat_path(path, what, error)
    if info is None:
        raise error(f"{what} {shown(path)} not found (no such file); {hint}")
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{what} {shown(path)} is a directory, not a file; {hint}")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{what} {shown(path)} is {kind_of(info.st_mode)}, not a regular file; {hint}")
    if not os.access(path, os.R_OK):
        raise error(f"{what} {shown(path)} is not readable (permission denied); fix its permissions or {hint}")
    return path


def sha256_of_handle(handle, chunk=1 << 20) -> str:
    """Hex SHA-256 of everything left to read in a binary ``handle``, read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    while block := handle.read(chunk):
        digest.update(block)
    return digest.hexdigest()


def sha256_of(path) -> str:
    with open(path, "rb") as handle:
        return sha256_of_handle(handle)


def publish(temporary, target) -> None:
    """Rename a finished temporary file onto ``target``, readable like a file created normally."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    os.replace(temporary, target)


def _temporary_beside(path: Path) -> str:
    """An empty temporary file in ``path``'s folder, hidden, with the same suffix (writers pick formats by it)."""
    handle, name = tempfile.mkstemp(prefix="." + path.name + ".", suffix=path.suffix, dir=path.parent or ".")
    os.close(handle)
    return name


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary name beside ``path``; on success rename it to ``path``.

    For writers that take a file name (PIL, matplotlib, JSON): a failed or
    interrupted write leaves neither a partial file nor the temporary behind.
    """
    path = Path(path)
    name = _temporary_beside(path)
    try:
        yield name
        publish(name, path)
    finally:
        Path(name).unlink(missing_ok=True)


def write_atomically(target, write) -> Path:
    """Call ``write(temporary name)`` beside ``target``; the result replaces ``target`` only if it returns."""
    with atomic_path(target) as temporary:
        write(temporary)
    return Path(target)


def publish_verified(target, sha256: str, write) -> bool:
    """Like :func:`write_atomically`, but ``target`` is replaced only if what was written has SHA-256 ``sha256``.

    Returns False, leaving ``target`` as it was and no temporary file behind, on
    a mismatch (a truncated download, a damaged mirror copy).
    """
    name = _temporary_beside(Path(target))
    try:
        write(name)
        if sha256_of(name) != sha256:
            return False
        publish(name, target)
        return True
    finally:
        Path(name).unlink(missing_ok=True)


class Staging:
    """Write several outputs to temporary files, then publish them all together (or none).

    ``stage(target, writer)`` calls ``writer(temporary_name)``; ``publish()`` renames
    every staged file onto its target (renames need no free space); ``discard()``
    removes whatever is staged.  Use as a context manager: leaving it without
    ``publish()`` discards.
    """

    def __init__(self):
        self.staged: list[tuple[str, Path]] = []

    def stage(self, target, writer) -> None:
        target = Path(target)
        name = _temporary_beside(target)
        self.staged.append((name, target))  # recorded first, so a failed write is cleaned up too
        writer(name)

    def publish(self) -> list[Path]:
        published = []
        for name, target in self.staged:
            publish(name, target)
            published.append(target)
        self.staged = []
        return published

    def discard(self) -> None:
        for name, _ in self.staged:
            Path(name).unlink(missing_ok=True)
        self.staged = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.discard()
        return False


def is_out_of_space(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


class OutputClaim:
    """An exclusive claim on an output name for the length of a run: a locked hidden file beside it.

    ``flock`` ends with the process, so a killed run leaves no stale claim: the next
    run takes over the file.  A second run that finds the lock held is refused.
    """

    def __init__(self, output):
        self.output = Path(output)
        self.path = self.output.parent / f".{self.output.name}.nst-lock"
        self.handle = None

    def acquire(self) -> "OutputClaim":
        import fcntl

        while True:
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                raise FileProblem(f"another nst run is writing {self.output} now; "
                                  f"wait for it to finish or choose another output name") from None
            # The holder before us may have removed the file after we opened it: then our
            # lock is on a deleted file, and we start again on the current one.
            info = stat_path(self.path, "lock file")
            if info is not None and info.st_ino == os.fstat(handle).st_ino:
                self.handle = handle
                return self
            os.close(handle)

    def release(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self.handle)
            self.handle = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def package_versions() -> dict:
    """Versions of Python and the numeric packages, for a run's JSON record.

    Read from the installed distributions, not by importing: importing TensorFlow to ask its version
    would cost a run on ONNX Runtime seconds.  ONNX Runtime and OpenVINO are listed when the run used them.
    """
    from importlib import metadata

    versions = {"python": platform.python_version()}
    wanted = {"numpy": ("numpy",), "scipy": ("scipy",), "tensorflow": ("tensorflow", "tensorflow-cpu")}
    for runtime, module in (("onnxruntime", "onnxruntime"), ("openvino", "openvino._pyopenvino")):
        if module in sys.modules:  # OpenVINO's extension loads without its package (nst.fast.openvino_network)
            wanted[runtime] = (runtime,)
    for module, distributions in wanted.items():
        for distribution in distributions:
            try:
                versions[module] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions
