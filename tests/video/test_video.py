"""`nst video`: frames, frame rate and sound kept; less flicker with consistency on; bad input refused.

The clip is made here with the ffmpeg binary that imageio-ffmpeg ships: 12
frames at 12 fps, 128x96, a textured square moving 3 px right and 2 px down per
frame over a still textured background, with a 440 Hz tone.  The flicker
measure uses the *known* motion of that clip (not the optical flow the tool
computes), so the tool's own flow cannot flatter it.
"""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from nst.fast import stylizer as fast, network as fastnet
from nst.io import images
from nst.video import io as video_io, temporal as video
from nst.video.ffmpeg import ffmpeg_exe
from nst.commands import video as video_cli
from nst.weights import fetch as weights_fetch

WIDTH, HEIGHT, FPS, FRAMES = 128, 96, 12, 12
SQUARE, STEP = 36, (3, 2)  # side of the moving square and its motion per frame (dx, dy), pixels
STYLE = Path(__file__).resolve().parents[2] / "images" / "starry_night.jpg"
# Frames per run in the tests of containers and folders, kept short.  (A clip this short never reaches
# XLA's compile: `nst video` skips it under fastnet.COMPILE_PAYS_FROM frames a process, see
# test_video_pool.test_a_short_clip_never_builds_the_xla_graph; the compiled graph itself is checked
# against PyTorch in test_fast.)
SHORT_RUN = fastnet.COMPILE_AFTER


def _square_corner(index):
    return 10 + STEP[0] * index, 8 + STEP[1] * index  # (x, y)


def synthetic_frames():
    rng = np.random.default_rng(7)
    # Smooth noise textures (blocky, then blurred by the resize), so the flow has structure to follow.
    background = images.resize(rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8), WIDTH, HEIGHT)
    texture = images.resize(rng.integers(0, 256, (SQUARE // 4, SQUARE // 4, 3), dtype=np.uint8), SQUARE, SQUARE)
    frames = []
    for index in range(FRAMES):
        frame = background.copy()
        x, y = _square_corner(index)
        frame[y:y + SQUARE, x:x + SQUARE] = texture
        frames.append(frame)
    return frames


def _encode_clip(path, frames):
    """``frames`` (uint8 [HEIGHT, WIDTH, 3] each) as an H.264 mp4 with an AAC tone, encoded near-losslessly."""
    command = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-",
               "-f", "lavfi", "-i", f"sine=frequency=440:duration={len(frames) / FPS}",
               "-c:v", "libx264", "-crf", "4", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)]
    subprocess.run(command, input=b"".join(f.tobytes() for f in frames), check=True)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The synthetic clip of FRAMES frames."""
    return _encode_clip(tmp_path_factory.mktemp("clip") / "square.mp4", synthetic_frames())


# A clip no machine stylises in the moments between the test seeing frame 2 done and its Ctrl-C landing
# (an EPYC Zen 4 does the 12-frame clip at 14-19 frames/s, before a signal sent at frame 2 arrived).
LONG_FRAMES = FRAMES * 25


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """The synthetic clip looped to LONG_FRAMES frames (25 s), for tests that stop a run part-way."""
    return _encode_clip(tmp_path_factory.mktemp("long") / "long.mp4", synthetic_frames() * (LONG_FRAMES // FRAMES))


@pytest.fixture(scope="module")
def stylizer():
    return fast.FastStylizer(*weights_fetch.ensure_fast_weights())


def true_motion(index):
    """Backward flow of frame ``index`` (t -> t-1) and where it is reliable, from the clip's known motion.

    The square's pixels came from 3 px left, 2 px up; the background did not move.  Unreliable: a
    band of 3 px around the square's old and new outlines (disocclusions and boundaries).
    """
    flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    mask = np.ones((HEIGHT, WIDTH), np.float32)
    band = 3
    for corner in (_square_corner(index - 1), _square_corner(index)):
        x, y = corner
        mask[max(0, y - band):y + SQUARE + band, max(0, x - band):x + SQUARE + band] = 0
    x, y = _square_corner(index)
    flow[y:y + SQUARE, x:x + SQUARE] = (-STEP[0], -STEP[1])
    mask[y + band:y + SQUARE - band, x + band:x + SQUARE - band] = 1
    return flow, mask


def mean_warping_error(outputs):
    from nst.video.flow import warping_error

    errors = [warping_error(outputs[t], outputs[t - 1], *true_motion(t)) for t in range(1, len(outputs))]
    return float(np.mean(errors))


def test_warping_error_drops_with_consistency(stylizer):
    frames = synthetic_frames()
    style = images.resize(images.read_rgb(STYLE), 128, 101)
    stylise = video.fast_frame_stylist(stylizer, [style])
    stylised = [stylise(frame) for frame in frames]  # stylised once, blended three ways
    errors, detail = {}, {}
    for consistency in (0.0, 0.5, 0.9):
        done = list(video.stylize_fast(frames, stylise=_lookup(frames, stylised),
                                       consistency=consistency))
        assert [d.index for d in done] == list(range(FRAMES))
        errors[consistency] = mean_warping_error([d.output for d in done])
        detail[consistency] = np.mean([fine_detail(d.output) for d in done])
    # Independent frames flicker inside the moving square; blending along the flow must cut that.
    assert errors[0.0] > 0.01
    assert errors[0.5] < 0.75 * errors[0.0]
    assert errors[0.9] < errors[0.5]
    # ... without flattening the brush strokes: a plain blend keeps 91 % of the finest texture here, the
    # band-restoring one 101 % (measured); the issue allows the style cost 10 % off independent frames.
    assert detail[0.9] > 0.97 * detail[0.0], detail


def test_warp_follows_the_flow_and_lanczos_keeps_texture():
    from nst.video.flow import warp

    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    flow = np.zeros((40, 50, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2, -1  # out[y, x] = image[y - 1, x + 2]
    for interpolation in ("linear", "cubic", "lanczos"):
        np.testing.assert_array_equal(warp(noise, flow, interpolation)[1:, :-2], noise[:-1, 2:])
    # Half a pixel there and back: bilinear averages neighbours twice, Lanczos much less.
    half = np.zeros_like(flow)
    half[..., 0] = 0.5
    kept = {name: fine_detail(warp(warp(noise, half, name), -half, name)[4:-4, 4:-4]) / fine_detail(noise)
            for name in ("linear", "lanczos")}
    assert kept["lanczos"] > 1.2 * kept["linear"], kept
    with pytest.raises(ValueError, match="interpolation"):
        warp(noise, flow, "nearest")


def test_blend_leaves_a_frame_alone_where_the_previous_output_already_agrees():
    rng = np.random.default_rng(5)
    stylised = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    guide = video.Guide(stylised.copy(), np.ones((48, 64), np.float32))
    out = video.blend(stylised, guide, 0.9)
    assert np.abs(out.astype(int) - stylised).max() <= 1


def fine_detail(image):
    """Mean |image - its 5x5 box blur|: the strength of the finest texture, which averaging would flatten."""
    import cv2

    image = image.astype(np.float32)
    return float(np.abs(image - cv2.blur(image, (5, 5))).mean())


def _lookup(frames, stylised):
    """frame -> its stylised version, by identity (the frames are stylised once above)."""
    table = {id(frame): out for frame, out in zip(frames, stylised)}
    return lambda frame: table[id(frame)]


def test_consistency_zero_is_independent_frames(stylizer):
    frames = synthetic_frames()[:3]
    style = images.resize(images.read_rgb(STYLE), 128, 101)
    stylise = video.fast_frame_stylist(stylizer, [style])
    done = list(video.stylize_fast(frames, stylise, consistency=0))
    for frame, result in zip(frames, done):
        np.testing.assert_array_equal(result.output, stylise(frame))
        assert result.reliable_share == 0


def test_cli_keeps_frames_rate_and_sound(clip, tmp_path, capsys):
    out = tmp_path / "styled.mp4"
    status = video_cli.main([str(clip), str(STYLE), "-o", str(out), "--size", "0", "-q"])
    assert status == 0, capsys.readouterr().err
    made = video_io.describe(out)
    assert made["frames"] == FRAMES
    assert made["fps"] == FPS
    assert made["size"] == (WIDTH, HEIGHT)
    assert made["has_audio"]
    assert abs(made["audio_seconds"] - FRAMES / FPS) < 0.1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_cli_piece_to_gif_and_folder(clip, tmp_path, capsys):
    gif = tmp_path / "piece.gif"
    assert video_cli.main([str(clip), str(STYLE), "-o", str(gif), "--size", "64", "--start", "0.25",
                           "--max-frames", str(SHORT_RUN), "-q"]) == 0, capsys.readouterr().err
    made = video_io.describe(gif)
    assert made["frames"] == SHORT_RUN and made["size"] == (64, 48)
    folder = tmp_path / "frames"
    # --size 0 keeps the gif's 64x48 (the default long side, 640, would stylise 100 times as many pixels
    # and take minutes; test_interrupted_run_leaves_a_playable_video runs the default size).
    assert video_cli.main([str(gif), str(STYLE), "-o", str(folder), "--consistency", "0", "--size", "0",
                           "-q"]) == 0
    frame_names = [f"frame_{i:06d}.png" for i in range(1, SHORT_RUN + 1)]
    assert sorted(p.name for p in folder.iterdir()) == frame_names + ["video.json"]
    again = tmp_path / "again.mp4"
    assert video_cli.main([str(folder), str(STYLE), "-o", str(again), "--fps", "8", "--size", "0", "-q"]) == 0
    assert video_io.describe(again)["frames"] == SHORT_RUN and video_io.describe(again)["fps"] == 8


def test_frame_folder_keeps_rate_and_sound_for_the_way_back(clip, tmp_path, capsys):
    """mp4 -> a folder of frames (+ sidecar) -> mp4 again, with no --fps: the clip's rate and sound come back."""
    import json

    folder = tmp_path / "frames"
    # --size 0 throughout: the clip's own 128x96, as in test_cli_keeps_frames_rate_and_sound.
    assert video_cli.main([str(clip), str(STYLE), "-o", str(folder), "--max-frames", str(SHORT_RUN), "--size", "0",
                           "-q"]) == 0, \
        capsys.readouterr().err
    record = json.loads((folder / video_io.SIDECAR_NAME).read_text())
    assert record["fps"] == str(FPS) and record["frames"] == SHORT_RUN and record["audio"] == video_io.SIDECAR_AUDIO
    assert video_io.describe(folder)["fps"] == FPS and video_io.describe(folder)["has_audio"]
    again = tmp_path / "again.mp4"
    assert video_cli.main([str(folder), str(STYLE), "-o", str(again), "--consistency", "0", "--size", "0",
                           "-q"]) == 0, \
        capsys.readouterr().err
    made = video_io.describe(again)
    assert made["frames"] == SHORT_RUN and made["fps"] == FPS and made["has_audio"]
    assert abs(made["audio_seconds"] - SHORT_RUN / FPS) < 0.1  # the clip's sound lasts 1 s
    # --fps still wins over the sidecar; a damaged sidecar is refused in one line.
    faster = tmp_path / "faster.mp4"
    assert video_cli.main([str(folder), str(STYLE), "-o", str(faster), "--consistency", "0", "--fps", "24",
                           "--size", "0", "-q"]) == 0
    assert video_io.describe(faster)["fps"] == 24
    (folder / video_io.SIDECAR_NAME).write_text("{not json")
    _refused([str(folder), str(STYLE), "-o", str(tmp_path / "b.mp4")], capsys, "not a valid sidecar")


def _refused(argv, capsys, expect):
    assert video_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert expect in err, err


def test_bad_inputs_refused_in_one_line(clip, tmp_path, capsys):
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is not a video\n")
    _refused([str(not_video), str(STYLE), "-o", str(tmp_path / "a.mp4")], capsys, "not a video")
    _refused([str(tmp_path / "missing.mp4"), str(STYLE), "-o", str(tmp_path / "a.mp4")], capsys, "not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused([str(empty), str(STYLE), "-o", str(tmp_path / "a.mp4")], capsys, "holds no frames")
    sound_only = tmp_path / "tone.m4a"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=0.5",
                    str(sound_only)], check=True)
    _refused([str(sound_only), str(STYLE), "-o", str(tmp_path / "a.mp4")], capsys, "no video stream")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size * 2 // 3])  # the index (moov) is at the end
    _refused([str(truncated), str(STYLE), "-o", str(tmp_path / "a.mp4")], capsys, "truncated.mp4")
    _refused([str(clip), str(STYLE), "-o", str(tmp_path / "a.avi")], capsys, "unknown video type")
    _refused([str(clip), str(STYLE), "-o", str(tmp_path / "nowhere" / "a.mp4")], capsys, "does not exist")
    _refused([str(clip), str(STYLE), "-o", str(clip), "--overwrite"], capsys, "is one of the inputs")
    _refused([str(clip), str(STYLE), "-o", str(tmp_path / "a.mp4"), "--start", "5"], capsys, "past the end")
    _refused([str(clip), str(STYLE), "-o", str(tmp_path / "a.mp4"), "--consistency", "1.5"], capsys, "consistency")
    assert not (tmp_path / "a.mp4").exists()


def test_unwritable_output_folder_refused(clip, tmp_path, capsys):
    # /proc takes no new files, even from root (for whom mode bits would not stop the write).
    if not Path("/proc/self").exists():
        pytest.skip("needs Linux's /proc")
    _refused([str(clip), str(STYLE), "-o", "/proc/nst-video-test.mp4"], capsys, "not writable")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    _refused([str(clip), str(STYLE), "-o", str(a_file / "a.mp4")], capsys, "does not exist")


def test_interrupted_run_leaves_a_playable_video(clip, tmp_path, monkeypatch, capsys):
    """Ctrl-C after the third frame: the video holds those three frames and plays."""
    out = tmp_path / "stopped.mp4"
    real = video.stylize_fast

    def stop_after_three(*args, **kwargs):
        for done in real(*args, **kwargs):
            if done.index == 3:
                raise KeyboardInterrupt
            yield done

    monkeypatch.setattr(video, "stylize_fast", stop_after_three)
    assert video_cli.main([str(clip), str(STYLE), "-o", str(out), "-q"]) == 130
    made = video_io.describe(out)
    assert made["frames"] == 3 and made["has_audio"]
    assert abs(made["audio_seconds"] - 3 / FPS) < 0.1


def signal_after_frames(process, frames: int, signal_it, timeout=240) -> bytes:
    """Read ``process``'s stderr until its progress bar counts ``frames`` frames done of LONG_FRAMES, then
    call ``signal_it()``; return the stderr seen.  (The deadline only bounds a broken run.)"""
    import os
    import re
    import select
    import time

    counter = re.compile(rb" (\d+)/%d " % LONG_FRAMES)
    seen, deadline = b"", time.monotonic() + timeout
    while max((int(n) for n in counter.findall(seen)), default=0) < frames and time.monotonic() < deadline:
        if select.select([process.stderr], [], [], 1.0)[0]:
            chunk = os.read(process.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    signal_it()
    return seen


def run_story(seen: bytes, rest: bytes) -> str:
    """What a failed signal test shows: the start of stderr, where the signal was sent, and the end."""
    before, after = seen.decode(errors="replace"), rest.decode(errors="replace")
    return f"{before[:1500]}\n... [signal sent here] ...\n{before[-300:]}\n--- after the signal ---\n{after[-1500:]}"


@pytest.mark.host
def test_ctrl_c_on_the_command_keeps_a_playable_video(long_clip, tmp_path):
    """A real SIGINT to `nst video` once two frames are done: status 130 and a video of the frames done."""
    import os
    import signal
    import sys

    out = tmp_path / "ctrl_c.mp4"
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    # As in a terminal's foreground: SIGINT at its default even when the tests run as a background job
    # (which ignores it, and `nst` rightly keeps ignoring what its parent ignored).
    process = subprocess.Popen([sys.executable, "-m", "nst", "video", str(long_clip), str(STYLE), "-o", str(out),
                                "--size", "0"], stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        seen = signal_after_frames(process, 2, lambda: process.send_signal(signal.SIGINT))
        _, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, run_story(seen, rest)
    made = video_io.describe(out)
    assert 2 <= made["frames"] < LONG_FRAMES and made["has_audio"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_optimised_method_starts_from_the_warped_previous_frame(clip, tmp_path, capsys, monkeypatch):
    """--method optimised: each frame after the first is optimised from the previous result warped,
    with the temporal cost; the video keeps its frames, rate and sound."""
    from nst.optimise import stylize

    calls = []
    real_run = stylize.Stylizer.run

    def recording_run(self, content, styles, callback=None, init=None, temporal=None):
        calls.append((init is not None, temporal is not None and float(temporal.mask.mean()) > 0.5))
        return real_run(self, content, styles, callback=callback, init=init, temporal=temporal)

    monkeypatch.setattr(stylize.Stylizer, "run", recording_run)
    out = tmp_path / "optimised.mp4"
    argv = [str(clip), str(STYLE), "-o", str(out), "--method", "optimised", "--size", "64", "--max-frames", "3",
            "--iterations", "3", "-q"]
    assert video_cli.main(argv) == 0, capsys.readouterr().err
    assert calls == [(False, False), (True, True), (True, True)]
    made = video_io.describe(out)
    assert made["frames"] == 3 and made["fps"] == FPS and made["has_audio"] and made["size"] == (64, 48)


def test_method_only_flags_refused(clip, tmp_path, capsys):
    _refused([str(clip), str(STYLE), "-o", str(tmp_path / "a.mp4"), "--iterations", "5"], capsys, "--iterations")
    _refused([str(clip), str(STYLE), "-o", str(tmp_path / "a.mp4"), "--method", "optimised", "--alpha", "0.5"],
             capsys, "--alpha")


def test_optimised_frames_too_large_to_hold_whole_are_refused_before_loading(clip, tmp_path, capsys, monkeypatch):
    """The temporal term has no tiled path: a frame the fast mode could tile, the optimised method refuses
    at once, naming a size that fits (nst.host.budget's whole-picture model at 2.5 GiB free)."""
    from nst.host import budget

    monkeypatch.setattr(budget, "available_bytes", lambda: 2560 * 2 ** 20)
    monkeypatch.setattr("nst.weights.fetch.weights_for_use", lambda *a: pytest.fail("the weights were looked up"))
    argv = [str(clip), str(STYLE), "-o", str(tmp_path / "a.mp4"), "--method", "optimised", "--size", "640"]
    # 1600 MiB + 4.6 KiB a pixel: 960 MiB leave 213,700 pixels, 533x400 at the clip's 4:3.
    _refused(argv, capsys, "lower --size to about 533 or use --method fast")
    assert not (tmp_path / "a.mp4").exists()
