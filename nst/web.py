"""``nst serve``: the web page (FastAPI + uvicorn, one static page in nst/web_static/).

One job: HTTP.  Sessions and uploads live in :mod:`nst.web_sessions`, the
queue in :mod:`nst.web_queue`, the stylisation in :mod:`nst.web_jobs`.
Every ``/api`` call needs the session cookie set by ``/``; a job or image of
another session answers 404, as if it did not exist.  Errors are JSON
``{"error": "one line"}``, which the page shows as they are.
"""

import asyncio
import json
import os
import signal
import socket
import sys
import threading
import urllib.parse
from pathlib import Path

from .web_jobs import DEFAULT_ALPHA, DEFAULT_SIZE, MAX_SIZE, MAX_STYLES, JobError, Job, parse_request
from .web_sessions import UPLOAD_LIMIT_BYTES, UploadError

DEFAULT_HOST = "127.0.0.1"  # this machine only; --host 0.0.0.0 shares the page with the network
DEFAULT_PORT = 8000
COOKIE = "nst_session"
STATIC_DIR = Path(__file__).resolve().parent / "web_static"
EVENT_POLL_S = 0.2  # how often a server-sent-event stream looks for a change in its job
EVENT_KEEPALIVE_S = 15  # a comment line this often keeps proxies from closing an idle stream
THUMB_SIDE = 160


def create_app(store, queue):
    """The FastAPI application over a :class:`SessionStore` and a :class:`JobQueue`."""
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
    from fastapi.staticfiles import StaticFiles

    app = FastAPI(title="nst", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def error(message: str, status: int = 400):
        return JSONResponse({"error": message}, status_code=status)

    def session_of(request: Request):
        return store.get(request.cookies.get(COOKIE))

    def no_session():
        return error("your session has expired; reload the page", 401)

    def owned_job(request: Request, job_id: str):
        session = session_of(request)
        return session, (queue.job(session.token, job_id) if session else None)

    @app.get("/")
    def index(request: Request):
        response = FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})
        if session_of(request) is None:
            session = store.new_session()
            response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict")
        return response

    @app.get("/api/config")
    def config(request: Request):
        if session_of(request) is None:
            return no_session()
        samples = [image.describe() for image in store.samples.values()]
        return {"samples": samples, "default_size": DEFAULT_SIZE, "max_size": MAX_SIZE,
                "default_strength": DEFAULT_ALPHA, "max_styles": MAX_STYLES,
                "upload_limit_mb": store.upload_limit / 2 ** 20}

    @app.post("/api/images")
    async def upload(request: Request):
        session = session_of(request)
        if session is None:
            return no_session()
        length = request.headers.get("content-length")
        try:
            name = urllib.parse.unquote(request.headers.get("x-file-name", ""))  # the page percent-encodes it
            stored = await store.add_upload(session, name, request.stream(),
                                            int(length) if length and length.isdigit() else None)
        except UploadError as refused:
            return error(str(refused), refused.status)
        return stored.describe()

    @app.get("/api/images/{image_id}/thumb.jpg")
    def thumbnail(request: Request, image_id: str):
        session = session_of(request)
        if session is None:
            return no_session()
        try:
            image = store.image(session, image_id)
        except UploadError as missing:
            return error(str(missing), missing.status)
        return Response(_thumbnail(image.pixels), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})

    async def submit(request: Request, method: str):
        session = session_of(request)
        if session is None:
            return None, no_session()
        try:
            payload = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None, error("the request is not valid JSON; reload the page")
        try:
            parsed = parse_request(payload, method)
            images = {"content": store.image(session, parsed.content),
                      "styles": [store.image(session, image_id) for image_id, _ in parsed.styles]}
        except (JobError, UploadError) as refused:
            return None, error(str(refused), getattr(refused, "status", 400))
        return Job(session.token, parsed, images), None

    @app.post("/api/fast")
    async def fast(request: Request):
        """Run a fast job and answer when it is done (about a second; longer behind other fast jobs)."""
        job, refused = await submit(request, "fast")
        if refused:
            return refused
        try:
            future = queue.submit_fast(job)
        except JobError as busy:
            return error(str(busy), 503)
        await asyncio.wrap_future(future)
        return job.describe()

    @app.post("/api/optimise")
    async def optimise(request: Request):
        """Queue an optimisation and answer at once; follow it with /api/jobs/{id}/events."""
        from starlette.concurrency import run_in_threadpool

        from .web_jobs import check_optimise
        from .web_queue import QueueFull

        job, refused = await submit(request, "optimise")
        if refused:
            return refused
        try:
            await run_in_threadpool(check_optimise, job)
            queue.submit_optimise(job)
        except JobError as problem:
            return error(str(problem), 503 if isinstance(problem, QueueFull) else 400)
        return job.describe()

    @app.get("/api/jobs/{job_id}")
    def job_state(request: Request, job_id: str):
        session, job = owned_job(request, job_id)
        if job is None:
            return no_session() if session is None else error("no such job", 404)
        return job.describe()

    @app.get("/api/jobs/{job_id}/events")
    async def events(request: Request, job_id: str):
        session, job = owned_job(request, job_id)
        if job is None:
            return no_session() if session is None else error("no such job", 404)
        return StreamingResponse(_event_stream(request, job), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.post("/api/jobs/{job_id}/stop")
    def stop(request: Request, job_id: str):
        session, job = owned_job(request, job_id)
        if job is None:
            return no_session() if session is None else error("no such job", 404)
        queue.stop(job)
        return job.describe()

    def job_file(request, job_id, pick, media_type, suffix, attachment):
        session, job = owned_job(request, job_id)
        if job is None:
            return no_session() if session is None else error("no such job", 404)
        body = pick(job)
        if body is None:
            return error("nothing to show yet", 404)
        headers = {"Cache-Control": "no-store"}
        if attachment:
            headers["Content-Disposition"] = f'attachment; filename="nst-{job.request.method}-{job.id[:8]}{suffix}"'
        return Response(body, media_type=media_type, headers=headers)

    @app.get("/api/jobs/{job_id}/preview.png")
    def preview(request: Request, job_id: str):
        return job_file(request, job_id, lambda job: job.preview_png, "image/png", ".png", False)

    @app.get("/api/jobs/{job_id}/result.png")
    def result(request: Request, job_id: str, download: int = 0):
        return job_file(request, job_id, lambda job: job.result_png, "image/png", ".png", bool(download))

    @app.get("/api/jobs/{job_id}/record.json")
    def record(request: Request, job_id: str, download: int = 0):
        return job_file(request, job_id, lambda job: None if job.record is None else
                        (json.dumps(job.record, indent=1) + "\n").encode(), "application/json", ".json",
                        bool(download))

    async def _event_stream(request, job):
        """One ``data: {job}`` event per change of the job, until it finishes or the page goes away."""
        seen, quiet = -1, 0.0
        while True:
            if job.version != seen:
                seen = job.version
                quiet = 0.0
                yield f"data: {json.dumps(job.describe())}\n\n"
                if job.finished:
                    return
            elif quiet >= EVENT_KEEPALIVE_S:
                quiet = 0.0
                yield ": keep-alive\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(EVENT_POLL_S)
            quiet += EVENT_POLL_S

    return app


def _thumbnail(pixels) -> bytes:
    import io

    from PIL import Image

    image = Image.fromarray(pixels)
    image.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


# --------------------------------------------------------------------------
# The command

def build_parser():
    from .cli import _Parser

    parser = _Parser(prog="nst serve", description="Start the web page: stylise in the browser, "
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
    sock.set_inheritable(True)
    return sock


def _load_stylizer():
    """The fast method's networks, and the optimisation's VGG-19 loaded now (the first job starts sooner);
    one copy of the VGG-19 serves both when the optimisation uses the normalised weights too."""
    from .fast import FastStylizer
    from .stylize import get_weights
    from .weights import default_decoder_path

    vgg = get_weights()
    return FastStylizer(vgg if vgg.normalised else None, default_decoder_path())


def main(argv=None, console: bool = False) -> int:
    """``nst serve [--host H] [--port P]``: exit status 2 with one line for a bad flag, busy port or missing weights."""
    from .cli import EXIT_BAD_INPUT, EXIT_OK, tune_malloc
    from .weights import WeightsError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if not 0 <= args.port <= 65535:
        print(f"error: --port must be between 0 and 65535, not {args.port}", file=sys.stderr)
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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tune_malloc()
    try:
        stylizer = _load_stylizer()
    except WeightsError as problem:
        sock.close()
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _serve(sock, stylizer, args, console) or EXIT_OK


def _terminate_as_interrupt():
    """SIGTERM raises KeyboardInterrupt, so the temporary folder is deleted after a plain ``kill``
    as after Ctrl-C; returns the previous handler (None off the main thread, where it cannot be set)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, interrupt)


def _serve(sock, stylizer, args, console: bool) -> int:
    import uvicorn

    from .web_queue import JobQueue
    from .web_sessions import SessionStore

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
