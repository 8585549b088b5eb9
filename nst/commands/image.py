"""``nst CONTENT STYLE [STYLE ...] -o OUT``: neural style transfer from the command line.

Flag names follow jcjohnson/neural-style, anishathalye/neural-style and
crowsonkb/style-transfer-pytorch where they fit (``--style-blend-weights``,
``--style-scale``, ``--preserve-colors``, ``--pooling``, ``--tv-weight``,
``--init``, ``--print-every``/``--save-every`` for their ``-print_iter``/``-save_iter``).

Everything is checked before the network is loaded: a bad argument, image,
weights file or output path prints one ``error: ...`` line on stderr and
exits with status 2, writing nothing.  Ctrl-C stops cleanly, saves the best
image so far (and its pictures and JSON) and exits with status 130.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

from nst.host import quiet
from nst.commands.common import (EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ArgumentError, Signals,
                                 check_memory, ignore_late_signals, parse_or_status, settings_from)
from nst.commands.options import DEFAULT_GIF_FRAMES, build_parser
from nst.io.files import package_versions
from nst.optimise import stylize as engine
from nst.optimise.settings import INITS

# Intermediate images (--save-every) a run may write: beyond this, a typo such as
# --save-every 1 with a billion iterations is refused instead of filling the disk.
MAX_INTERMEDIATE_IMAGES = 10_000


def companion_paths(output: Path, args, total_steps: int) -> dict:
    """Every file the run may write, so all can be checked before the work starts."""
    stem, suffix = output.with_suffix(""), output.suffix
    paths = {"image": output, "json": Path(f"{stem}.json")}
    if not args.no_pictures:
        paths["compare"] = Path(f"{stem}_compare.png")
        paths["costs"] = Path(f"{stem}_costs.png")
    if args.gif:
        paths["gif"] = Path(f"{stem}.gif")
    if args.save_every:
        count = total_steps // args.save_every
        if count > MAX_INTERMEDIATE_IMAGES:
            raise ArgumentError(f"--save-every {args.save_every} with {total_steps} iterations would write {count:,} "
                                f"images (the limit is {MAX_INTERMEDIATE_IMAGES:,}); raise --save-every")
        for step in range(args.save_every, total_steps + 1, args.save_every):
            paths[f"step{step}"] = Path(f"{stem}_{step:04d}{suffix}")
    return paths


def _read_init(args, settings):
    """Set ``settings.init`` from --init (a named start or an image file); return the file's path or None."""
    from nst.io import images
    from nst.io.files import stat_path

    if args.init in INITS:
        settings.init = args.init
        return None
    if stat_path(args.init, "--init image") is None and "." not in Path(args.init).name:
        raise ArgumentError(f"--init must be one of {', '.join(INITS)} or an image file; {args.init!r} is neither")
    settings.init = images.read_rgb(args.init)
    return args.init


def _total_steps(settings, sizes) -> int:
    return sum(engine.scale_iterations(settings.iterations, len(sizes)))


def check_outputs(args, output, total_steps) -> dict:
    """Every file the run will write, each checked writable (and absent unless --overwrite)."""
    from nst.io import images

    output = images.check_output_path(output, args.overwrite)
    paths = companion_paths(output, args, total_steps)
    for path in paths.values():  # all beside the output, whose folder was just probed
        images.check_output_path(path, args.overwrite, extensions=None, probe=False)
    return paths


def _prepare(args):
    """Check everything and return (settings, content, styles, init path, weights path, paths); raise on error."""
    from nst.io import images
    from nst.weights.fetch import weights_for_use

    content = images.read_rgb(args.content)
    styles = [images.read_rgb(path) for path in args.styles]
    settings, sizes = engine.resolve(settings_from(args), len(args.styles), *content.shape[:2])
    init_path = _read_init(args, settings)
    check_memory(settings, sizes, styles)
    paths = check_outputs(args, args.output, _total_steps(settings, sizes))
    weights = weights_for_use(args.weights)  # the default file is fetched on first use
    inputs = {Path(p).resolve() for p in [args.content, *args.styles] + ([init_path] if init_path else [])}
    clash = [path for path in paths.values() if path.resolve() in inputs]
    if clash:
        raise ArgumentError(f"output {clash[0]} is one of the input images; choose another name")
    return settings, content, styles, init_path, weights, paths, sizes


class _Reporter:
    """The engine's callback: progress bar, printed costs, intermediate images, GIF frames."""

    def __init__(self, args, paths, total_steps, signals=None):
        from tqdm import tqdm

        self.args, self.paths, self.total, self.signals = args, paths, total_steps, signals
        self.bar = None  # created at the first event, so set-up time does not skew the ETA
        self._make_bar = lambda: tqdm(
            total=total_steps, unit="it", disable=args.quiet, dynamic_ncols=True, file=sys.stderr,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]{postfix}")
        self.frames = []
        self.gif_every = max(1, total_steps // DEFAULT_GIF_FRAMES)
        self.written = []

    def __call__(self, progress):
        if self.signals is not None and self.signals.stopping:
            # A first signal arrived but the run goes on: it landed in a destructor, where Signals
            # leaves it for here, or its KeyboardInterrupt was swallowed on the way.  The engine
            # calls back only while it iterates, so this is the place to raise it.
            raise KeyboardInterrupt
        c = progress.costs
        if self.bar is None:
            self.bar = self._make_bar()
        if progress.step > self.bar.n:
            self.bar.update(progress.step - self.bar.n)
        self.bar.set_postfix_str(f"total {c['total']:.4g}, content {c['content']:.3g}, style {c['style']:.3g}",
                                 refresh=False)
        step, args = progress.step, self.args
        if progress.iteration == 0 and len(progress.sizes) > 1 and not args.quiet:
            h, w = progress.sizes[progress.scale]
            tiled = f" in tiles of about {progress.tile} px" if progress.tile else ""
            self.bar.write(f"scale {progress.scale + 1}/{len(progress.sizes)}: {w}x{h}{tiled}", file=sys.stderr)
        if args.print_every and progress.iteration > 0 and (step % args.print_every == 0 or step == self.total):
            self.bar.write(f"iteration {step}/{self.total}: total {c['total']:.6g}  content {c['content']:.6g}  "
                           f"style {c['style']:.6g}  tv {c['tv']:.6g}  ({progress.elapsed:.1f} s)", file=sys.stderr)
        if args.save_every and progress.iteration > 0 and step % args.save_every == 0:
            path = self.paths.get(f"step{step}")
            if path is not None:
                self._save_intermediate(path, progress.image())
        if args.gif and (step % self.gif_every == 0 or step == self.total) and (
                not self.frames or self.frames[-1][0] != step):
            self.frames.append((step, _thumbnail(progress.image())))

    def _save_intermediate(self, path, image):
        """Save an --save-every image; a failed write (a full disk) ends the run, keeping the best image."""
        from nst.io import images

        # A signal during the write is held and raised once the file is complete: an encoder
        # interrupted half-way leaves nothing for a destructor to trip on.
        with self.signals.held() if self.signals is not None else contextlib.nullcontext():
            try:
                images.save_rgb(path, image)
            except OSError as error:
                raise engine.Stop(f"could not write {path} ({error.strerror or error}); stopped the run") from None
        self.written.append(path)
        if self.signals is not None and self.signals.stopping:
            raise KeyboardInterrupt

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _thumbnail(image, long_side=400):
    from nst.io import images

    h, w = image.shape[:2]
    if max(h, w) <= long_side:
        return image
    th, tw = images.size_for_long_side(h, w, long_side)
    return images.resize(image, tw, th)


class WriteFailed(Exception):
    """The outputs could not be written (a full disk, a vanished folder): one line, says what was kept."""


def _record(args, paths, result, init_path, weights, files, argv) -> dict:
    """The JSON record: the full configuration, the seed, the costs and history (enough to reproduce)."""
    s = result.settings
    config = s.to_json()
    config["init"] = str(Path(init_path).resolve()) if init_path else s.init
    return {
        "command": ["nst", *argv],
        "content": str(Path(args.content).resolve()),
        "styles": [str(Path(p).resolve()) for p in args.styles],
        "output": str(paths["image"].resolve()),
        "weights": str(Path(weights).resolve()),
        "settings": config,
        "status": result.status,
        "message": result.message,
        "sizes": [[w_, h_] for h_, w_ in result.sizes],  # [width, height] per scale
        "steps": result.steps,
        "best_iteration": result.best_iteration,
        "tiles": result.tiles,  # per scale: the core side of its tiles, null where it ran whole
        "final_costs": result.costs,
        "elapsed_s": round(result.elapsed, 3),
        "files": {key: str(path) for key, path in paths.items() if path in files},
        "versions": package_versions(),
        "history": [row.record() for row in result.history],
    }


def _stage_results(staging, args, paths, result, content, styles, reporter) -> None:
    """Write the image and its companions to temporary files (published together by the caller)."""
    from nst.io import images
    from nst.optimise import pictures

    staging.stage(paths["image"], lambda name: images.save_rgb(name, result.image))
    h, w = result.image.shape[:2]
    if "compare" in paths:
        staging.stage(paths["compare"], lambda name: pictures.save_side_by_side(
            name, images.resize(content, w, h), styles, result.image))
    s = result.settings
    if "costs" in paths:
        title = f"{Path(args.content).name} + {', '.join(Path(p).name for p in args.styles)} ({s.optimizer})"
        weights = {"content": s.content_weight, "style": s.style_weight, "tv": s.tv_weight,
                   "distribution": s.distribution_weight}
        staging.stage(paths["costs"], lambda name: pictures.save_cost_plot(
            name, result.history, weights, result.sizes, title,
            engine.scale_iterations(s.iterations, len(result.sizes))))
    if "gif" in paths and reporter.frames:
        staging.stage(paths["gif"], lambda name: pictures.save_gif(
            name, [frame for _, frame in reporter.frames] + [result.image]))


def _write_results(args, paths, result, content, styles, init_path, weights, reporter, argv):
    """Publish the image, its pictures and the JSON record all together, or none of them.

    If the disk fills up, the temporary files are removed and the image alone is tried
    again, since it is what the user waited for; WriteFailed says what was kept.
    """
    from nst.io.files import Staging

    staging = Staging()
    try:
        _stage_results(staging, args, paths, result, content, styles, reporter)
        files = list(reporter.written) + [target for _, target in staging.staged] + [paths["json"]]
        record = _record(args, paths, result, init_path, weights, files, argv)
        staging.stage(paths["json"], lambda name: Path(name).write_text(json.dumps(record, indent=1) + "\n"))
        return list(reporter.written) + staging.publish()
    except OSError as error:
        staging.discard()
        raise WriteFailed(f"could not write the results to {paths['image'].parent} ({error.strerror or error}); "
                          f"{_keep_image_only(paths['image'], result.image)}") from None


def _keep_image_only(path, image) -> str:
    from nst.io import images

    try:
        images.save_rgb(path, image)
    except OSError:
        return "nothing was written; free some space and run again"
    return f"kept the image alone in {path}; free some space and run again for the rest"


def main(argv=None, console: bool = False) -> int:
    """``nst CONTENT STYLE -o OUT`` (see :func:`nst.commands.main`, which calls it)."""
    if argv is None:  # called as a script
        argv, console = sys.argv[1:], True
    argv = list(argv)
    args, status = parse_or_status(build_parser(), argv)
    if args is None:
        return status
    if args.method == "fast" or args.alpha is not None or args.mask or args.style_size is not None:
        from nst.commands import fast

        return fast.run(args, argv, console=console)
    from nst.io.files import FileProblem, OutputClaim

    try:
        prepared = _prepare(args)
        claim = OutputClaim(prepared[5]["image"]).acquire()
    except (ArgumentError, FileProblem, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        check_outputs(args, args.output, _total_steps(prepared[0], prepared[6]))  # taken while we checked?
        return _run(args, argv, *prepared, console=console)
    except (ArgumentError, FileProblem) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        claim.release()


def _run(args, argv, settings, content, styles, init_path, weights_path, paths, sizes, console=False) -> int:
    """Load the network, optimise and write the results, with :class:`Signals` in charge of Ctrl-C."""
    quiet.lower_log_level()
    # No tune_malloc here (issue 30): glibc's own settings ran the optimisation 7-19 % faster at 512 and
    # 1024 px for 3-10 % more peak memory, and 4 % less at 2048 (bench/RESULTS.md); nst.host.budget is
    # fitted to them.
    signals = Signals()
    signals.install()
    try:
        return _optimise_and_write(args, argv, settings, content, styles, init_path, weights_path, paths, sizes,
                                   signals)
    finally:
        if console:
            ignore_late_signals()
        else:
            signals.restore()


def _optimise_and_write(args, argv, settings, content, styles, init_path, weights_path, paths, sizes, signals):
    from nst.weights.load import WeightsError

    reporter = None
    try:
        weights = engine.get_weights(weights_path)
        reporter = _Reporter(args, paths, _total_steps(settings, sizes), signals)
        started = time.perf_counter()
        result = engine.stylize(content, styles, settings, callback=reporter, weights=weights)
        signals.saving = True
    except WeightsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, Exception) as error:  # a Ctrl-C inside TensorFlow's tracing can surface as
        if not (isinstance(error, KeyboardInterrupt) or signals.stopping):  # another error (nst.commands.fast)
            raise
        print("\ninterrupted before the first iteration; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if reporter is not None:
            reporter.close()
    if result.image is None:
        print(f"error: {result.message}; nothing written", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        written = _write_results(args, paths, result, content, styles, init_path, weights_path, reporter, argv)
    except WriteFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    return _summarise(args, paths, result, reporter, written, time.perf_counter() - started)


def _summarise(args, paths, result, reporter, written, seconds) -> int:
    """Print how the run ended and return its exit status."""
    h, w = result.image.shape[:2]
    summary = (f"{w}x{h}, {result.steps} iterations in {seconds:.1f} s, total cost {result.costs['total']:.6g} "
               f"(content {result.costs['content']:.4g}, style {result.costs['style']:.4g})")
    if result.status == "nonfinite":
        print(f"error: {result.message}; saved it to {paths['image']}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if result.status == "interrupted":
        print(f"interrupted: saved the best image so far to {paths['image']} ({summary})", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.status == "stopped":
        print(f"error: {result.message}; saved the best image so far to {paths['image']}", file=sys.stderr)
        return EXIT_FAILED
    if not args.quiet:
        extras = [str(p) for p in written[len(reporter.written):] if p != paths["image"]]
        print(f"{summary}\nwrote {', '.join(extras)}" + (f" and {len(reporter.written)} intermediate images"
                                                         if reporter.written else ""), file=sys.stderr)
    print(paths["image"])
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
