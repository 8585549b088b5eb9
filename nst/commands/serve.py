"""``nst serve [--host H] [--port P]``: start the web page and print its URL.

One job: the command.  It checks its flags, binds the port and loads the
networks before it says where to go (a busy port or missing weights is one
``error:`` line and exit status 2), then serves :func:`nst.web.app.create_app`
with uvicorn until Ctrl-C or SIGTERM, and deletes the uploads' temporary
folder on the way out.  FastAPI and uvicorn are imported only here and in
:mod:`nst.web.app`, so the rest of the tool does not need them.
"""

import argparse
import importlib.util
import signal
import socket
import sys
import threading

from nst.host import quiet
from nst.web.sessions import UPLOAD_LIMIT_BYTES

DEFAULT_HOST = "127.0.0.1"  # this machine only; --host 0.0.0.0 shares the page with the network
DEFAULT_PORT = 8000
WEB_PACKAGES = ("fastapi", "uvicorn")


class Parser(argparse.ArgumentParser):
    """argparse with a one-line ``error: ...`` and exit status 2, as the main command's parser."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser():
    parser = Parser(prog="nst serve", description="Start the web page: stylise in the browser, "
                     "fast or optimised with a live preview.")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; "
                             f"0.0.0.0 shares the page with your network)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--max-upload-mb", type=float, default=UPLOAD_LIMIT_BYTES / 2 ** 20,
                        help="largest image file accepted, in MB (default %(default)g)")
    return parser


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def _load_stylizer():
    """The fast method's networks, and the optimisation's VGG-19 loaded now (the first job starts sooner);
    one copy of the VGG-19 serves both when the optimisation uses the normalised weights too."""
    from nst.optimise.stylize import get_weights
    from nst.web.jobs import caching_stylizer
    from nst.weights.fetch import fast_weights_for_use

    vgg = get_weights()  # the default files are fetched on first use
    return caching_stylizer(vgg if vgg.normalised else None, fast_weights_for_use()[1])


def main(argv=None, console: bool = False) -> int:
    """``nst serve [--host H] [--port P]``: exit status 2 with one line for a bad flag, busy port or missing weights."""
    from nst.commands.common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, parse_or_status, tune_malloc
    from nst.weights.load import WeightsError

    args, status = parse_or_status(build_parser(), argv)
    if args is None:
        return status
    if not 0 <= args.port <= 65535:
        print(f"error: --port must be between 0 and 65535, not {args.port}", file=sys.stderr)
        return EXIT_BAD_INPUT
    missing = [name for name in WEB_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        print(f"error: the web page needs {' and '.join(missing)}; run: pip install -r requirements.txt "
              f"(or pip install 'nst[web]')", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.max_upload_mb > 0:
        print("error: --max-upload-mb must be above 0", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        sock = _bind(args.host, args.port)
    except (OSError, OverflowError) as problem:
        print(f"error: cannot listen on {args.host}:{args.port} ({getattr(problem, 'strerror', None) or problem}); "
              f"choose another --port or --host", file=sys.stderr)
        return EXIT_BAD_INPUT
    quiet.lower_log_level()
    tune_malloc()
    try:
        stylizer = _load_stylizer()
    except (WeightsError, KeyboardInterrupt) as problem:
        sock.close()
        if isinstance(problem, KeyboardInterrupt):
            print("\ninterrupted while loading the networks", file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _serve(sock, stylizer, args) or EXIT_OK


def _terminate_as_interrupt():
    """SIGTERM raises KeyboardInterrupt, so the temporary folder is deleted after a plain ``kill``
    as after Ctrl-C; returns the previous handler (None off the main thread, where it cannot be set)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, interrupt)


def _serve(sock, stylizer, args) -> int:
    import uvicorn

    from nst.web.app import create_app
    from nst.web.queue import JobQueue
    from nst.web.sessions import SessionStore

    store = SessionStore(upload_limit=int(args.max_upload_mb * 2 ** 20))
    queue = JobQueue(stylizer)
    store.on_forget.append(queue.forget_session)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"nst serve: open http://{shown}:{port}/ in a browser (Ctrl-C to stop)", flush=True)
    if host not in ("127.0.0.1", "::1", "localhost"):
        print("nst serve: the page is reachable from other machines; anyone who can reach it can use it",
              file=sys.stderr, flush=True)
    config = uvicorn.Config(create_app(store, queue), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    previous = _terminate_as_interrupt()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn shuts down on Ctrl-C or SIGTERM, then raises the signal again once it is done.
        print("nst serve: stopped", file=sys.stderr)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        queue.close()
        store.close()
        sock.close()
    return 0
