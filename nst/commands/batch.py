"""``nst batch INPUTS... STYLE -o OUT_DIR``: many images in one style, on one machine or a Ray cluster.

INPUTS are image files, folders (their images, not recursively) or glob patterns;
the last positional argument is the style.  Every flag of the one-image command
that shapes the result works here too (``--method fast|optimise``, ``--size``,
``--alpha``, ``--style-weight``, ...), plus ``--workers N`` and ``--ray [ADDRESS|auto]``.

Each input becomes ``OUT_DIR/<its name>.png``; ``OUT_DIR/nst-batch.json`` (the
manifest, :mod:`nst.parallel.manifest`) records what is done, so a rerun skips it.  All
checks happen before any network is loaded: a user mistake prints one
``error: ...`` line and exits with status 2.  Items run on :mod:`nst.parallel.pool`; an
item that fails twice is reported and the rest goes on.  At the end a JSON summary
(per-worker figures included) goes to stdout and to ``OUT_DIR/nst-batch-summary.json``;
the exit status is 1 if any item failed.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nst.host import quiet
from nst.commands.common import (EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ArgumentError,
                                 add_pool_options, check_memory, check_pool_options, parse_or_status,
                                 settings_from)
from nst.commands.options import OPTIMISE_ONLY, build_parser
from nst.optimise import stylize as engine
from nst.io.images import OUTPUT_EXTENSIONS, ImageError

OUTPUT_SUFFIX = ".png"  # lossless, so a rerun or another worker gives the same bytes
SUMMARY_NAME = "nst-batch-summary.json"
# Flags of the one-image command that have no meaning for a batch of one style.
ONE_IMAGE_ONLY = {"gif": "--gif", "save_every": "--save-every", "print_every": "--print-every", "mask": "--mask",
                  "style_blend_weights": "--style-blend-weights"}
FAST_ONLY = {"alpha": "--alpha", "style_size": "--style-size"}
USAGE = "nst batch INPUTS... STYLE -o OUT_DIR [--method {optimise,fast}] [--workers N] [--ray [ADDRESS|auto]] ..."


def build_batch_parser():
    """The one-image command's parser (every flag that shapes a result), with the batch's own flags added."""
    parser = build_parser()
    parser.prog, parser.usage = "nst batch", USAGE
    parser.description = ("Stylise many images with one style. The positional arguments are INPUTS... STYLE "
                          "(shown below as CONTENT and STYLE): files, folders or glob patterns, the last one the "
                          "style image. -o is the output folder (created if missing). A rerun skips what is done.")
    parser.epilog = None
    add_pool_options(parser.add_argument_group("batch"))
    return parser


@dataclass
class Item:
    source: Path
    output: Path
    sha256: str
    size: tuple = (0, 0)  # (width, height) from the file's header


@dataclass
class Plan:
    items: list  # every Item, done or not
    todo: list  # Items to run
    work: object  # nst.parallel.workers.FastWork or OptimiseWork
    settings: dict  # what the manifest records
    out_dir: Path
    size: int  # fast: long side of each content (0: its own); optimise: the engine's


def _has_magic(text: str) -> bool:
    return any(char in text for char in "*?[")


def _images_in(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in OUTPUT_EXTENSIONS and p.is_file())


def expand_inputs(patterns) -> list:
    """Files, folders and glob patterns -> the image files, in order, each once."""
    import glob

    from nst.io.files import check_regular_file, stat_path

    files = []
    for text in patterns:
        info = stat_path(text, "input", ArgumentError)
        if info is None and _has_magic(text):
            found = [Path(name) for name in sorted(glob.glob(text))]
            found = [p for p in found if p.suffix.lower() in OUTPUT_EXTENSIONS and p.is_file()]
            if not found:
                raise ArgumentError(f"no image file matches {text!r}; check the pattern")
            files += found
        elif info is not None and stat.S_ISDIR(info.st_mode):
            found = _images_in(Path(text))
            if not found:
                raise ArgumentError(f"folder {text} holds no images ({', '.join(OUTPUT_EXTENSIONS)})")
            files += found
        else:
            files.append(check_regular_file(text, "input", "give an image file, a folder or a pattern",
                                            ArgumentError))
    unique = {}
    for path in files:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _check_apart(patterns, out_dir: Path, sources) -> None:
    """Refuse an output folder that an input folder or pattern reads (``nst batch DIR STYLE -o DIR``).

    Each result would land beside the images it came from, with the manifest, and the next run
    (a resume included) would list the results as new inputs and stop ("output DIR/a.png is one
    of the inputs").  Refused on the first run, before anything is written or loaded, rather
    than recognising the results by the manifest on later runs: that holds only while the
    manifest is there and its settings unchanged (--overwrite starts a fresh one), and any other
    tool pointed at the folder would still mix results with originals.  Files named one by one
    are read again only as named, so their folder may take the results.
    """
    import fnmatch
    import glob

    target, names = out_dir.resolve(), [source.stem + OUTPUT_SUFFIX for source in sources]
    for text in patterns:
        if os.path.isdir(text):  # a folder: every image in it, and the results are .png images
            folders, matches = [text], bool(names)
        elif _has_magic(text) and not os.path.exists(text):
            folder, name = os.path.split(text)
            folders = glob.glob(folder) if _has_magic(folder) else [folder or "."]
            matches = any(fnmatch.fnmatch(result, name) for result in names)
        else:
            continue
        if matches and any(Path(folder).resolve() == target for folder in folders):
            raise ArgumentError(f"output folder {out_dir} is also where the inputs {text!r} are read from: the "
                                f"next run would take the results for inputs; choose another output folder")


def _check_header(path: Path) -> tuple:
    """(width, height) of an image; refuses a file PIL cannot identify (reads the header only, not the pixels)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ArgumentError(f"input {path} is not an image PIL can read ({type(error).__name__}); "
                            f"remove it from the inputs") from None


def _refuse_flags(args) -> None:
    defaults = build_parser()
    for name, flag in ONE_IMAGE_ONLY.items():
        if getattr(args, name) != defaults.get_default(name):
            raise ArgumentError(f"{flag} applies to the one-image command only; drop it for nst batch")
    from nst.optimise.settings import INITS
    if args.init not in INITS:
        raise ArgumentError("--init with an image file applies to the one-image command only; use content, "
                            "noise or style")
    if args.method == "fast":
        changed = [name for name in OPTIMISE_ONLY if getattr(args, name) != defaults.get_default(name)]
        if changed:
            raise ArgumentError(f"--{changed[0].replace('_', '-')} applies to --method optimise only; drop it "
                                f"or leave out --method fast")
    else:
        changed = [flag for name, flag in FAST_ONLY.items() if getattr(args, name) is not None]
        if changed:
            raise ArgumentError(f"{changed[0]} applies to --method fast only; add --method fast or drop it")
    check_pool_options(args)


def _method_work(args, style, style_sha):
    """(work, settings for the manifest) of the chosen method."""
    from nst.parallel.workers import FastWork, OptimiseWork

    weights = str(Path(args.weights).resolve()) if args.weights else None
    if args.method == "fast":
        from nst.io import images
        from nst.fast.stylizer import DEFAULT_ALPHA, check_fits

        alpha = DEFAULT_ALPHA if args.alpha is None else args.alpha
        side = args.style_size if args.style_size is not None else round(args.size * args.style_scale)
        if side:
            height, width = images.size_for_long_side(*style.shape[:2], side)
            check_fits(height, width, what="style image")
            style = images.resize(style, width, height)
        settings = {"method": "fast", "size": args.size, "style_shape": list(style.shape[:2]), "alpha": alpha,
                    "preserve_colors": args.preserve_colors}
        work = FastWork([style], alpha, args.preserve_colors, weights)
    else:

        engine_settings = settings_from(args)
        resolved = engine_settings.resolved(1).to_json()  # checks every value; raises ValueError
        resolved["seed"] = args.seed  # None: one drawn per item, recorded in the manifest
        settings = {"method": "optimise", **resolved}
        work = OptimiseWork([style], engine_settings, weights)
    settings.update(style_sha256=style_sha, weights=weights or "default")
    return work, settings


def _out_dir(text: str) -> Path:
    from nst.io.files import stat_path

    out_dir = Path(text)
    info = stat_path(out_dir, "output folder", ArgumentError)
    if info is None:
        parent = out_dir.parent if str(out_dir.parent) else Path(".")
        parent_info = stat_path(parent, "output folder", ArgumentError)
        if parent_info is None or not stat.S_ISDIR(parent_info.st_mode):
            raise ArgumentError(f"output folder {out_dir} cannot be created: {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise ArgumentError(f"output folder {out_dir} cannot be created in {parent} (not writable)")
    elif not stat.S_ISDIR(info.st_mode):
        raise ArgumentError(f"-o {out_dir} is a file; nst batch writes into a folder, give a folder name")
    elif not os.access(out_dir, os.W_OK):
        raise ArgumentError(f"output folder {out_dir} is not writable; choose another folder")
    return out_dir


def _items(sources, out_dir: Path, style_path: Path) -> list:
    from nst.io.files import sha256_of

    by_name, taken = {}, {style_path.resolve()} | {p.resolve() for p in sources}
    items = []
    for source in sources:
        size = _check_header(source)
        name = source.stem + OUTPUT_SUFFIX
        if name in by_name:
            raise ArgumentError(f"inputs {by_name[name]} and {source} would both write {out_dir / name}; rename one")
        by_name[name] = source
        output = out_dir / name
        if output.resolve() in taken:
            raise ArgumentError(f"output {output} is one of the inputs; choose another output folder")
        items.append(Item(source, output, sha256_of(source), size))
    return items


def _todo(items, manifest, overwrite: bool) -> list:
    """The items not yet done; refuses to replace what the manifest does not vouch for, unless ``overwrite``."""
    todo = []
    for item in items:
        name = item.output.name
        if manifest.is_done(name, item.sha256):
            continue
        if manifest.changed_input(name, item.sha256) and not overwrite:
            raise ArgumentError(f"{item.source} changed since {item.output} was made from it; give --overwrite "
                                f"to redo it")
        if item.output.exists() and not overwrite and name not in manifest.items:
            raise ArgumentError(f"{item.output} exists and is not from this batch; give --overwrite to replace it "
                                f"or choose another output folder")
        todo.append(item)
    return todo


def plan(args, manifest_open):
    """Check everything (raises ArgumentError / ImageError / ValueError); return (Plan, manifest)."""
    from nst.io import images
    from nst.io.files import sha256_of

    _refuse_flags(args)
    positionals = [args.content, *args.styles]
    inputs, style_path = expand_inputs(positionals[:-1]), Path(positionals[-1])
    style = images.read_rgb(style_path)
    out_dir = _out_dir(args.output)
    _check_apart(positionals[:-1], out_dir, inputs)
    items = _items(inputs, out_dir, style_path)
    work, settings = _method_work(args, style, sha256_of(style_path))
    manifest = manifest_open(out_dir, settings, args.overwrite) if out_dir.is_dir() else None
    todo = _todo(items, manifest, args.overwrite) if manifest else list(items)
    if args.method != "fast":
        _check_batch_memory(todo, work.settings.resolved(1), style)
    return Plan(items, todo, work, settings, out_dir, args.size), manifest


def _check_batch_memory(items, settings, style) -> None:
    """Refuse the batch, before any network is loaded, if one input's optimisation would not fit in memory.

    The one-image command's check (:func:`nst.commands.common.check_memory`) on each distinct final size;
    EXIF rotation swaps width and height, which changes neither the pixels nor the long side.
    """
    from nst.host.budget import MemoryBudgetError

    seen = set()
    for item in items:
        width, height = item.size
        try:
            sizes = engine.scale_sizes(height, width, settings.size, settings.multiscale, settings.min_size)
            if sizes[-1] not in seen:
                seen.add(sizes[-1])
                check_memory(settings, sizes, [style])
        except (MemoryBudgetError, ValueError) as error:  # too large, or too thin at this --size
            raise ArgumentError(f"input {item.source.name}: {error}") from None


def _payload(item: Item, method: str, size: int):
    """The content as the worker gets it: fast, resized here (less to send); optimise, as it is."""
    def make():
        from nst.io import images

        content = images.read_rgb(item.source)
        if method != "fast" or not size:
            return content
        from nst.fast.stylizer import check_fits

        height, width = images.size_for_long_side(*content.shape[:2], size)
        check_fits(height, width, what=f"content {item.source.name}")
        return images.resize(content, width, height)

    return make


def main(argv, console: bool = False) -> int:
    """``nst batch ...``; returns the exit status."""
    from nst.io.files import FileProblem, OutputClaim
    from nst.parallel.manifest import MANIFEST_NAME, Manifest, ManifestError

    args, status = parse_or_status(build_batch_parser(), argv)
    if args is None:
        return status
    try:
        the_plan, manifest = plan(args, Manifest.open)
        the_plan.out_dir.mkdir(exist_ok=True)
        claim = OutputClaim(the_plan.out_dir / MANIFEST_NAME).acquire()
    except (ArgumentError, ImageError, FileProblem, ManifestError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        manifest = manifest or Manifest.open(the_plan.out_dir, the_plan.settings, args.overwrite)
        return _run(args, the_plan, manifest)
    finally:
        claim.release()


def _run(args, the_plan: Plan, manifest) -> int:
    from nst.parallel.pool import PoolError, open_pool

    quiet.lower_log_level()
    progress = _Progress(args, the_plan)
    if not the_plan.todo:  # everything done before: no network to load, nothing to start
        return _report(the_plan, progress.summary(None))
    try:
        pool = open_pool(the_plan.work, args.workers, args.ray, args.cpus_per_worker, args.threads,
                         args.ray_timeout)
    except (PoolError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # the networks would not load (WeightsError and the like): one line
        from nst.io.files import one_line
        print(f"error: {one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with pool:
        progress.start()
        try:
            _consume(pool, the_plan, manifest, progress)
        except KeyboardInterrupt:
            progress.close()
            print(f"\ninterrupted: {progress.written} of {len(the_plan.todo)} images written; run again to "
                  f"resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        except OSError as error:
            progress.close()
            print(f"error: could not write to {the_plan.out_dir} ({error.strerror or error}); {progress.written} "
                  f"images written, run again to resume", file=sys.stderr)
            return EXIT_FAILED
        progress.close()
        summary = progress.summary(pool)
    return _report(the_plan, summary)


def _consume(pool, the_plan: Plan, manifest, progress) -> None:
    """Write each result as it arrives and record it in the manifest."""
    import hashlib

    from nst.io.files import atomic_path

    by_key = {item.output.name: item for item in the_plan.todo}
    method = the_plan.settings["method"]
    work_items = ((item.output.name, _payload(item, method, the_plan.size)) for item in the_plan.todo)
    for outcome in pool.results(work_items):
        item = by_key[outcome.key]
        if outcome.ok:
            png, info = outcome.result  # the file's bytes, encoded by the worker
            with atomic_path(item.output) as name:
                Path(name).write_bytes(png)
            manifest.record(outcome.key, {
                "input": str(item.source.resolve()), "input_sha256": item.sha256,
                "output_sha256": hashlib.sha256(png).hexdigest(), "worker": outcome.worker,
                "attempts": outcome.attempts, "compute_s": round(outcome.compute_s, 3),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info})
        progress.add(outcome, item)


class _Progress:
    """One bar over all items (skipped ones count as done) with throughput and ETA; the figures for the summary."""

    def __init__(self, args, the_plan: Plan):
        self.args, self.plan = args, the_plan
        self.bar, self.started = None, None
        self.written, self.failed, self.retried = 0, [], []
        self.last_error, self.repeats = None, 0  # failures with the error just printed are counted, not printed

    def add(self, outcome, item) -> None:
        if outcome.ok:
            self.written += 1
        else:
            self.failed.append({"input": str(item.source), "error": outcome.error, "attempts": outcome.attempts})
            if outcome.error == self.last_error:  # the pool gave up on the rest: one line, not one per item
                self.repeats += 1
            else:
                self._say_repeats()
                self.bar.write(f"failed: {item.source}: {outcome.error}", file=sys.stderr)
                self.last_error = outcome.error
        if outcome.attempts > 1:
            self.retried.append({"input": str(item.source), "attempts": outcome.attempts, "worker": outcome.worker,
                                 "workers_lost": outcome.losses, "ok": outcome.ok})
        self.bar.update(1)
        if self.failed:
            self.bar.set_postfix_str(f"{len(self.failed)} failed", refresh=False)

    def start(self) -> None:
        """Once the networks are loaded, so that loading does not skew the rate and ETA."""
        from tqdm import tqdm

        done = len(self.plan.items) - len(self.plan.todo)
        self.bar = tqdm(total=len(self.plan.items), initial=done, unit="img", disable=self.args.quiet,
                        dynamic_ncols=True, file=sys.stderr)
        self.started = time.perf_counter()

    def _say_repeats(self) -> None:
        if self.repeats:
            self.bar.write(f"failed: {self.repeats} more with the same error", file=sys.stderr)
            self.repeats = 0

    def close(self) -> None:
        if self.bar is not None:
            self._say_repeats()
            self.bar.close()

    def summary(self, pool) -> dict:
        wall = time.perf_counter() - self.started if self.started else 0.0
        done = len(self.plan.items) - len(self.plan.todo)
        workers = pool.workers() if pool else []
        return {"method": self.plan.settings["method"], "pool": pool.kind if pool else None, "workers": len(workers),
                "items": len(self.plan.items), "skipped": done, "written": self.written,
                "failed": self.failed, "retried": self.retried, "wall_s": round(wall, 3),
                "throughput_per_s": round(self.written / wall, 4) if wall and self.written else 0.0,
                "per_worker": workers, "output_folder": str(self.plan.out_dir)}


def _report(the_plan: Plan, summary: dict) -> int:
    from nst.io.files import atomic_path

    text = json.dumps(summary, indent=1)
    try:
        with atomic_path(the_plan.out_dir / SUMMARY_NAME) as name:
            Path(name).write_text(text + "\n")
    except OSError as error:
        print(f"error: could not write {the_plan.out_dir / SUMMARY_NAME} ({error.strerror or error})", file=sys.stderr)
    print(text)
    if summary["failed"]:
        print(f"error: {len(summary['failed'])} of {summary['items']} images failed (see \"failed\" above); "
              f"run again to retry them", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
