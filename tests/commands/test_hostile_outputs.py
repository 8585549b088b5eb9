"""Hostile outputs and damaged inputs against the command line, run as real subprocesses.

Each case asserts the exit status, that stderr is exactly the one expected ``error:`` line
(no traceback, no "Exception ignored", no NumPy warning, no raw ffmpeg output) and which files
are left.  The full disks are real: a small tmpfs filled to the last block (needs root and
mount rights, else the test is skipped).  The tiny random VGG keeps the optimisation's runs to
seconds; the fast method and `nst video` need the real normalised VGG-19 and decoder.
"""

import errno
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst.video.ffmpeg import ffmpeg_exe

ROOT = Path(__file__).resolve().parents[2]

# The `nst` command (nst.commands.main, as the console script calls it) with two additions for the tests:
# TEST_DECODER, if set, stands for the fast method's decoder (the command has no flag for it: it lives
# in pretrained-model/, which the tests must not touch), and the last stdout line says whether
# TensorFlow was imported.  Run from the checkout's root, so the checkout's own `nst` is imported.
RUN_NST = """
import os, sys
from pathlib import Path
if os.environ.get("TEST_DECODER"):
    import nst.weights.fetch
    encoder = nst.weights.fetch.ensure_fast_weights()[0]
    nst.weights.fetch.fast_weights_for_use = lambda weights=None: (encoder, Path(os.environ["TEST_DECODER"]))
from nst.commands import main
status = main()
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(status)
"""

def nst(argv, decoder=None, timeout=300):
    """Run the command; (exit status, stdout without its last line, stderr, whether TensorFlow was imported).

    TF_CPP_MIN_LOG_LEVEL is left unset, as in a user's shell: TensorFlow's start-up lines, which that
    setting does not silence, must not reach stderr either (nst.host.quiet).
    """
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "TEST_DECODER")}
    if decoder is not None:
        env["TEST_DECODER"] = str(decoder)
    done = subprocess.run([sys.executable, "-c", RUN_NST, *map(str, argv)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    *out, last = done.stdout.splitlines() or [""]
    assert last.startswith("tensorflow imported: "), done.stdout + done.stderr  # main returned, no crash
    return done.returncode, "\n".join(out), done.stderr, last.endswith("True")


def error_line(stderr: str) -> str:
    """The one line on stderr, which must start with ``error: ``."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def listing(folder):
    return sorted(p.name for p in Path(folder).iterdir())


@pytest.fixture(scope="module")
def fast_weights():
    """The real normalised VGG-19 and decoder in pretrained-model/ (fetched and verified if missing)."""
    from nst.weights import fetch as weights_fetch

    return weights_fetch.ensure_fast_weights()


def _fill(folder: Path, leave_kib: int) -> None:
    """Fill ``folder``'s file system to the last block, then free ``leave_kib`` KiB of it."""
    filler = folder / "filler"
    block = b"\0" * 4096
    with open(filler, "wb", buffering=0) as handle:
        while True:
            try:
                handle.write(block)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                break
    if leave_kib:
        os.truncate(filler, max(0, filler.stat().st_size - leave_kib * 1024))


@pytest.fixture
def small_tmpfs(tmpfs):
    """A 64 KiB tmpfs; the test fills it with :func:`_fill`."""
    return tmpfs("64k")


def test_a_full_disk_stops_an_image_run_with_one_line(pair, tiny, small_tmpfs):
    # imageio's writer, failing there, added two "Exception ignored in PluginV3.__del__" tracebacks.
    _fill(small_tmpfs, 0)
    status, out, err, loaded = nst([*pair, "-o", small_tmpfs / "r.png", "--weights", tiny, "--size", "64",
                                    "--iterations", "3", "--optimizer", "adam", "-q"])
    assert status == 1 and out == ""
    assert error_line(err) == (f"error: could not write the results to {small_tmpfs} (No space left on "
                                       f"device); nothing was written; free some space and run again")
    assert listing(small_tmpfs) == ["filler"]  # no image, no temporary file, no lock


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Half a second of ffmpeg's test picture, 64x48 at 8 fps, as H.264 with an AAC tone (the real codecs).

    The index (moov) comes first, as in most downloaded files, so that a copy cut short still opens.
    """
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=8",
                    "-f", "lavfi", "-i", "sine=frequency=440", "-t", "0.5", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-movflags", "+faststart", str(path)], check=True)
    return path


@pytest.mark.parametrize("leave_kib", [0, 8], ids=["full", "nearly-full"])
def test_a_full_disk_stops_a_video_with_one_line(clip, pair, fast_weights, small_tmpfs, leave_kib):
    # ffmpeg printed its own lines ("Error writing trailer: No space left on device") and the error line
    # gave another reason ("... at least one of its streams received no packets", or a broken pipe).
    _fill(small_tmpfs, leave_kib)
    out_path = small_tmpfs / "out.mp4"
    status, out, err, loaded = nst(["video", clip, pair[1], "-o", out_path, "--size", "64", "-q"])
    assert status == 1 and out == ""
    assert error_line(err) == (f"error: could not write {out_path} (No space left on device); nothing was "
                                       f"written; free some space and run again")
    assert listing(small_tmpfs) == ["filler"]


# ------------------------------------------------------------------ a batch whose output folder holds its inputs

@pytest.mark.parametrize("given", ["folder", "pattern"])
def test_a_batch_into_its_own_input_folder_is_refused_at_once(tmp_path, tiny, given):
    # It used to run, writing results and manifest among the inputs, and the next run then refused
    # ("output .../a.png is one of the inputs"): the results had become inputs.
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(4)
    for name in ("a.jpg", "b.jpg"):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(photos / name)
    style = tmp_path / "style.png"
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(style)
    inputs = photos if given == "folder" else photos / "*"
    status, out, err, loaded = nst(["batch", inputs, style, "-o", photos, "--weights", tiny, "--size", "32",
                                    "--iterations", "2", "--optimizer", "adam"])
    assert status == 2 and out == "" and not loaded  # before any network
    assert error_line(err) == (f"error: output folder {photos} is also where the inputs '{inputs}' are read from: "
                               f"the next run would take the results for inputs; choose another output folder")
    assert listing(photos) == ["a.jpg", "b.jpg"]


def test_a_batch_may_write_beside_inputs_it_names_or_a_pattern_that_skips_the_results(tmp_path):
    # The results are .png files: a pattern that cannot match them, or files named one by one, read the
    # same inputs on the next run, so their folder may take the results.
    from nst.commands.batch import _check_apart

    sources = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    _check_apart([str(tmp_path / "*.jpg")], tmp_path, sources)
    _check_apart([str(path) for path in sources], tmp_path, sources)
    _check_apart([str(tmp_path)], tmp_path / "results", sources)


# ------------------------------------------------------------------ damaged files, refused before TensorFlow starts

def _write_decoder(folder: Path, damage: str) -> Path:
    """A decoder file of the right shapes with its .sha256 beside it.

    "nan": NaN in a kernel and a matching hash, as a conversion gone wrong would leave;
    "altered": a byte changed after the hash was taken.
    """
    from nst.weights.load import DECODER_CHANNELS, DECODER_NAME

    rng = np.random.default_rng(5)
    arrays = {}
    for index, (cin, cout) in enumerate(DECODER_CHANNELS):
        arrays[f"kernel{index}"] = rng.normal(0, 0.01, (3, 3, cin, cout)).astype(np.float32)
        arrays[f"bias{index}"] = np.zeros(cout, np.float32)
    if damage == "nan":
        arrays["kernel4"][1, 1, 0, 0] = np.nan
    path = folder / DECODER_NAME
    np.savez(path, **arrays)
    Path(f"{path}.sha256").write_text(hashlib.sha256(path.read_bytes()).hexdigest() + "\n")
    if damage == "altered":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    return path


def test_a_decoder_with_nan_weights_is_refused(tmp_path, pair, fast_weights):
    # It was loaded, and the run exited 0 with an all-black picture and a NumPy RuntimeWarning.
    decoder = _write_decoder(tmp_path, "nan")
    out = tmp_path / "out"
    out.mkdir()
    status, stdout, err, loaded = nst([*pair, "-o", out / "r.png", "--method", "fast", "--size", "64"],
                                      decoder=decoder)
    assert status == 2 and stdout == "" and not loaded
    assert error_line(err) == (f"error: decoder file {decoder}: layer 4 contains NaN or infinite values, so the "
                               f"file is damaged; delete it and run `python -m nst.weights` to fetch the verified "
                               f"decoder")
    assert listing(out) == []


def test_one_fast_image_never_imports_tensorflow(tmp_path, pair, fast_weights):
    """A few fast images run on ONNX Runtime or, where the CPU has bfloat16 units, OpenVINO
    (nst.fast.onnx_network, openvino_network): TensorFlow's import, most of a short command's wall time,
    is never paid, and the record says which runtime ran, at which precision."""
    from nst.host import precision as precisions

    runtime, package = {"bf16": ("openvino", "openvino"), "fp32": ("onnx", "onnxruntime")}[precisions.choose("auto")[0]]
    pytest.importorskip(package)
    status, stdout, err, loaded = nst([*pair, "-o", tmp_path / "r.png", "--method", "fast", "--size", "64", "-q"])
    assert status == 0 and not loaded, err
    record = json.loads((tmp_path / "r.json").read_text())
    # OpenVINO runs fp32 where a host profile claims bfloat16 units the CPU lacks; the record says what ran.
    assert record["settings"]["runtime"] == runtime and record["settings"]["precision"] in ("fp32", "bf16")
    assert package in record["versions"]


def _cut_after_header(clip: Path, folder: Path, garbage: bool) -> Path:
    """The clip with its frames cut off after the header, or ("garbage") overwritten with noise."""
    data = clip.read_bytes()
    start = data.index(b"mdat") + 4
    payload = np.random.default_rng(6).integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
    damaged = folder / ("noise.mp4" if garbage else "cut.mp4")
    damaged.write_bytes(data[:start] + payload if garbage else data[:start + 16])
    return damaged


@pytest.mark.parametrize("case", ["decoder, image", "decoder, video", "video cut short", "video of noise"])
def test_damaged_inputs_are_refused_before_tensorflow_starts(tmp_path, pair, clip, fast_weights, case):
    # Each of these was refused only after TensorFlow's start-up lines (which TF_CPP_MIN_LOG_LEVEL,
    # unset here as in a user's shell, would show): the decoder was read and the frames decoded only
    # once the network had loaded.
    out = tmp_path / "out"
    out.mkdir()
    decoder = _write_decoder(tmp_path, "altered") if case.startswith("decoder") else None
    video = _cut_after_header(clip, tmp_path, "noise" in case) if case.startswith("video") else clip
    argv = ([*pair, "-o", out / "r.png", "--method", "fast", "--size", "64"] if case == "decoder, image" else
            ["video", video, pair[1], "-o", out / "r.mp4", "--size", "64"])
    status, stdout, err, loaded = nst(argv, decoder=decoder)
    assert status == 2 and stdout == "" and not loaded
    line = error_line(err)
    if decoder is not None:
        assert line == (f"error: decoder file {decoder} fails its SHA-256 check (corrupted or altered); delete it "
                        f"and run `python -m nst.weights` to fetch the verified decoder")
    else:
        assert line.startswith(f"error: could not decode {video} (") and "re-encode it" in line, line
    assert listing(out) == []


# ------------------------------------------------------------------ a cost that overflows

@pytest.mark.host
@pytest.mark.parametrize("flag", ["--content-weight", "--style-weight"])
def test_a_weight_that_overflows_the_cost_gives_only_the_error_line(tmp_path, pair, tiny, flag):
    # TensorFlow's conversion of 1e308 to float32 printed NumPy's two-line overflow warning first.
    out = tmp_path / "out"
    out.mkdir()
    status, stdout, err, loaded = nst([*pair, "-o", out / "r.png", "--weights", tiny, "--size", "64",
                                       "--iterations", "3", "--optimizer", "adam", "-q", flag, "1e308"])
    assert status == 2 and stdout == ""
    # inf, or nan where the kernels give an exactly zero content cost at the start (inf x 0): measured nan
    # for --content-weight with oneDNN on in fp32, inf with oneDNN off or in bf16.
    assert re.fullmatch(r"error: the cost became (inf|nan) at iteration 0; no finite image to keep; lower the "
                        r"weights or the learning rate; nothing written", error_line(err))
    assert listing(out) == []
