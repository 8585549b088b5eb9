"""The `nst` command: bad input is refused in one line (status 2, nothing written), every
awkward image is accepted, and real runs through the installed console script write the
result, the side-by-side, the cost plot and the JSON."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from host_profiles import NO_CONTENT_COST

from nst.commands import image as cli
from nst.optimise import stylize

ROOT = Path(__file__).resolve().parents[2]
NST = ROOT / ".venv" / "bin" / "nst"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Small synthetic inputs, one of each awkward kind."""
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    paths = {}

    def save(name, image, **kwargs):
        image = image if isinstance(image, Image.Image) else Image.fromarray(image)
        image.save(folder / name, **kwargs)
        paths[name.split(".")[0]] = folder / name

    save("content.png", rgb)
    save("style.png", rgb[::-1])
    save("gray.png", rgb[..., 0])
    save("rgba.png", np.dstack([rgb, np.full((48, 64), 128, dtype=np.uint8)]))
    save("deep.png", (rgb[..., 0].astype(np.uint16) * 257))
    save("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"))
    exif = Image.Exif()
    exif[0x0112] = 6
    save("rotated.jpg", rgb, exif=exif.tobytes())
    save("dot.png", rgb[:1, :1])
    save("bomb.png", Image.new("1", (9000, 8000)))
    (folder / "text.jpg").write_text("hello")
    paths["text"] = folder / "text.jpg"
    big = np.kron(rgb, np.ones((4, 4, 1), dtype=np.uint8))
    Image.fromarray(big).save(folder / "full.jpg", quality=95)
    (folder / "truncated.jpg").write_bytes((folder / "full.jpg").read_bytes()[:3000])
    paths["truncated"] = folder / "truncated.jpg"
    (folder / "empty.png").write_bytes(_zero_png())
    paths["empty"] = folder / "empty.png"
    return paths


def _zero_png():
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


def refused(capsys, argv, *words, out_dir=None):
    """Run the CLI in-process; expect status 2, one `error:` line mentioning ``words``, nothing written."""
    before = sorted(os.listdir(out_dir)) if out_dir else None
    status = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    for word in words:
        assert word in err, err
    if out_dir:
        assert sorted(os.listdir(out_dir)) == before
    return err


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


# ------------------------------------------------------------------ bad input: one test each

def test_missing_file(capsys, inputs, out):
    refused(capsys, [out / "nope.jpg", inputs["style"], "-o", out / "r.png"], "no such file", out_dir=out)


def test_directory(capsys, inputs, out):
    refused(capsys, [inputs["content"], out, "-o", out / "r.png"], "is a directory", out_dir=out)


def test_non_image(capsys, inputs, out):
    refused(capsys, [inputs["text"], inputs["style"], "-o", out / "r.png"], "not an image", out_dir=out)


def test_truncated_jpeg(capsys, inputs, out):
    refused(capsys, [inputs["truncated"], inputs["style"], "-o", out / "r.png"], "truncated", out_dir=out)


def test_zero_by_zero_image(capsys, inputs, out):
    refused(capsys, [inputs["empty"], inputs["style"], "-o", out / "r.png"], "empty.png", out_dir=out)


def test_one_by_one_image(capsys, inputs, out):
    refused(capsys, [inputs["content"], inputs["dot"], "-o", out / "r.png"], "1x1", out_dir=out)


def test_decompression_bomb(capsys, inputs, out):
    refused(capsys, [inputs["bomb"], inputs["style"], "-o", out / "r.png"], "pixel limit", out_dir=out)


def test_missing_output_folder(capsys, inputs, out):
    refused(capsys, [inputs["content"], inputs["style"], "-o", out / "no" / "r.png"], "does not exist", out_dir=out)


def test_read_only_output_folder(capsys, inputs, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permission bits; /proc is read-only even for root
        folder = Path("/proc")
    before = sorted(os.listdir(folder))
    refused(capsys, [inputs["content"], inputs["style"], "-o", folder / "r.png"], "not writable")
    assert sorted(os.listdir(folder)) == before or folder == Path("/proc")
    assert not (folder / "r.png").exists()


def test_existing_output_without_overwrite(capsys, inputs, out):
    (out / "r.png").write_bytes(b"old")
    refused(capsys, [inputs["content"], inputs["style"], "-o", out / "r.png"], "--overwrite", out_dir=out)
    assert (out / "r.png").read_bytes() == b"old"


def test_existing_companion_without_overwrite(capsys, inputs, out):
    (out / "r.json").write_text("{}")
    refused(capsys, [inputs["content"], inputs["style"], "-o", out / "r.png"], "r.json", out_dir=out)


def test_output_is_an_input(capsys, inputs, out):
    refused(capsys, [inputs["content"], inputs["style"], "-o", inputs["content"], "--overwrite"], "input")


@pytest.mark.parametrize("flag, value, words", [
    ("--style-weight", "-1", ["--style-weight", "at least 0"]),
    ("--content-weight", "abc", ["--content-weight", "must be a number", "'abc'"]),
    ("--tv-weight", "nan", ["--tv-weight", "finite"]),
    ("--learning-rate", "0", ["positive"]),
    ("--iterations", "2.5", ["must be an integer"]),
    ("--size", "8", ["at least 16"]),
    ("--noise-ratio", "2", ["at most 1"]),
    ("--style-blend-weights", "-1", ["at least 0"]),
])
def test_bad_numbers(capsys, inputs, out, flag, value, words):
    refused(capsys, [inputs["content"], inputs["style"], "-o", out / "r.png", flag, value], *words, out_dir=out)


def test_unknown_style_layer_suggests(capsys, inputs, out):
    refused(capsys, [inputs["content"], inputs["style"], "-o", out / "r.png", "--style-layers", "conv1_1,conv3_l"],
            "unknown layer 'conv3_l'", "did you mean conv3_1", out_dir=out)


def test_unknown_content_layer_suggests(capsys, inputs, out):
    refused(capsys, [inputs["content"], inputs["style"], "-o", out / "r.png", "--content-layer", "conv42"],
            "did you mean", "conv4_2", out_dir=out)


def test_blend_weights_must_match_styles(capsys, inputs, out):
    refused(capsys, [inputs["content"], inputs["style"], "-o", out / "r.png", "--style-blend-weights", "1", "2"],
            "2 style blend weights for 1 style", out_dir=out)


def test_bad_init(capsys, inputs, out):
    refused(capsys, [inputs["content"], inputs["style"], "-o", out / "r.png", "--init", "zeros"], "--init",
            out_dir=out)
    refused(capsys, [inputs["content"], inputs["style"], "-o", out / "r.png", "--init", out / "missing.png"],
            "no such file", out_dir=out)


def test_learning_rate_with_lbfgs(capsys, inputs, out):
    refused(capsys, [inputs["content"], inputs["style"], "-o", out / "r.png", "--optimizer", "lbfgs",
                     "--learning-rate", "3"], "adam only", out_dir=out)


def test_missing_weights(capsys, inputs, out):
    refused(capsys, [inputs["content"], inputs["style"], "-o", out / "r.png", "--weights", out / "vgg.mat"],
            "not found", "python -m nst.weights", out_dir=out)


def test_unknown_flag(capsys, inputs, out):
    refused(capsys, [inputs["content"], inputs["style"], "-o", out / "r.png", "--style-wieght", "3"],
            "unrecognized arguments", out_dir=out)


# ------------------------------------------------------------------ awkward images are accepted

def _prepared(inputs, out, content, *extra):
    args = cli.build_parser().parse_args([str(inputs[content]), str(inputs["style"]), "-o", str(out / "r.png"),
                                          *extra])
    return cli._prepare(args)


@pytest.mark.parametrize("name", ["gray", "rgba", "deep", "cmyk"])
def test_awkward_images_accepted(inputs, out, name):
    settings, content, styles, *_ = _prepared(inputs, out, name)
    assert content.shape == (48, 64, 3) and content.dtype == np.uint8
    assert os.listdir(out) == []


def test_exif_rotation_honoured(inputs, out):
    _, content, *_ = _prepared(inputs, out, "rotated")
    assert content.shape == (64, 48, 3)  # orientation 6: displayed rotated, portrait


def test_prepare_lists_every_file(inputs, out):
    *_, paths, sizes = _prepared(inputs, out, "content", "--save-every", "4", "--iterations", "10", "--gif",
                                 "--no-multiscale")
    names = sorted(p.name for p in paths.values())
    assert names == ["r.gif", "r.json", "r.png", "r_0004.png", "r_0008.png", "r_compare.png", "r_costs.png"]


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    for expected in ("default: 512", "default: conv4_2", "conv1_1:0.2", "default: avg", "--preserve-colors",
                     "--multiscale", "default: lbfgs", "--style-blend-weights", "--seed",
                     # the defaults come from the engine's constants, so --help cannot drift from them
                     f"default: {stylize.DEFAULT_STYLE_WEIGHT}", "--no-multiscale",
                     ",".join(map(str, stylize.DEFAULT_SCHEDULE["lbfgs"])) + " with lbfgs",
                     f"{stylize.DEFAULT_ITERATIONS['lbfgs']} and {stylize.DEFAULT_ITERATIONS['adam']} with --no-multiscale"):
        assert expected in text, expected


# ------------------------------------------------------------------ NaN in the costs (tiny network)

def test_nan_in_costs_keeps_best_and_says_so(capsys, inputs, out, tmp_path, monkeypatch):
    from tiny_vgg import write_tiny_vgg

    from nst.optimise.optimizers import Tracker

    weights = write_tiny_vgg(tmp_path / "tiny.mat")
    # NaN from iteration 1 on, injected: whether a huge weight overflows depends on the host's kernels.
    report = Tracker.report
    monkeypatch.setattr(Tracker, "report", lambda self, i, costs, pixels: report(
        self, i, {k: float("nan") for k in costs} if i >= 1 else costs, pixels))
    status = cli.main([str(inputs["content"]), str(inputs["style"]), "-o", str(out / "r.png"), "--weights",
                       str(weights), "--optimizer", "adam", "--iterations", "20", "--size", "64", "-q"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith("error: the cost became nan") and "kept the best image (iteration 0)" in err
    assert "\n" not in err
    saved = np.asarray(Image.open(out / "r.png"))
    np.testing.assert_array_equal(saved, np.asarray(Image.open(inputs["content"])))  # the start: content
    record = json.loads((out / "r.json").read_text())
    assert record["status"] == "nonfinite" and record["best_iteration"] == 0


# ------------------------------------------------------------------ real runs through the console script

def _run(argv, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([str(NST), *map(str, argv)], capture_output=True, text=True, env=env, timeout=600,
                          **kwargs)


@pytest.mark.host
def test_console_script_real_run(sample_pair, weights_path, tmp_path):
    content, style = sample_pair
    out = tmp_path / "tubingen_starry.png"
    # fp32 pinned (auto is bf16 on some hosts): the checks below are about the files and the record.
    done = _run([content, style, "-o", out, "--size", "96", "--iterations", "12", "--save-every", "6",
                 "--print-every", "6", "--gif", "--seed", "3", "--precision", "fp32"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert "iteration 6/12" in done.stderr and "iteration 12/12" in done.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["tubingen_starry.png", "tubingen_starry_compare.png", "tubingen_starry_costs.png",
                            "tubingen_starry.json", "tubingen_starry.gif", "tubingen_starry_0006.png",
                            "tubingen_starry_0012.png"])
    result = np.asarray(Image.open(out))
    assert result.shape == (72, 96, 3)
    compare = Image.open(tmp_path / "tubingen_starry_compare.png")
    # content (96) | style (1024x640 at height 72: 115) | result (96), 8 px gaps
    assert compare.size == (96 + 8 + 115 + 8 + 96, 72)
    assert Image.open(tmp_path / "tubingen_starry_costs.png").size[0] > 300
    assert Image.open(tmp_path / "tubingen_starry.gif").n_frames >= 5
    record = json.loads((tmp_path / "tubingen_starry.json").read_text())
    assert record["status"] == "done" and record["steps"] == 12
    assert record["settings"]["seed"] == 3 and record["settings"]["optimizer"] == "lbfgs"
    assert record["settings"]["style_layers"][0] == ["conv1_1", 0.2]
    assert record["sizes"] == [[96, 72]]
    history = record["history"]
    assert record["settings"]["precision"] == "fp32"
    # It starts at the content photo: no content cost, to the kernels' rounding (tests/optimise/test_stylize.py).
    assert history[0]["content"] <= NO_CONTENT_COST * history[0]["total"]
    assert record["final_costs"]["total"] < 0.5 * history[0]["total"]
    assert record["final_costs"]["total"] == min(row["total"] for row in history)
    # The sliced-Wasserstein term is on by default and recorded beside the other costs.
    assert record["settings"]["distribution_weight"] > 0 and history[-1]["distribution"] > 0
    # The result is stylised: not the content any more, yet the same scene.
    small = np.asarray(Image.open(content).resize((96, 72), Image.LANCZOS)).astype(float)
    difference = np.abs(result - small).mean()
    assert 5 < difference < 80

    # Rerunning from the JSON's settings repeats the run bit for bit.
    again = tmp_path / "again"
    again.mkdir()
    repeat = _run([content, style, "-o", again / "r.png", "--size", "96", "--iterations", "12", "--seed", "3",
                   "--precision", "fp32", "--no-pictures", "-q"])
    assert repeat.returncode == 0, repeat.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(again / "r.png")), result)

    # A failing run writes nothing: the output exists and --overwrite is missing.
    before = sorted(p.name for p in tmp_path.iterdir())
    failed = _run([content, style, "-o", out, "--size", "64"])
    assert failed.returncode == 2 and failed.stderr.startswith("error: ") and "--overwrite" in failed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.slow
def test_python_dash_m_and_multiscale_preserve_colors(sample_pair, weights_path, tmp_path):
    content, style = sample_pair
    out = tmp_path / "r.png"
    done = subprocess.run([sys.executable, "-m", "nst", content, style, "-o", out, "--size", "96", "--multiscale",
                           "--min-size", "48", "--iterations", "4", "--optimizer", "adam", "--learning-rate", "5",
                           "--preserve-colors", "--no-pictures", "-q"], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["sizes"] == [[48, 36], [96, 72]] and record["steps"] == 8
    assert record["settings"]["preserve_colors"] is True and record["settings"]["learning_rate"] == 5
    from nst.optimise.stylize import rgb_to_yiq

    result = np.asarray(Image.open(out)).astype(float)
    small = np.asarray(Image.open(content).resize((96, 72), Image.LANCZOS)).astype(float)
    assert np.abs(rgb_to_yiq(result)[..., 1:] - rgb_to_yiq(small)[..., 1:]).mean() < 1.5


@pytest.mark.host
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_saves_best_image(sample_pair, weights_path, tmp_path, signum):
    content, style = sample_pair
    out = tmp_path / "r.png"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen([str(NST), content, style, "-o", out, "--size", "96", "--iterations", "500",
                                "--save-every", "2", "--no-pictures"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env,
                               # A job started in the background ('cmd &') inherits SIGINT ignored,
                               # and Python then never raises KeyboardInterrupt: give the child the
                               # terminal's default, as a user pressing Ctrl-C has.
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 300
        while not (tmp_path / "r_0002.png").exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.2)  # pacing a poll of an observable state (an intermediate image)
        assert process.poll() is None, "finished before it could be interrupted"
        process.send_signal(signum)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "interrupted: saved the best image so far" in err
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["status"] == "interrupted" and 2 <= record["steps"] < 500
    assert np.asarray(Image.open(out)).shape == (72, 96, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_help_lists_every_command_and_help_gives_each_page(capsys):
    from nst.commands import main
    from nst.commands.registry import COMMANDS

    assert main(["--help"]) == 0
    listing = capsys.readouterr().out
    for command in COMMANDS:  # each with its one-line summary
        assert f"nst {command.name}" in listing and command.summary in " ".join(listing.split())
    assert main(["help", "video"]) == 0
    assert capsys.readouterr().out.startswith("usage: nst video")
    assert main(["help"]) == 0 and capsys.readouterr().out.startswith("usage: nst ")
    assert main(["help", "vidoe"]) == 2
    assert capsys.readouterr().err.startswith("error: no command 'vidoe'; the commands are video, batch, serve")
