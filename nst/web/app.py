"""The web page's HTTP routes (FastAPI): one static page in nst/web/static/ and a small JSON API.

One job: HTTP.  Sessions and uploads live in :mod:`nst.web.sessions`, the
queue in :mod:`nst.web.queue`, the stylisation in :mod:`nst.web.jobs`; the
command that starts the server is :mod:`nst.commands.serve`.  Every ``/api`` call needs
the session cookie set by ``/``; a job or image of another session answers
404, as if it did not exist, and no session 401.  Errors are JSON
``{"error": "one line"}``, which the page shows as they are.
"""

import asyncio
import io
import json
import urllib.parse
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from nst.host.precision import DEFAULT_PRECISION, PRECISIONS, choose as choose_precision
from nst.web.jobs import DEFAULT_ALPHA, DEFAULT_SIZE, MAX_SIZE, MAX_STYLES, Job, JobError, check_optimise, parse_request
from nst.web.queue import QueueFull
from nst.web.sessions import UploadError

COOKIE = "nst_session"
STATIC_DIR = Path(__file__).resolve().parent / "static"
EVENT_POLL_S = 0.2  # how often a server-sent-event stream looks for a change in its job
EVENT_KEEPALIVE_S = 15  # a comment line this often keeps proxies from closing an idle stream
THUMB_SIDE = 160

router = APIRouter()


def create_app(store, queue) -> FastAPI:
    """The application over a :class:`SessionStore` and a :class:`JobQueue`."""
    app = FastAPI(title="nst", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store, app.state.queue = store, queue
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
    return app


# ------------------------------------------------------------------ helpers

def error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def session_of(request: Request):
    return request.app.state.store.get(request.cookies.get(COOKIE))


def no_session() -> JSONResponse:
    return error("your session has expired; reload the page", 401)


def owned_job(request: Request, job_id: str):
    """(job, None) if this session owns the job, else (None, the error to answer)."""
    session = session_of(request)
    if session is None:
        return None, no_session()
    job = request.app.state.queue.job(session.token, job_id)
    return (job, None) if job is not None else (None, error("no such job", 404))


def thumbnail_jpeg(pixels) -> bytes:
    from PIL import Image

    image = Image.fromarray(pixels)
    image.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


# ------------------------------------------------------------------ the page, images

@router.get("/")
def index(request: Request):
    response = FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})
    if session_of(request) is None:
        session = request.app.state.store.new_session()
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict")
    return response


@router.get("/api/config")
def config(request: Request):
    if session_of(request) is None:
        return no_session()
    store = request.app.state.store
    return {"samples": [image.describe() for image in store.samples.values()], "default_size": DEFAULT_SIZE,
            "max_size": MAX_SIZE, "default_strength": DEFAULT_ALPHA, "max_styles": MAX_STYLES,
            "upload_limit_mb": store.upload_limit / 2 ** 20,
            "precisions": list(PRECISIONS), "default_precision": DEFAULT_PRECISION,
            "auto_precision": choose_precision(DEFAULT_PRECISION)[0]}


@router.post("/api/images")
async def upload(request: Request):
    """The file is the raw request body; its name comes percent-encoded in X-File-Name."""
    session = session_of(request)
    if session is None:
        return no_session()
    length = request.headers.get("content-length")
    name = urllib.parse.unquote(request.headers.get("x-file-name", ""))
    try:
        stored = await request.app.state.store.add_upload(session, name, request.stream(),
                                                          int(length) if length and length.isdigit() else None)
    except UploadError as refused:
        return error(str(refused), refused.status)
    return stored.describe()


@router.get("/api/images/{image_id}/thumb.jpg")
def thumbnail(request: Request, image_id: str):
    session = session_of(request)
    if session is None:
        return no_session()
    try:
        image = request.app.state.store.image(session, image_id)
    except UploadError as missing:
        return error(str(missing), missing.status)
    return Response(thumbnail_jpeg(image.pixels), media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


# ------------------------------------------------------------------ jobs

async def new_job(request: Request, method: str):
    """(a checked Job of this session, None) or (None, the error to answer)."""
    session = session_of(request)
    if session is None:
        return None, no_session()
    try:
        payload = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, error("the request is not valid JSON; reload the page")
    store = request.app.state.store
    try:
        parsed = parse_request(payload, method)
        images = {"content": store.image(session, parsed.content),
                  "styles": [store.image(session, image_id) for image_id, _ in parsed.styles]}
    except (JobError, UploadError) as refused:
        return None, error(str(refused), getattr(refused, "status", 400))
    return Job(session.token, parsed, images), None


@router.post("/api/fast")
async def fast(request: Request):
    """Run a fast job and answer when it is done (about a second; longer behind other fast jobs)."""
    job, refused = await new_job(request, "fast")
    if refused:
        return refused
    try:
        future = request.app.state.queue.submit_fast(job)
    except QueueFull as busy:
        return error(str(busy), 503)
    await asyncio.wrap_future(future)
    return job.describe()


@router.post("/api/optimise")
async def optimise(request: Request):
    """Queue an optimisation and answer at once; follow it with /api/jobs/{id}/events."""
    job, refused = await new_job(request, "optimise")
    if refused:
        return refused
    try:
        await run_in_threadpool(check_optimise, job)
        request.app.state.queue.submit_optimise(job)
    except JobError as problem:
        return error(str(problem), 503 if isinstance(problem, QueueFull) else 400)
    return job.describe()


@router.get("/api/jobs/{job_id}")
def job_state(request: Request, job_id: str):
    job, refused = owned_job(request, job_id)
    return refused if refused is not None else job.describe()


@router.post("/api/jobs/{job_id}/stop")
def stop(request: Request, job_id: str):
    job, refused = owned_job(request, job_id)
    if refused:
        return refused
    request.app.state.queue.stop(job)
    return job.describe()


@router.get("/api/jobs/{job_id}/events")
async def events(request: Request, job_id: str):
    job, refused = owned_job(request, job_id)
    if refused:
        return refused
    return StreamingResponse(event_stream(request, job), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def event_stream(request: Request, job: Job):
    """One ``data: {job}`` event per change of the job, until it finishes or the page goes away."""
    seen, quiet = -1, 0.0
    while True:
        if job.version != seen:
            seen, quiet = job.version, 0.0
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


def job_file(request: Request, job_id: str, body_of, media_type: str, suffix: str, attachment: bool):
    job, refused = owned_job(request, job_id)
    if refused:
        return refused
    body = body_of(job)
    if body is None:
        return error("nothing to show yet", 404)
    headers = {"Cache-Control": "no-store"}
    if attachment:
        headers["Content-Disposition"] = f'attachment; filename="nst-{job.request.method}-{job.id[:8]}{suffix}"'
    return Response(body, media_type=media_type, headers=headers)


def record_bytes(job: Job):
    return None if job.record is None else (json.dumps(job.record, indent=1) + "\n").encode()


@router.get("/api/jobs/{job_id}/preview.png")
def preview(request: Request, job_id: str):
    return job_file(request, job_id, lambda job: job.preview_png, "image/png", ".png", False)


@router.get("/api/jobs/{job_id}/result.png")
def result(request: Request, job_id: str, download: int = 0):
    return job_file(request, job_id, lambda job: job.result_png, "image/png", ".png", bool(download))


@router.get("/api/jobs/{job_id}/record.json")
def record(request: Request, job_id: str, download: int = 0):
    return job_file(request, job_id, record_bytes, "application/json", ".json", bool(download))
