"""`nst video --workers N --ray`: segments planned and cross-faded, frames through the pool as in one process.

Uses test_video's synthetic clip (12 frames of 128x96 at 12 fps with a tone, a
textured square moving over a textured background) and its flicker measure,
which takes the clip's *known* motion rather than the tool's optical flow.
Frames are compared through PNG folders (lossless); frame rate and sound
through an mp4.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host_profiles import EPYC_ZEN3, EPYC_ZEN4
from nst.io import images
from nst.parallel import pool
from nst.commands import video as video_cli
from nst.video import io as video_io
from nst.video.segments import (OVERLAP, Segment, Stitcher, crossfade, in_order, plan_segments,
                                segments_of)
from nst.video.work import VideoWork
from test_video import (FPS, FRAMES, HEIGHT, LONG_FRAMES, STYLE, WIDTH, clip, long_clip,  # noqa: F401 (fixtures)
                        mean_warping_error, run_story, signal_after_frames)

ROOT = Path(__file__).resolve().parents[2]


# ---- segment planning and cross-fade (pure functions) -------------------------------------------

def test_plan_covers_every_frame_with_overlaps_of_the_named_size():
    for total in range(0, 40):
        for length in (8, 9, 13):
            segments = plan_segments(total, length)
            covered = [i for s in segments for i in range(s.start + s.shared, s.start + s.frames)]
            assert covered == list(range(total)), (total, length)  # each frame new in exactly one segment
            for before, after in zip(segments, segments[1:]):
                assert after.shared == OVERLAP and after.start == before.start + before.frames - OVERLAP
                assert before.frames == length  # only the last segment may be short
                assert after.frames > after.shared  # none holds only frames of the previous one
            if segments:
                assert segments[0] == Segment(0, min(length, total), 0)
                assert segments[-1].start + segments[-1].frames == total


def test_plan_examples_and_refusal():
    assert plan_segments(12, 8) == [Segment(0, 8, 0), Segment(4, 8, 4)]
    assert plan_segments(13, 8) == [Segment(0, 8, 0), Segment(4, 8, 4), Segment(8, 5, 4)]
    assert plan_segments(3, 8) == [Segment(0, 3, 0)]
    with pytest.raises(ValueError, match="at least 8"):
        plan_segments(20, 2 * OVERLAP - 1)


def test_streamed_segments_match_the_plan_and_carry_the_right_frames():
    for total in (1, 7, 8, 9, 12, 20, 33):
        frames = (np.full((2, 3, 3), index, np.uint8) for index in range(total))  # a generator: length unknown
        pieces = list(segments_of(frames, 8))
        assert [Segment(p.start, len(p.frames), p.shared) for p in pieces] == plan_segments(total, 8)
        for piece in pieces:
            assert [int(f[0, 0, 0]) for f in piece.frames] == list(range(piece.start, piece.start + len(piece.frames)))


def test_crossfade_is_linear_and_leaves_both_ends():
    earlier = np.zeros((OVERLAP, 2, 2, 3), np.uint8)
    later = np.full((OVERLAP, 2, 2, 3), 100, np.uint8)
    faded = crossfade(earlier, later)
    assert [int(f[0, 0, 0]) for f in faded] == [20, 40, 60, 80]  # (i + 1) / 5 of the later segment
    with pytest.raises(ValueError):
        crossfade(earlier, later[:2])


def test_stitcher_gives_every_frame_once_in_order():
    total, length = 13, 8
    outputs = []
    for number, segment in enumerate(plan_segments(total, length)):
        outputs.append((np.full((segment.frames, 1, 1, 3), 100 * number, np.uint8), segment.shared))
    stitcher = Stitcher()
    done = [frame for stack, shared in outputs for frame in stitcher.add(stack, shared)]
    done += list(stitcher.finish())
    values = [int(f[0, 0, 0]) for f in done]
    # segment 0 alone for frames 0-3, faded into segment 1 over 4-7, segment 1 into 2 over 8-11, then 2 alone
    assert values == [0] * 4 + [20, 40, 60, 80] + [120, 140, 160, 180] + [200]


def test_in_order_reorders_and_notices_a_gap():
    assert [i for i, _ in in_order([(2, "c"), (0, "a"), (1, "b"), (3, "d")])] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="missing"):
        list(in_order([(0, "a"), (2, "c")]))


# ---- the command ---------------------------------------------------------------------------------

def _frames(folder):
    return [images.read_rgb(path) for path in sorted(Path(folder).glob("frame_*.png"))]


def _run(argv, capsys, expect=0):
    status = video_cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert status == expect, err
    return err


@pytest.fixture(scope="module")
def one_process_frames(clip, tmp_path_factory):
    """The default path (no pool), independent frames, as PNG frames."""
    out = tmp_path_factory.mktemp("one") / "frames"
    assert video_cli.main([str(clip), str(STYLE), "-o", str(out), "--size", "0", "--consistency", "0", "-q"]) == 0
    return _frames(out)


def test_pool_in_this_process_gives_the_same_frames(clip, one_process_frames, tmp_path, capsys):
    out = tmp_path / "frames"
    _run([clip, STYLE, "-o", out, "--size", 0, "--consistency", 0, "--workers", 1, "-q"], capsys)
    pooled = _frames(out)
    assert len(pooled) == FRAMES == len(one_process_frames)
    for mine, theirs in zip(pooled, one_process_frames):
        np.testing.assert_array_equal(mine, theirs)  # the same network, threads and frames: the same bytes


def test_segmented_consistent_run_keeps_rate_and_sound_and_flickers_less(clip, one_process_frames, tmp_path,
                                                                         capsys):
    out = tmp_path / "segments.mp4"
    _run([clip, STYLE, "-o", out, "--size", 0, "--workers", 1, "--segment-frames", 8, "-q"], capsys)
    made = video_io.describe(out)
    assert made["frames"] == FRAMES and made["fps"] == FPS and made["size"] == (WIDTH, HEIGHT)
    assert made["has_audio"] and abs(made["audio_seconds"] - FRAMES / FPS) < 0.1
    decoded = list(video_io.read_frames(video_io.open_clip(out), WIDTH, HEIGHT))
    segmented, independent = mean_warping_error(decoded), mean_warping_error(one_process_frames)
    # Measured on these frames: 0.0554 independent (PNG); segmented 0.0168 (PNG), 0.0163 after H.264;
    # one process without segments 0.0145 (PNG).  Seams every 4 frames must not undo the gain.
    assert segmented < 0.5 * independent, (segmented, independent)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_optimised_method_runs_in_segments(clip, tmp_path, capsys):
    out = tmp_path / "optimised"
    _run([clip, STYLE, "-o", out, "--method", "optimised", "--size", 64, "--max-frames", 9, "--iterations", 2,
          "--workers", 1, "--segment-frames", 8, "-q"], capsys)
    assert len(_frames(out)) == 9 and _frames(out)[0].shape == (48, 64, 3)
    independent = tmp_path / "independent"  # consistency 0: a frame per item, no guide
    _run([clip, STYLE, "-o", independent, "--method", "optimised", "--size", 64, "--max-frames", 2,
          "--iterations", 2, "--consistency", 0, "--workers", 1, "-q"], capsys)
    assert len(_frames(independent)) == 2


def test_a_failed_item_fails_the_command_and_leaves_nothing(clip, tmp_path, capsys, monkeypatch):
    real_load = VideoWork.load

    def load_failing_on_the_fourth_frame(self, threads=None):
        run, calls = real_load(self, threads), []

        def run_or_fail(frame):
            calls.append(1)
            if len(calls) in (4, 5):  # the item and its retry
                raise RuntimeError("out of luck\nsecond line")
            return run(frame)

        return run_or_fail

    monkeypatch.setattr(VideoWork, "load", load_failing_on_the_fourth_frame)
    out = tmp_path / "failed.mp4"
    err = _run([clip, STYLE, "-o", out, "--size", 64, "--consistency", 0, "--workers", 1, "-q"], capsys, expect=1)
    assert err.startswith("error: frame 4 failed") and err.count("\n") == 1 and "after 2 tries" in err, err
    assert "out of luck second line" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no output, no temporary


def test_an_item_retried_is_named_and_its_frame_kept(clip, one_process_frames, tmp_path, capsys, monkeypatch):
    real_load = VideoWork.load

    def load_failing_once(self, threads=None):
        run, calls = real_load(self, threads), []

        def run_or_fail(frame):
            calls.append(1)
            if len(calls) == 4:  # frame 4's first try; its retry succeeds
                raise RuntimeError("a passing fault")
            return run(frame)

        return run_or_fail

    monkeypatch.setattr(VideoWork, "load", load_failing_once)
    out = tmp_path / "frames"
    err = _run([clip, STYLE, "-o", out, "--size", 0, "--consistency", 0, "--workers", 1, "-q"], capsys)
    assert [line for line in err.splitlines() if line.startswith("retried")] == [
        "retried: frame 4 took 2 tries; done by local"], err
    assert "workers lost" not in err  # no worker died: the item failed by itself
    pooled = _frames(out)
    assert len(pooled) == FRAMES
    np.testing.assert_array_equal(pooled[3], one_process_frames[3])


def test_ctrl_c_in_the_pool_keeps_the_frames_done(clip, tmp_path, capsys, monkeypatch):
    real = pool.LocalPool.results

    def stop_after_three(self, items):
        for count, outcome in enumerate(real(self, items)):
            if count == 3:
                raise KeyboardInterrupt
            yield outcome

    monkeypatch.setattr(pool.LocalPool, "results", stop_after_three)
    out = tmp_path / "stopped.mp4"
    _run([clip, STYLE, "-o", out, "--size", 64, "--consistency", 0, "--workers", 1, "-q"], capsys, expect=130)
    made = video_io.describe(out)
    assert made["frames"] == 3 and made["has_audio"] and abs(made["audio_seconds"] - 3 / FPS) < 0.1


def test_pool_flags_refused_in_one_line(clip, tmp_path, capsys):
    out = tmp_path / "a.mp4"
    cases = {"needs --ray": ["--workers", "2"], "--threads applies": ["--threads", "1"],
             "--segment-frames applies": ["--segment-frames", "10"], "--ray only": ["--cpus-per-worker", "1"],
             "at least 8": ["--workers", "1", "--segment-frames", "7"]}
    for expected, flags in cases.items():
        err = _run([clip, STYLE, "-o", out, *flags], capsys, expect=2)
        assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert not out.exists()


def test_default_path_starts_no_pool_and_imports_no_ray(clip, tmp_path):
    code = ("import sys; from nst.parallel import pool; from nst.commands import video as video_cli; "
            "pool.open_pool = lambda *a, **k: sys.exit('the default path opened a pool'); "
            f"status = video_cli.main([{str(clip)!r}, {str(STYLE)!r}, '-o', {str(tmp_path / 'one.gif')!r}, "
            "'--size', '32', '--max-frames', '1', '-q']); "
            "print(status, 'ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.split()[-2:] == ["0", "False"], done.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.host
def test_ctrl_c_at_the_terminal_with_ray_keeps_a_playable_video(long_clip, tmp_path):
    """SIGINT to the whole process group (the command, Ray's processes, its workers), as a terminal sends it."""
    import signal

    pytest.importorskip("ray")
    out = tmp_path / "stopped.mp4"
    process = subprocess.Popen([sys.executable, "-m", "nst", "video", str(long_clip), str(STYLE), "-o", str(out),
                                "--size", "0", "--consistency", "0", "--ray", "--workers", "2"],
                               stderr=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # see test_video
    try:
        seen = signal_after_frames(process, 3, lambda: os.killpg(process.pid, signal.SIGINT))
        _, rest = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, run_story(seen, rest)
    made = video_io.describe(out)
    assert 3 <= made["frames"] < LONG_FRAMES and made["has_audio"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_ray_workers_stylise_the_clip_like_one_process(local_ray, clip, one_process_frames, tmp_path, capsys):
    out = tmp_path / "ray_frames"
    _run([clip, STYLE, "-o", out, "--size", 0, "--consistency", 0, "--ray", "--workers", 2, "-q"], capsys)
    pooled = _frames(out)
    assert len(pooled) == FRAMES
    # Each Ray worker runs TensorFlow on 1 thread, this process on every core: with Eigen's kernels the
    # last bits differ, so a pixel may round to the next grey level (measured: 1 with oneDNN off, 0 on).
    worst = max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(pooled, one_process_frames))
    with capsys.disabled():  # a measured figure, shown with pytest -s
        print(f"\nlargest difference from the one-process frames: {worst} grey levels")
    assert worst <= 1, worst
    segmented = tmp_path / "ray_segments.mp4"
    _run([clip, STYLE, "-o", segmented, "--size", 0, "--ray", "--workers", 2, "--segment-frames", 8, "-q"], capsys)
    made = video_io.describe(segmented)
    assert made["frames"] == FRAMES and made["fps"] == FPS and made["has_audio"]


def _networks_built(frames, workers, cpu_flags, monkeypatch) -> list:
    """The ``compiled`` flag of each network a video of ``frames`` frames over ``workers`` builds."""
    from argparse import Namespace

    from nst.fast import network as fastnet

    monkeypatch.setenv("NST_CPU_FLAGS", cpu_flags)  # what --precision auto reads
    built = []
    original = fastnet.Network.__init__

    def spy(self, *args, **kwargs):
        built.append(args[-1] if args else kwargs["compiled"])
        original(self, *args, **kwargs)

    monkeypatch.setattr(fastnet.Network, "__init__", spy)
    args = Namespace(method="fast", consistency=0.0, flow="fast", style_blend_weights=None, preserve_colors=False,
                     alpha=None, iterations=None, workers=workers)
    work = video_cli._video_work(args, (64, 48), [images.read_rgb(STYLE)], frames)
    work.stylist()
    assert built
    return built


@pytest.mark.host
@pytest.mark.parametrize("frames, workers, builds_xla", [(12, None, False), (40, None, True), (40, 2, False),
                                                         (None, None, True)])
def test_a_short_clip_never_builds_the_xla_graph(frames, workers, builds_xla, monkeypatch):
    # XLA's compile (~20 CPU s per frame size) pays back only over nst.fast.network.COMPILE_PAYS_FROM frames per
    # process; a shorter share (or an unknown length: many) decides whether the compiled network is built.
    # On a CPU without bf16 units, so that auto means fp32: this test is about the frame count.
    built = _networks_built(frames, workers, EPYC_ZEN3, monkeypatch)
    assert (True in built) == builds_xla, built


@pytest.mark.host
def test_bf16_never_builds_the_xla_graph(monkeypatch):
    # Where auto means bf16 the fast mode keeps oneDNN's direct convolutions, the reason to ask for bf16
    # (nst.fast.network.conv_algorithms), even for a clip long enough to pay for XLA in fp32.
    assert True not in _networks_built(None, None, EPYC_ZEN4, monkeypatch)
