"""``nst CONTENT STYLE [STYLE ...] -o OUT --method fast``: the feed-forward (AdaIN) mode of the CLI.

:mod:`nst.commands.image` parses the arguments and hands them here.  As with the
optimisation method, everything is checked before the networks are loaded
(images, sizes against free memory, output paths), a user mistake prints one
``error: ...`` line and exits with status 2, and every file is written
atomically: the image, ``OUT_compare.png`` (content | style(s) | result) and
``OUT.json`` (the settings, the time taken, the versions).

CONTENT may be a folder: every image in it is stylised with the networks and
the style statistics loaded once, and OUT must then be a folder too.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nst.host import quiet
from nst.commands.common import (EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ArgumentError, Signals,
                                 chosen_precision, ignore_late_signals, tune_malloc)
from nst.commands.options import OPTIMISE_ONLY, build_parser
from nst.io.files import package_versions
from nst.io.images import OUTPUT_EXTENSIONS, ImageError

FAST_ONLY_FLAGS = "--alpha, --mask and --style-size"
# Flags that steer the optimisation only; given with --method fast they are refused, not ignored.
@dataclass
class Job:
    """One content image and the files its result goes to."""

    content_path: Path
    content: object  # uint8 [h, w, 3], resized
    paths: dict  # "image", "json", optionally "compare"


def _read_sized(path, long_side: int, what: str):
    """Read an image and resize it to ``long_side`` (0: as it is), refusing first a size memory cannot hold."""
    from nst.io import images
    from nst.fast.stylizer import check_fits

    image = images.read_rgb(path)
    height, width = image.shape[:2]
    if long_side:
        height, width = images.size_for_long_side(height, width, long_side)
    check_fits(height, width, what=f"{what} {Path(path).name}")
    return images.resize(image, width, height)


def _is_folder(path: Path, what: str) -> bool:
    """Like ``Path.is_dir``, but a path that cannot be looked at raises a one-line FileProblem."""
    import stat

    from nst.io.files import stat_path

    info = stat_path(path, what)
    return info is not None and stat.S_ISDIR(info.st_mode)


def _content_files(content: Path) -> list:
    from nst.io.files import shown

    if not _is_folder(content, "content image"):
        return [content]
    try:
        files = sorted(p for p in content.iterdir() if p.is_file() and p.suffix.lower() in OUTPUT_EXTENSIONS)
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise ArgumentError(f"cannot list folder {shown(content)} ({reason}); check its permissions") from None
    if not files:
        raise ArgumentError(f"folder {content} holds no images ({', '.join(OUTPUT_EXTENSIONS)})")
    return files


def _output_paths(output: Path, no_pictures: bool) -> dict:
    stem = output.with_suffix("")
    paths = {"image": output, "json": Path(f"{stem}.json")}
    if not no_pictures:
        paths["compare"] = Path(f"{stem}_compare.png")
    return paths


def _plan(args):
    """Check everything; return (jobs, styles, mask, style sizes) or raise ArgumentError / ImageError / FastError."""
    from nst.io import images


    defaults = build_parser()
    changed = [name for name in OPTIMISE_ONLY if getattr(args, name) != defaults.get_default(name)]
    if changed:
        flag = "--" + changed[0].replace("_", "-")
        raise ArgumentError(f"{flag} applies to --method optimise only; drop it or leave out --method fast")
    content_arg, output_arg = Path(args.content), Path(args.output)
    files = _content_files(content_arg)
    from_folder = _is_folder(content_arg, "content folder")
    if from_folder and not _is_folder(output_arg, "output folder"):
        raise ArgumentError(f"CONTENT is a folder, so OUT must be an existing folder; {output_arg} is not")
    if args.mask and len(args.styles) != 2:
        raise ArgumentError(f"--mask needs exactly two style images (white area, black area), not {len(args.styles)}")
    if args.mask and args.style_blend_weights:
        raise ArgumentError("--mask and --style-blend-weights cannot be combined; the mask chooses the style")
    if args.style_blend_weights and len(args.style_blend_weights) != len(args.styles):
        raise ArgumentError(f"--style-blend-weights needs one weight per style image ({len(args.styles)}), "
                            f"not {len(args.style_blend_weights)}")
    if args.style_blend_weights and sum(args.style_blend_weights) <= 0:
        raise ArgumentError("--style-blend-weights must not all be zero")
    inputs = {p.resolve() for p in [*files, *map(Path, args.styles)] + ([Path(args.mask)] if args.mask else [])}
    jobs = []
    for file in files:
        content = _read_sized(file, args.size, "content")
        output = output_arg / f"{file.stem}.png" if from_folder else output_arg
        images.check_output_path(output, args.overwrite)
        paths = _output_paths(output, args.no_pictures)
        for path in paths.values():
            images.check_output_path(path, args.overwrite, extensions=None)
            if path.resolve() in inputs:
                raise ArgumentError(f"output {path} is one of the input images; choose another name")
        jobs.append(Job(file, content, paths))
    long_side = max(jobs[0].content.shape[:2])
    style_side = args.style_size if args.style_size is not None else max(16, round(long_side * args.style_scale))
    styles = [_read_sized(path, style_side, "style") for path in args.styles]
    mask = images.read_rgb(args.mask) if args.mask else None
    return jobs, styles, mask


def _record(args, argv, job, weights_path, decoder_path, seconds, style_shapes):
    h, w = job.content.shape[:2]
    return {
        "command": ["nst", *argv],
        "method": "fast",
        "content": str(job.content_path.resolve()),
        "styles": [str(Path(p).resolve()) for p in args.styles],
        "mask": str(Path(args.mask).resolve()) if args.mask else None,
        "output": str(job.paths["image"].resolve()),
        "weights": str(Path(weights_path).resolve()),
        "decoder": str(Path(decoder_path).resolve()),
        "settings": {"alpha": args.alpha, "style_blend_weights": args.style_blend_weights,
                     "preserve_colors": args.preserve_colors, "precision": args.precision,
                     "runtime": args.runtime, "size": [w, h], "tile": getattr(args, "tile", 0),
                     "style_sizes": [[s[1], s[0]] for s in style_shapes]},
        "status": "done",
        "elapsed_s": round(seconds, 3),
        "files": {key: str(path) for key, path in job.paths.items()},
        "versions": package_versions(),
    }


def _write(args, argv, job, result, styles, weights_path, decoder_path, seconds):
    """The image, its side-by-side and its JSON record, published together or not at all."""
    from nst.io import images
    from nst.optimise import pictures
    from nst.io.files import Staging

    record = _record(args, argv, job, weights_path, decoder_path, seconds, [s.shape for s in styles])
    with Staging() as staging:
        staging.stage(job.paths["image"], lambda name: images.save_rgb(name, result))
        if "compare" in job.paths:
            staging.stage(job.paths["compare"], lambda name: pictures.save_side_by_side(
                name, job.content, styles, result))
        staging.stage(job.paths["json"], lambda name: Path(name).write_text(json.dumps(record, indent=1) + "\n"))
        staging.publish()


def run(args, argv, console: bool = False) -> int:
    """Run ``--method fast`` with parsed ``args``; returns the exit status.

    As the optimisation does, it claims every output name for the length of the run
    (a second run on the same names is refused) and lets Ctrl-C or SIGTERM end it
    between images, never inside a write.
    """
    from nst.fast.stylizer import DEFAULT_ALPHA, FastError, choose_runtime
    from nst.io.files import FileProblem, OutputClaim

    if args.method != "fast":
        print(f"error: {FAST_ONLY_FLAGS} apply to --method fast only", file=sys.stderr)
        return EXIT_BAD_INPUT
    args.alpha = DEFAULT_ALPHA if args.alpha is None else args.alpha
    claims = []
    try:
        jobs, styles, mask = _plan(args)
        # A few images: ONNX Runtime or OpenVINO, which start seconds sooner than TensorFlow.
        args.runtime = choose_runtime(len(jobs), args.precision)
        networks = _read_networks(args)
        for job in jobs:
            claims.append(OutputClaim(job.paths["image"]).acquire())
    except (ArgumentError, ImageError, FastError, FileProblem) as error:
        for claim in claims:
            claim.release()
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT

    signals = Signals()
    signals.install()
    try:
        return _stylize_all(args, argv, jobs, styles, mask, signals, networks)
    finally:
        for claim in claims:
            claim.release()
        if console:
            ignore_late_signals()
        else:
            signals.restore()


def _read_networks(args) -> tuple:
    """(encoder, decoder) weights, read from their files before TensorFlow starts.

    Reading them is NumPy and SciPy only: a missing or damaged file (NaN weights with a
    matching .sha256, say) is refused here in one line, like any other input, and not
    after TensorFlow's start-up lines.  On ONNX Runtime, which prints no such lines, the
    paths go to the stylizer: it reads the files only if no model was built from them before.
    """
    from nst.weights.fetch import fast_weights_for_use
    from nst.weights.load import load_decoder, load_vgg19

    encoder, decoder = fast_weights_for_use(args.weights)  # the default files are fetched on first use
    if args.runtime != "tensorflow":
        return encoder, decoder
    decoder = load_decoder(decoder)  # the smaller file first: a refusal costs less
    return load_vgg19(encoder), decoder


def _stylize_one(stylizer, job, styles, mask, args, signals):
    """One job's picture.  A Ctrl-C raises KeyboardInterrupt wherever it lands; inside TensorFlow's own
    tracing it can come out as another error ("Concurrent access?" from its stack bookkeeping), which a
    signal already noted makes an interruption, not a crash."""
    try:
        return stylizer.stylize(job.content, styles, alpha=args.alpha, style_weights=args.style_blend_weights,
                                mask=mask, preserve_colors=args.preserve_colors)
    except Exception:
        if signals.stopping:
            raise KeyboardInterrupt from None
        raise


def _stylize_all(args, argv, jobs, styles, mask, signals, networks) -> int:
    """Load the networks once, then stylise and publish each job in turn."""
    from nst.fast.stylizer import FastError
    from nst.weights.load import WeightsError

    weights_path, decoder_path = (getattr(network, "path", network) for network in networks)
    quiet.lower_log_level()
    tune_malloc()
    done = []
    try:
        from nst.fast.network import compiled_for
        from nst.fast.style_store import STYLE_STORE_FOLDER
        from nst.fast.stylizer import FastStylizer
        from nst.weights.load import WEIGHTS_DIR

        args.precision = "fp32" if args.runtime == "onnx" else chosen_precision(args.precision)
        # A few images: XLA's compile (nst.fast.network) would cost more than it saves.  A painting used
        # again in a later command is not encoded again (nst.fast.style_store).
        stylizer = FastStylizer(*networks, precision=args.precision, compiled=compiled_for(len(jobs)),
                                runtime=args.runtime, style_store=WEIGHTS_DIR / STYLE_STORE_FOLDER)
        args.precision = stylizer.precision  # the record says what ran
        for job in jobs:
            started = time.perf_counter()
            result = _stylize_one(stylizer, job, styles, mask, args, signals)
            seconds = time.perf_counter() - started
            args.tile = stylizer.last_tile  # 0: the picture ran whole (nst.fast.tiles)
            signals.saving = True  # a signal now waits for this image's files to be published
            _write(args, argv, job, result, styles, weights_path, decoder_path, seconds)
            signals.saving = False
            done.append(job)
            if not args.quiet:
                h, w = result.shape[:2]
                print(f"{w}x{h} in {seconds:.2f} s: wrote {', '.join(map(str, job.paths.values()))}", file=sys.stderr)
            print(job.paths["image"])
            if signals.stopping:  # a signal arrived during the write
                raise KeyboardInterrupt
    except (WeightsError, FastError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # a full disk or a vanished folder: what was published stays, nothing partial
        print(f"error: could not write {job.paths['image']} ({error.strerror or error}); "
              f"{len(done)} of {len(jobs)} images written", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"\ninterrupted: {len(done)} of {len(jobs)} images written", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK
