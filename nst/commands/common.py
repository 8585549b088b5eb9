"""What every command shares: exit statuses, one-line errors, signals, threads and memory, pool flags.

Any command may import this module; no command imports another's.  (The image
command's parser, which ``nst batch`` and the fast mode reuse, is in
:mod:`nst.commands.options`.)
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from nst.optimise.settings import DEFAULT_LEARNING_RATE, OPTIONS, Number, Settings

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class ArgumentError(Exception):
    """A flag or an input the command refuses (one line, says what to do; exit status 2)."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line ``error: ...`` and exit status 2 (no usage dump)."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def parse_or_status(parser: argparse.ArgumentParser, argv):
    """(parsed args, None), or (None, exit status) where argparse exited (--help: 0, a bad flag: 2)."""
    try:
        return parser.parse_args(argv), None
    except SystemExit as exit_:
        return None, int(exit_.code or 0)


def number(spec: Number):
    """An argparse ``type`` checking command-line text with ``spec`` (the engine's own check)."""
    def parse(text):
        try:
            return spec.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def settings_from(args) -> Settings:
    """Settings from the parsed options (every field but ``init``, which :func:`nst.commands.image._read_init` reads)."""
    if args.learning_rate is not None and args.optimizer == "lbfgs":
        raise ArgumentError("--learning-rate applies to --optimizer adam only; L-BFGS chooses its own steps")
    given = {option.field: getattr(args, option.field) for option in OPTIONS if option.field != "init"}
    if given["learning_rate"] is None:
        given["learning_rate"] = DEFAULT_LEARNING_RATE
    given["precision"] = chosen_precision(args.precision)
    return Settings(**given)


def chosen_precision(requested: str) -> str:
    """The precision a run uses for ``--precision`` on this CPU; a fallback is said in one line."""
    from nst.host.precision import choose

    used, notice = choose(requested)
    if notice:
        print(f"note: {notice}", file=sys.stderr)
    return used


def check_memory(settings, sizes, styles):
    """Refuse a run the machine cannot hold, before anything large is allocated."""
    from nst.host import budget
    from nst.optimise.tiling import margin_of

    height, width = sizes[-1]
    style_side = max(height, width) * settings.style_scale
    style_pixels = max(round(style_side * style_side * min(s.shape[:2]) / max(s.shape[:2])) for s in styles)
    budget.check_fits(height, width, style_pixels, tile=settings.tile, margin=margin_of(settings), sizes=sizes)


class Signals:
    """Ctrl-C and SIGTERM: the first stops the run (KeyboardInterrupt, which the engine turns
    into "keep the best image"); any later one, and any while the results are being saved,
    is only acknowledged, so that the save it would interrupt completes.

    SIGINT that the shell set to be ignored (a job started with ``&``) stays ignored, as Unix expects.
    """

    def __init__(self):
        self.stopping = False  # a first signal has arrived
        self.saving = False  # the results are being written
        self.told = False
        self.previous = {}  # signal number -> the handler before ours

    def install(self) -> None:
        import signal

        for signum in (signal.SIGINT, signal.SIGTERM):
            if signum == signal.SIGINT and signal.getsignal(signum) is signal.SIG_IGN:
                continue
            try:
                self.previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (an embedding application): leave signals alone
                return

    def restore(self) -> None:
        import signal

        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    @contextlib.contextmanager
    def held(self):
        """A first signal inside the block is only noted, as while the results are saved, so that a file
        being written is completed; the caller raises it afterwards (``stopping``)."""
        before, self.saving = self.saving, True
        try:
            yield
        finally:
            self.saving = before

    def _handle(self, signum, frame):
        if self.stopping or self.saving:
            self.stopping = True  # a loop between saves (the fast mode's folder) ends after this one
            if not self.told:
                print("\nstopping: saving the best image so far, please wait", file=sys.stderr)
                self.told = True
            return
        self.stopping = True
        if in_destructor(frame):  # raised there, it would only be printed ("Exception ignored") and lost
            return  # the engine's callback (the command's progress callback) raises it at the next step
        raise KeyboardInterrupt


def in_destructor(frame) -> bool:
    """Whether a signal landed inside a ``__del__`` (garbage collection can run one anywhere, e.g.
    imageio's plugins while the run saves an intermediate image)."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def tune_malloc(arenas: int = 2, mmap_threshold: int = 1 << 20) -> None:
    """Make glibc's malloc hand TensorFlow's freed tensors back to the system (before TF starts).

    * Two arenas instead of one per thread (like ``MALLOC_ARENA_MAX=2``): with
      one per thread, memory freed after a step stays spread over many arenas
      and the next step's tensors land elsewhere.
    * A fixed mmap threshold of 1 MiB (``MALLOC_MMAP_THRESHOLD_``): glibc's
      default threshold rises to 32 MiB once large blocks are freed, after which
      activations come from the heap and stay there; with a fixed one every
      activation is its own mapping, returned when the tensor dies.

    Peak RSS at 1024x768 in an engine probe (one L-BFGS evaluation): 2.82 GB
    with two arenas, 2.55 GB with the fixed threshold as well.
    A no-op where libc has no ``mallopt`` (not glibc).  The fast command calls it; the optimisation
    no longer does: there glibc's own settings were 7-19 % faster for 3-10 % more memory (issue 30).
    """
    import ctypes

    M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # from glibc's malloc.h
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_ARENA_MAX, arenas)
    mallopt(M_MMAP_THRESHOLD, mmap_threshold)


def ignore_late_signals() -> None:
    """Once a command's results are on disk, ignore Ctrl-C and SIGTERM until the process exits.

    Python restores the default handlers while the interpreter and TensorFlow shut down, so a
    late signal would end the process by the signal instead of with main's exit status.
    """
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(signum, signal.SIG_IGN)
        except ValueError:  # not the main thread
            return


def add_pool_options(group, workers_default=1) -> None:
    """--workers, --ray, --ray-timeout, --cpus-per-worker, --threads: how items are run (``nst batch``, ``nst video``).

    ``workers_default`` None lets a command tell "not given" (its own one-process path) from 1.
    """
    from nst.parallel.pool import LOCAL_RAY, RAY_TIMEOUT_S

    shown = "not given, one process without a pool" if workers_default is None else str(workers_default)
    group.add_argument("--workers", type=number(Number(int, minimum=1)), default=workers_default, metavar="N",
                       help=f"workers, each with the networks loaded once; more than 1 needs --ray (default: {shown})")
    group.add_argument("--ray", nargs="?", const=LOCAL_RAY, default=None, metavar="ADDRESS|auto",
                       help="run the workers as Ray actors: alone, on a Ray instance started on this machine; "
                            "'auto' or an address, on that cluster (needs `pip install nst[ray]`)")
    group.add_argument("--ray-timeout", type=number(Number(float, minimum=1)), default=None, metavar="S",
                       help="--ray: seconds the workers may take to start, and the longest wait for a lost worker "
                            f"to come back when none is left (default: {RAY_TIMEOUT_S:g})")
    group.add_argument("--cpus-per-worker", type=number(Number(int, minimum=1)), default=None, metavar="C",
                       help="--ray: CPUs reserved per worker (default: the cluster's CPUs shared out)")
    group.add_argument("--threads", type=number(Number(int, minimum=1)), default=None, metavar="T",
                       help="TensorFlow threads per worker (default: every core; with --ray, the worker's CPUs)")


def check_pool_options(args) -> None:
    """Refuse pool flags that do not go together (ArgumentError)."""
    workers = args.workers or 1
    if workers > 1 and args.ray is None:
        raise ArgumentError(f"--workers {workers} needs --ray (one process runs one worker); add --ray to run "
                            f"{workers} workers on this machine")
    if args.cpus_per_worker is not None and args.ray is None:
        raise ArgumentError("--cpus-per-worker applies to --ray only")
    if args.ray_timeout is not None and args.ray is None:
        raise ArgumentError("--ray-timeout applies to --ray only")
