"""``nst video IN STYLE [STYLE ...] -o OUT``: stylise a clip, keeping its frame rate and sound.

Everything is checked before the network is loaded (the input is probed, the
styles read, the output folder tried, the size checked against free memory);
a user mistake prints one ``error: ...`` line and exits with status 2,
writing nothing.  The output is written under a hidden temporary name and
renamed into place at the end; Ctrl-C (or SIGTERM) stops after the current
frame and still publishes a playable video of the frames done so far
(status 130).

By default one process runs the frame loop of :mod:`nst.video.temporal`.  With
``--workers N`` / ``--ray`` the work goes through :mod:`nst.parallel.pool` (the batch's
flags): a frame per item for independent frames (consistency 0), else
segments of frames with :data:`nst.video.segments.OVERLAP` frames shared and
cross-faded.  The driver decodes one item at a time as a worker frees up,
puts the results back in clip order and encodes them; an item that fails after
the pool's retry ends the run with status 1 and leaves no output.
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Optional

from nst.host import quiet
from nst.commands.common import (EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ArgumentError, Parser,
                                 add_pool_options, check_pool_options, in_destructor, number, parse_or_status)
from nst.optimise.settings import Number

UNIT = number(Number(float, minimum=0, maximum=1))
COUNT = number(Number(int, minimum=0))

DEFAULT_VIDEO_SIZE = 640  # long side of the output frames: 640x360 for a 16:9 clip
METHODS = ("fast", "optimised")

EXAMPLES = """\
examples:
  nst video clip.mp4 images/starry_night.jpg -o starry.mp4
  nst video clip.mp4 art.jpg -o try.mp4 --start 12 --duration 3 --size 480   # a piece, to choose settings
  nst video clip.mov art.jpg -o out.webm --consistency 0       # independent frames (flickers)
  nst video frames/ art.jpg -o out_frames --fps 24             # a folder of numbered frames in and out
  nst video clip.mp4 art.jpg -o out.mp4 --ray auto --workers 8  # on the Ray cluster of `ray start`

OUT's suffix picks the container (.mp4, .mov, .mkv, .webm, .gif); no suffix
writes a new folder of PNG frames.  The input's audio track is kept (not in a
GIF or a folder).
"""


def build_parser() -> argparse.ArgumentParser:
    from nst.video import temporal as video
    from nst.fast.stylizer import DEFAULT_ALPHA
    from nst.video.flow import FlowEstimator
    from nst.video.temporal import DEFAULT_CONSISTENCY, DEFAULT_FLOW_PRESET

    p = Parser(prog="nst video", description="Stylise a video clip without flicker, keeping its audio.",
                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="video file (mp4, mov, webm, mkv, GIF, ...) or folder of frames")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="one or more style images")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output video, GIF or new frames folder")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (never the input)")
    p.add_argument("--method", choices=METHODS, default="fast",
                   help="fast: the feed-forward (AdaIN) network per frame (default); optimised: L-BFGS per frame "
                        "from the previous result warped, with a temporal cost (Ruder et al.; minutes per frame)")
    p.add_argument("--iterations", type=number(Number(int, minimum=1)), default=None,
                   help=f"--method optimised: L-BFGS iterations per frame (default {video.DEFAULT_ITERATIONS})")
    p.add_argument("--consistency", type=UNIT, default=DEFAULT_CONSISTENCY,
                   help=f"0..1: how much of the previous output, warped along the optical flow, is kept where the "
                        f"flow is reliable; 0 = independent frames (default {DEFAULT_CONSISTENCY})")
    p.add_argument("--flow", choices=FlowEstimator.PRESETS, default=DEFAULT_FLOW_PRESET,
                   help=f"speed/quality of the optical flow (default {DEFAULT_FLOW_PRESET})")
    p.add_argument("--size", type=COUNT, default=DEFAULT_VIDEO_SIZE,
                   help=f"long side of the output frames, 0 for the input's (default {DEFAULT_VIDEO_SIZE})")
    p.add_argument("--style-size", type=COUNT, default=None,
                   help="long side of the style images, 0 for their own (default: the frames' long side)")
    p.add_argument("--alpha", type=UNIT, default=None,
                   help=f"content-style trade-off, 0 (the input) to 1 (full style; default {DEFAULT_ALPHA:g})")
    p.add_argument("--style-blend-weights", type=number(Number(float, minimum=0)), nargs="+", metavar="W",
                   help="one weight per style image")
    p.add_argument("--preserve-colors", action="store_true", help="keep the input's colours")
    g = p.add_argument_group("which frames")
    g.add_argument("--start", type=number(Number(float, minimum=0)), default=0.0, help="first second to stylise")
    g.add_argument("--duration", type=number(Number(float, positive=True)), default=None, help="seconds to stylise")
    g.add_argument("--max-frames", type=number(Number(int, minimum=1)), default=None, help="stylise at most N frames")
    g.add_argument("--fps", type=number(Number(float, positive=True)), default=None,
                   help="frame rate of a folder of frames (default 25), or to override a file's")
    _add_pool_group(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _add_pool_group(parser) -> None:
    """The batch's pool flags, plus the segment length (see nst.video.segments)."""
    from nst.video.segments import DEFAULT_SEGMENT_FRAMES, MIN_SEGMENT_FRAMES, OVERLAP

    group = parser.add_argument_group(
        "workers", "frames (--consistency 0) or overlapping segments of frames (otherwise) shared out\n"
                   "to a pool; --workers 1 alone runs that pool in this process")
    add_pool_options(group, workers_default=None)
    group.add_argument("--segment-frames", type=number(Number(int, minimum=MIN_SEGMENT_FRAMES)), default=None,
                       metavar="F", help=f"frames per segment given to one worker, {OVERLAP} of them cross-faded "
                                         f"with each neighbour (default {DEFAULT_SEGMENT_FRAMES})")


def _styles(args, frame_long_side: int) -> list:
    from nst.io import images
    from nst.fast.stylizer import check_fits

    side = frame_long_side if args.style_size is None else args.style_size
    styles = []
    for path in args.styles:
        style = images.read_rgb(path)
        height, width = style.shape[:2]
        if side:
            height, width = images.size_for_long_side(height, width, side)
        check_fits(height, width, what=f"style image {Path(path).name}")
        styles.append(images.resize(style, width, height))
    return styles


def _check_whole_frame_fits(height: int, width: int) -> None:
    """The optimised frames' temporal term has no tiled path (nst.optimise.tiled): a frame must fit whole."""
    from nst.host import budget

    needed, available = budget.estimate_peak_bytes(height, width), budget.available_bytes()
    if needed > available:
        side = max(height, width) * (max(0, available - budget.BASE_BYTES) / (needed - budget.BASE_BYTES)) ** 0.5
        raise ArgumentError(f"--method optimised needs about {needed / 2 ** 30:.1f} GiB for a {width}x{height} "
                            f"frame and {available / 2 ** 30:.1f} GiB is free; lower --size to about {int(side)} "
                            "or use --method fast")


def _plan(args):
    """Check everything the run needs; return (clip, (width, height), styles, target) or raise."""
    from nst.video import io as video_io
    from nst.fast.stylizer import check_fits
    from nst.parallel.pool import LOCAL_RAY

    if args.style_blend_weights and len(args.style_blend_weights) != len(args.styles):
        raise ArgumentError(f"--style-blend-weights needs one weight per style image ({len(args.styles)}), "
                            f"not {len(args.style_blend_weights)}")
    if args.style_blend_weights and sum(args.style_blend_weights) <= 0:
        raise ArgumentError("--style-blend-weights must not all be zero")
    if args.method == "optimised" and args.alpha is not None:
        raise ArgumentError("--alpha applies to --method fast only; drop it")
    if args.method == "fast" and args.iterations is not None:
        raise ArgumentError("--iterations applies to --method optimised only; drop it or add --method optimised")
    _check_pool_flags(args)
    fps = Fraction(args.fps).limit_denominator(1001) if args.fps else None
    clip = video_io.open_clip(args.input, fps=fps)
    clip = video_io.trim(clip, args.start, args.duration, args.max_frames)
    width, height = video_io.even_size(clip.width, clip.height, args.size)
    check_fits(height, width, what="frame")
    if args.method == "optimised":
        _check_whole_frame_fits(height, width)
    video_io.check_decodable(clip, width, height)
    if args.method == "fast" and args.ray in (None, LOCAL_RAY):  # the workers read this machine's file
        _check_decoder()
    target = video_io.check_output(args.output, [args.input, *args.styles], args.overwrite)
    return clip, (width, height), _styles(args, max(width, height)), target


def _check_decoder() -> None:
    """Read the fast method's decoder once here (NumPy only), so that a missing or damaged file is
    refused with the other inputs, not after TensorFlow's start-up lines.  The workers read it again
    as they load; those of a Ray cluster read their own node's copy, so it is not checked here then."""
    from nst.weights.fetch import fast_weights_for_use
    from nst.weights.load import load_decoder

    load_decoder(fast_weights_for_use()[1])  # the default files are fetched on first use


def _pooled(args) -> bool:
    """Run through nst.parallel.pool (--workers or --ray given), or the one-process frame loop (the default)."""
    return args.workers is not None or args.ray is not None


def _check_pool_flags(args) -> None:

    check_pool_options(args)
    if not _pooled(args):
        given = [flag for flag, value in (("--threads", args.threads), ("--segment-frames", args.segment_frames))
                 if value is not None]
        if given:
            raise ArgumentError(f"{given[0]} applies with --workers or --ray only; add one or drop it")


def _progress_bar(total, quiet):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", disable=quiet, dynamic_ncols=True, file=sys.stderr,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]{postfix}")


class _Stops:
    """Ctrl-C and SIGTERM while the process is the command: stop the run, keeping the frames done.

    A signal that arrives while a frame is being handed to the encoder waits until it is
    written (an encoder killed mid-frame would leave a file without its index); anywhere
    else it stops at once.  Called from Python (not the command), signals are left alone.
    """

    def __init__(self, console: bool):
        self.console, self.writing, self.pending, self.previous = console, False, False, {}
        self.received = False  # a signal arrived (its KeyboardInterrupt may surface as another error)

    def __enter__(self):
        import signal

        if self.console:
            for signum in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(signum) is not signal.SIG_IGN:  # a job started with & keeps ignoring it
                    self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        import signal

        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False

    def _handle(self, signum, frame):
        self.received = True
        if self.writing or in_destructor(frame):  # a KeyboardInterrupt raised in a __del__ would be lost
            self.pending = True  # raised after the next frame is written
            return
        raise KeyboardInterrupt

    def write(self, writer, frame) -> None:
        self.writing = True
        try:
            writer.write(frame)
        finally:
            self.writing = False
        if self.pending:
            raise KeyboardInterrupt


def _ignore_signals_while(console: bool, action):
    """Run ``action`` (publishing the output) without letting a second Ctrl-C cut it short."""
    import signal

    if not console:
        return action()
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return action()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _video_work(args, size, styles, frames: Optional[int] = None):
    """The recipe for every frame.  ``frames``: the clip's frame count, if known (shared out over the workers)."""
    from nst.video.work import VideoWork

    frames_each = None if frames is None else -(-frames // max(1, args.workers or 1))
    return VideoWork(args.method, styles, args.consistency, args.flow, max(size), args.style_blend_weights,
                     args.preserve_colors, args.alpha, args.iterations, frames_each)


def _stylise_all(work, clip, size, writer, bar, stops) -> int:
    """The one-process frame loop: decode, stylise, blend, encode.  Returns the frames written."""
    from nst.video import io as video_io

    for done in work.events(video_io.read_frames(clip, *size)):
        stops.write(writer, done.output)
        bar.update(1)
        bar.set_postfix_str(f"{1 / max(sum(done.seconds.values()), 1e-9):.2f} frame/s stylise+flow, "
                            f"{done.reliable_share:.0%} blended", refresh=False)
    return writer.frames


class _Failed(Exception):
    """The run cannot go on: one line for stderr and the exit status; the partial output is discarded."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _open_pool(args, work):
    """A context manager giving the pool (None on the default one-process path); raises _Failed."""
    from contextlib import nullcontext

    if not _pooled(args):
        return nullcontext()
    from nst.io.files import one_line
    from nst.parallel.pool import PoolError, open_pool

    try:
        return open_pool(work, args.workers or 1, args.ray, args.cpus_per_worker, args.threads, args.ray_timeout)
    except (PoolError, RuntimeError) as error:
        raise _Failed(str(error), EXIT_BAD_INPUT) from None
    except Exception as error:  # the network would not load (WeightsError and the like): one line
        raise _Failed(one_line(error), EXIT_BAD_INPUT) from None


def _pool_items(args, work, frames, labels: dict, shared: dict):
    """(key, make_payload) per frame or per segment, decoding only as the pool asks for the next item."""
    from nst.video.segments import DEFAULT_SEGMENT_FRAMES, segments_of

    if work.per_frame:
        for index, frame in enumerate(frames):
            labels[index] = f"frame {index + 1}"
            yield str(index), (lambda frame=frame: frame)
        return
    for index, piece in enumerate(segments_of(frames, args.segment_frames or DEFAULT_SEGMENT_FRAMES)):
        labels[index] = f"segment {index + 1} (frames {piece.start + 1}-{piece.start + len(piece.frames)})"
        shared[index] = piece.shared
        yield str(index), (lambda stack=piece.frames: stack)


def _stylise_pooled(args, work, pool, clip, size, writer, bar, stops) -> int:
    """Frames or segments out to the pool, results back in clip order, segments stitched, frames encoded."""
    from nst.video import io as video_io
    from nst.video.segments import Stitcher, in_order

    labels, shared, stitcher = {}, {}, Stitcher()
    items = _pool_items(args, work, video_io.read_frames(clip, *size), labels, shared)
    say = (lambda line: bar.write(line, file=sys.stderr))  # above the bar, not through it
    for index, outcome in in_order(_checked(pool.results(items), labels, say)):
        labels.pop(index)
        outputs = outcome.result[None] if work.per_frame else stitcher.add(outcome.result, shared.pop(index))
        for frame in outputs:
            stops.write(writer, frame)
            bar.update(1)
    for frame in stitcher.finish():
        stops.write(writer, frame)
        bar.update(1)
    _say_workers_lost(pool.workers(), say)
    return writer.frames


def _checked(outcomes, labels: dict, say):
    """(index, outcome) for each item done; the first item that failed (after the pool's retry) ends the run.

    An item that needed more than one try is named through ``say`` as it comes back (it is stylised
    again from its input, so the output is the same, but a user should know a worker or node was lost)."""
    for outcome in outcomes:
        label = labels.get(int(outcome.key), outcome.key)
        if not outcome.ok:
            raise _Failed(f"{label} failed on worker {outcome.worker} after {outcome.attempts} tries: "
                          f"{outcome.error}; nothing was written", EXIT_FAILED)
        if outcome.attempts > 1:
            lost = f", {outcome.losses} of them ended by its worker's loss" if outcome.losses else ""
            say(f"retried: {label} took {outcome.attempts} tries{lost}; done by {outcome.worker}")
        yield int(outcome.key), outcome


def _say_workers_lost(workers: list, say) -> None:
    """One line naming the workers that died during the run (a process killed, a node lost), if any."""
    notes = []
    for worker in workers:
        restarts = worker["restarts"]
        restarted = f"restarted {restarts} time{'s' * (restarts != 1)}, " if restarts else ""
        if worker["lost"] or restarts:
            notes.append(f"{worker['name']} ({restarted}{'gone' if worker['lost'] else 'back'} at the end)")
    if notes:
        say(f"workers lost during the run: {', '.join(notes)}")


def _run(args, clip, size, styles, target, console):
    """Stylise and encode: (writer, status), the writer None if stopped before it started.  Raises _Failed."""
    from nst.video import io as video_io
    from nst.fast.stylizer import FastError
    from nst.weights.load import WeightsError

    audio = video_io.AudioSource(clip.path, clip.start) if clip.has_audio else None
    work, writer, stops = _video_work(args, size, styles, clip.frames), None, _Stops(console)
    try:
        with stops, _open_pool(args, work) as pool:
            writer = video_io.VideoWriter(target, *size, clip.fps, audio)
            with _progress_bar(clip.frames, args.quiet) as bar:
                if pool is None:
                    _stylise_all(work, clip, size, writer, bar, stops)
                else:
                    _stylise_pooled(args, work, pool, clip, size, writer, bar, stops)
        return writer, EXIT_OK
    except KeyboardInterrupt:
        return writer, EXIT_INTERRUPTED
    except _Failed:
        _discard(writer)
        raise
    except (WeightsError, FastError, video_io.VideoError) as error:
        _discard(writer)
        raise _Failed(str(error), EXIT_BAD_INPUT) from None
    except OSError as error:  # a full disk, a vanished folder, a failed encoder: nothing partial is left
        _discard(writer)
        raise _Failed(_not_written(target, error), EXIT_FAILED) from None
    except Exception:  # a Ctrl-C inside TensorFlow's tracing can surface as another error (nst.commands.fast)
        if stops.received:
            return writer, EXIT_INTERRUPTED
        raise


def _not_written(target, error: OSError) -> str:
    """The error line of an output that could not be written (its temporary files are gone by then)."""
    from nst.io.files import is_out_of_space

    advice = "free some space and run again" if is_out_of_space(error) else "check the output folder and run again"
    return f"could not write {target} ({error.strerror or error}); nothing was written; {advice}"


def _discard(writer) -> None:
    if writer is not None:
        writer.discard()


def main(argv=None, console: bool = False) -> int:
    from nst.fast.stylizer import FastError
    from nst.io.files import FileProblem
    from nst.io.images import ImageError

    args, status = parse_or_status(build_parser(), argv)
    if args is None:
        return status
    try:
        clip, size, styles, target = _plan(args)
    except (ArgumentError, ImageError, FastError, FileProblem) as error:  # VideoError, WeightsError among them
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    quiet.lower_log_level()
    started = time.perf_counter()
    try:
        writer, status = _run(args, clip, size, styles, target, console)
    except _Failed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return failure.status
    return _publish(writer, target, clip, status, started, args.quiet, console)


def _publish(writer, target, clip, status, started, quiet, console) -> int:
    if writer is None:  # interrupted while the encoder was starting
        print("\ninterrupted before the first frame: nothing written", file=sys.stderr)
        return status
    try:
        published = _ignore_signals_while(console, writer.finish)
    except OSError as error:
        writer.discard()
        print(f"error: {_not_written(target, error)}", file=sys.stderr)
        return EXIT_FAILED
    if published is None:
        if status == EXIT_INTERRUPTED:
            print("\ninterrupted before the first frame: nothing written", file=sys.stderr)
            return status
        print(f"error: {clip.path} has no frames in the part asked for; check --start/--duration "
              f"or give another video", file=sys.stderr)
        return EXIT_BAD_INPUT
    seconds = time.perf_counter() - started
    if status == EXIT_INTERRUPTED:
        print(f"\ninterrupted: wrote {published} with the {writer.frames} frames done", file=sys.stderr)
    elif not quiet:
        print(f"{writer.frames} frames at {float(clip.fps):.3g} fps in {seconds:.1f} s "
              f"({writer.frames / seconds:.2f} frames/s): wrote {published}", file=sys.stderr)
    print(published)
    return status
