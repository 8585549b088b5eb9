#!/usr/bin/env python3
"""Flicker, look and speed of `nst video` (issue 16).

    python bench/bench_video.py [--frames 10] [--rounds 2] [--consistency 0.7] [--seconds 6]
    python bench/bench_video.py --look-only --frames 10 --sweep 0.5 0.7 1   # flicker and look, no timing
    python bench/bench_video.py --method optimised --frames 6 --size 256 --iterations 20 \
        --temporal-weights 0.01 0.1 1                                      # Ruder et al.'s method

The clip: a 6 s, 25 fps, 854x480 camera move (a slow pan and a 1.0 -> 1.3
zoom, sub-pixel smooth) over the project's sample photo ``tubingen.jpg``
(jcjohnson/neural-style's examples, MIT-licensed repository; fetched
hash-checked by ``nst.io.images.fetch_sample``), with a 330 Hz tone as its sound
track, encoded by the bundled ffmpeg into bench/out/video/.  Style: The
Starry Night.  Only the first ``--frames`` frames are stylised per run.

Printed:
* the CPU model and flags;
* the temporal warping error (Lai et al., ECCV 2018): mean |O_t - warp(O_{t-1})|
  over non-occluded pixels, in 0..1 units, for independent frames and with
  consistency.  The flow and the occlusion mask used here come from OpenCV's
  Farneback method on the input frames, *not* the DIS flow the tool blends
  with, so the tool's own flow cannot flatter itself;
* the style cost per frame (the course's 0.2 x conv1_1..conv5_1 Gram cost,
  bench_look's Judge, on frames 1, 1 + n, ...: frame 0 is the same either way)
  with consistency, divided by that of independent frames;
* frames per second at 360p and 480p: the fast mode alone (frames already in
  memory, style statistics cached: ``FastStylizer.stylize``) and the whole
  pipeline (decode, stylise, flow, blend, encode with sound) with
  consistency 0 and on.
With ``--method optimised``: the same two measures for independent optimised
frames and for Ruder et al.'s (warped start, temporal cost), at each temporal
weight asked for, on a short piece at a small size.
Pictures: bench/out/video/still.jpg (one output frame), sheet.png (input,
independent, consistent, and both warping-error maps for four frames) and
crops.png (a flat and a busy square of the last frame, input / independent /
consistent, enlarged 3x).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OUT = HERE / "out" / "video"
FPS = 25
SIZES = {"360p": (640, 360), "480p": (854, 480)}
ZOOM_END = 1.3  # the crop shrinks to 1/1.3 of its first size over the clip
SWEEP = (0.3, 0.5, 0.7, 0.9, 1.0)  # consistencies re-blended from the same stylised frames


def camera_frames(photo: np.ndarray, width: int, height: int, count: int):
    """A smooth pan and zoom over ``photo``: ``count`` uint8 frames [height, width, 3]."""
    import cv2

    ph, pw = photo.shape[:2]
    for index in range(count):
        progress = index / max(1, count - 1)
        zoom = 1.0 + (ZOOM_END - 1.0) * progress
        crop_w = min(pw, ph * width / height) / zoom  # crop size in photo pixels, output aspect
        crop_h = crop_w * height / width
        left = (pw - crop_w) * (0.1 + 0.8 * progress)  # left to right
        top = (ph - crop_h) * (0.5 + 0.3 * np.sin(2 * np.pi * progress) / 2)
        scale = width / crop_w
        matrix = np.array([[scale, 0, -left * scale], [0, scale, -top * scale]], np.float32)
        yield cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


def make_clip(path: Path, seconds: float) -> Path:
    from nst.io import images
    from nst.video.ffmpeg import ffmpeg_exe

    photo = images.read_rgb(images.fetch_sample("tubingen.jpg"))
    width, height = SIZES["480p"]
    count = int(seconds * FPS)
    command = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", str(FPS), "-i", "-", "-f", "lavfi", "-i",
               f"sine=frequency=330:duration={seconds}", "-c:v", "libx264", "-crf", "16", "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-shortest", str(path)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE)
    for frame in camera_frames(photo, width, height, count):
        process.stdin.write(frame.tobytes())
    process.stdin.close()
    if process.wait() != 0:
        raise SystemExit("ffmpeg could not write the clip")
    return path


def farneback_motion(frame, previous):
    """Backward flow (t -> t-1) and Ruder et al.'s reliability mask, from Farneback's flow (not DIS)."""
    import cv2

    from nst.video import flow

    a, b = flow.gray(frame), flow.gray(previous)
    options = dict(pyr_scale=0.5, levels=4, winsize=21, iterations=3, poly_n=7, poly_sigma=1.5, flags=0)
    backward = cv2.calcOpticalFlowFarneback(a, b, None, **options)
    forward = cv2.calcOpticalFlowFarneback(b, a, None, **options)
    return backward, flow.reliable(backward, forward)


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its finished children (ffmpeg)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_pipeline(clip_path, size, frames, stylizer, styles, consistency, out_path):
    """Decode, stylise, flow, blend, encode with sound: what `nst video` does.

    Returns (outputs, wall seconds, seconds inside the stylise calls, CPU seconds with ffmpeg's).
    """
    from nst.video import temporal as video, io as video_io

    clip = video_io.trim(video_io.open_clip(clip_path), max_frames=frames)
    writer = video_io.VideoWriter(out_path, *size, clip.fps, video_io.AudioSource(clip.path))
    stylise = video.fast_frame_stylist(stylizer, styles)
    outputs, stylising = [], 0.0
    started, cpu = time.perf_counter(), cpu_seconds()
    for done in video.stylize_fast(video_io.read_frames(clip, *size), stylise, consistency):
        writer.write(done.output)
        outputs.append(done.output)
        stylising += done.seconds["stylise"]
    writer.finish()
    return outputs, time.perf_counter() - started, stylising, cpu_seconds() - cpu


def fast_alone(frames, stylizer, styles) -> tuple:
    """(wall seconds, CPU seconds) of the fast mode on frames already in memory."""
    started, cpu = time.perf_counter(), cpu_seconds()
    for frame in frames:
        stylizer.stylize(frame, styles)
    return time.perf_counter() - started, cpu_seconds() - cpu


def time_size(name, size, clip_path, args, stylizer, style, consistency):
    """Interleaved rounds of (fast mode alone, pipeline at 0, pipeline at ``consistency``); the best of each.

    The host is shared, so a single run's rate moves with the other jobs' load: the best
    round of each is compared, and so are CPU seconds (this process's threads and the
    ffmpeg children's), which the other jobs' load moves much less.
    """
    frames = decoded(clip_path, size, args.frames)
    stylizer.stylize(frames[0], [style])  # trace the networks at this size and cache the style
    best = {"alone": float("inf"), "off": float("inf"), "on": float("inf")}
    cpu = {"alone": float("inf"), "off": float("inf"), "on": float("inf")}
    outputs = {}
    for _ in range(args.rounds):
        seconds, cpu_used = fast_alone(frames, stylizer, [style])
        best["alone"], cpu["alone"] = min(best["alone"], seconds), min(cpu["alone"], cpu_used)
        for key, c in (("off", 0.0), ("on", consistency)):
            outputs[key], seconds, _, cpu_used = run_pipeline(clip_path, size, args.frames, stylizer, [style], c,
                                                              OUT / f"{name}_c{c:g}.mp4")
            best[key], cpu[key] = min(best[key], seconds), min(cpu[key], cpu_used)
    n = len(frames)
    print(f"{name} {size[0]}x{size[1]}, best of {args.rounds} interleaved rounds of {n} frames: fast mode alone "
          f"{n / best['alone']:.3f} frame/s; pipeline at consistency 0: {n / best['off']:.3f} frame/s "
          f"({best['alone'] / best['off']:.0%} of the fast mode's rate); at consistency {consistency}: "
          f"{n / best['on']:.3f} frame/s ({best['alone'] / best['on']:.0%}; {best['on'] / best['off'] - 1:+.0%} "
          f"against consistency 0)")
    print(f"    CPU seconds per frame (best round): fast mode alone {cpu['alone'] / n:.2f}; pipeline at "
          f"consistency 0 {cpu['off'] / n:.2f} ({cpu['alone'] / cpu['off']:.0%} of the fast mode's rate); at "
          f"consistency {consistency} {cpu['on'] / n:.2f} ({cpu['alone'] / cpu['on']:.0%}; "
          f"{cpu['on'] / cpu['off'] - 1:+.0%} against consistency 0)")
    return frames, outputs["off"], outputs["on"]


def decoded(clip_path, size, frames):
    from nst.video import io as video_io

    clip = video_io.trim(video_io.open_clip(clip_path), max_frames=frames)
    return list(video_io.read_frames(clip, *size))


def warping_errors(inputs, outputs) -> float:
    from nst.video.flow import warping_error

    errors = []
    for t in range(1, len(inputs)):
        backward, mask = farneback_motion(inputs[t], inputs[t - 1])
        errors.append(warping_error(outputs[t], outputs[t - 1], backward, mask))
    return float(np.mean(errors))


def error_map(inputs, outputs, t) -> np.ndarray:
    from nst.video.flow import warp

    backward, mask = farneback_motion(inputs[t], inputs[t - 1])
    difference = np.abs(outputs[t].astype(np.float32) - warp(outputs[t - 1], backward)).mean(axis=-1) * mask
    return np.repeat(np.clip(difference * 4, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)  # x4: visible


def save_pictures(inputs, independent, consistent):
    from PIL import Image

    Image.fromarray(consistent[len(consistent) // 2]).save(OUT / "still.jpg", quality=88)
    picks = [max(1, len(inputs) * k // 4) for k in (1, 2, 3)] + [len(inputs) - 1]  # t >= 1: a previous frame
    rows = [[row[t] for t in picks] for row in (inputs, independent, consistent)]
    rows += [[error_map(inputs, outputs, t) for t in picks] for outputs in (independent, consistent)]
    rows = [np.concatenate(row, axis=1) for row in rows]
    sheet = np.concatenate(rows, axis=0)
    Image.fromarray(sheet).resize((sheet.shape[1] // 2, sheet.shape[0] // 2), Image.LANCZOS).save(OUT / "sheet.png")
    save_crops(inputs, independent, consistent)


def save_crops(inputs, independent, consistent, side=96, zoom=3):
    """crops.png: the last frame's flattest and busiest ``side``-px squares, input / independent / consistent,
    each enlarged ``zoom`` times without smoothing, so the strokes of one pixel can be compared."""
    from PIL import Image

    last = len(inputs) - 1
    gray = inputs[last].astype(np.float32).mean(axis=2)
    busy = {}
    for top in range(0, gray.shape[0] - side + 1, side // 2):
        for left in range(0, gray.shape[1] - side + 1, side // 2):
            window = gray[top:top + side, left:left + side]
            busy[top, left] = np.abs(np.diff(window, axis=0)).mean() + np.abs(np.diff(window, axis=1)).mean()
    picks = [min(busy, key=busy.get), max(busy, key=busy.get)]  # a flat area (sky), a textured one
    rows = []
    for top, left in picks:
        crops = [image[last][top:top + side, left:left + side] for image in (inputs, independent, consistent)]
        rows.append(np.concatenate([c.repeat(zoom, 0).repeat(zoom, 1) for c in crops], axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(OUT / "crops.png")


def style_judge(style):
    """``outputs, picks -> mean style cost`` of the picked frames against ``style`` (its Grams computed once)."""
    from bench_look import Judge

    judge = Judge()
    style_grams = judge.features.style_grams(style)
    judge.features.style_grams = lambda image, real=judge.features.style_grams: (
        style_grams if image is style else real(image))
    return lambda outputs, picks: float(np.mean([judge.style_cost(outputs[t], style) for t in picks]))


def sized_style(style_photo, long_side):
    from nst.io import images

    return images.resize(style_photo, *images.size_for_long_side(*style_photo.shape[:2], long_side)[::-1])


def look_fast(frames, off, consistency, args, style):
    """Warping error and style cost of independent frames, then re-blended at a sweep of consistencies."""
    from nst.video import temporal as video

    picks = list(range(1, len(frames), args.style_every))  # frame 0 is the same either way: left out
    style_cost = style_judge(style)
    base_error, base_cost = warping_errors(frames, off), style_cost(off, picks)
    print(f"{frames[0].shape[1]}x{frames[0].shape[0]}, independent frames: warping error {base_error:.4f} "
          f"(Farneback flow and mask), style cost per frame {base_cost:.5f} (frames {picks})")
    table = {id(frame): out for frame, out in zip(frames, off)}  # consistency 0 = the stylised frames
    blended_at = {}
    for c in sorted({*args.sweep, consistency}):
        blended_at[c] = [d.output for d in video.stylize_fast(frames, lambda f: table[id(f)], c)]
        error, cost = warping_errors(frames, blended_at[c]), style_cost(blended_at[c], picks)
        print(f"    consistency {c:g}: warping error {error:.4f} ({error / base_error - 1:+.0%}), style cost "
              f"{cost:.5f} (ratio {cost / base_cost:.3f})")
    return blended_at[consistency]


def bench_optimised(clip_path, args, style_photo) -> None:
    """Ruder et al.'s method on a short piece: independent optimised frames against the temporal ones."""
    from nst.video import temporal as video, io as video_io
    from nst.optimise.stylize import Settings, Stylizer

    clip = video_io.open_clip(clip_path)
    size = video_io.even_size(clip.width, clip.height, args.size)
    frames = decoded(clip_path, size, args.frames)
    style = sized_style(style_photo, max(size))
    stylizer = Stylizer(Settings(size=max(size), multiscale=False, iterations=args.iterations, seed=0))
    picks = list(range(1, len(frames), args.style_every))
    style_cost = style_judge(style)
    print(f"optimised method, {size[0]}x{size[1]}, {len(frames)} frames, {args.iterations} L-BFGS iterations "
          f"per frame; style cost on frames {picks}")
    consistency = video.DEFAULT_CONSISTENCY if args.consistency is None else args.consistency
    runs = [(0.0, 0.0)] + [(consistency, weight) for weight in args.temporal_weights or [video.TEMPORAL_WEIGHT_AT_FULL]]
    base = None
    for c, weight in runs:
        video.TEMPORAL_WEIGHT_AT_FULL = weight  # read by optimised_frame_stylist: the weight at consistency 1
        stylise = video.optimised_frame_stylist(stylizer, [style], c)
        started = time.perf_counter()
        outputs = [d.output for d in video.stylize_optimised(frames, stylise, c)]
        seconds = (time.perf_counter() - started) / len(frames)
        error, cost = warping_errors(frames, outputs), style_cost(outputs, picks)
        base = base or (error, cost)
        print(f"    consistency {c:g}, temporal weight at consistency 1 {weight:g}: warping error {error:.4f} "
              f"({error / base[0] - 1:+.0%}), style cost {cost:.5f} (ratio {cost / base[1]:.3f}); "
              f"{seconds:.1f} s per frame", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10, help="frames stylised per run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds per size")
    parser.add_argument("--consistency", type=float, default=None, help="default: the tool's")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the generated clip")
    parser.add_argument("--style-every", type=int, default=2, help="style cost on every n-th frame from frame 1")
    parser.add_argument("--sweep", type=float, nargs="*", default=list(SWEEP),
                        help="consistencies to compare (re-blended for the fast method, re-run for optimised)")
    parser.add_argument("--look-only", action="store_true", help="fast method: flicker and look at 480p, no timing")
    parser.add_argument("--method", choices=("fast", "optimised"), default="fast")
    parser.add_argument("--size", type=int, default=256, help="optimised method: long side of the frames")
    parser.add_argument("--iterations", type=int, default=20, help="optimised method: L-BFGS iterations per frame")
    parser.add_argument("--temporal-weights", type=float, nargs="*", default=None,
                        help="optimised method: temporal weights at consistency 1 to compare (default: the tool's)")
    args = parser.parse_args(argv)
    from bench_fast import cpu_description
    from nst.fast import stylizer as fast
    from nst.io import images
    from nst.video import temporal as video, io as video_io

    consistency = video.DEFAULT_CONSISTENCY if args.consistency is None else args.consistency
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {cpu_description()}; load average {os.getloadavg()[0]:.1f}")
    clip_path = make_clip(OUT / "tubingen_pan.mp4", args.seconds)
    print(f"clip: {clip_path} ({args.seconds:g} s, {FPS} fps, 854x480, tone); {args.frames} frames per run; "
          f"consistency {consistency}")
    style_photo = images.read_rgb(images.fetch_sample("starry_night.jpg"))
    if args.method == "optimised":
        bench_optimised(clip_path, args, style_photo)
        return 0
    stylizer = fast.FastStylizer()
    if args.look_only:
        frames = decoded(clip_path, SIZES["480p"], args.frames)
        style = sized_style(style_photo, 854)
        off = [stylizer.stylize(frame, [style]) for frame in frames]
        save_pictures(frames, off, look_fast(frames, off, consistency, args, style))
        return 0
    results = {name: time_size(name, size, clip_path, args, stylizer, sized_style(style_photo, max(size)),
                               consistency) for name, size in SIZES.items()}
    frames, off, on = results["480p"]
    look_fast(frames, off, consistency, args, sized_style(style_photo, 854))
    save_pictures(frames, off, on)
    made = video_io.describe(OUT / f"480p_c{consistency:g}.mp4")
    print(f"output: {made['frames']} frames, {float(made['fps']):g} fps, audio {made['has_audio']} "
          f"({made['audio_seconds']} s); pictures in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
