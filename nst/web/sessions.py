"""Who owns what on the web page: sessions, their uploaded images, the sample images.

One job: keep each visitor's images apart and on disk only as long as needed.
Every visitor gets an unguessable session token (a cookie); uploads are written
into that session's own folder under one temporary root, decoded with
:func:`nst.io.images.read_rgb` (the CLI's checks: not an image, truncated,
decompression bomb, tiny) and kept in memory at most :data:`WORKING_SIDE` px.
A session idle for :data:`SESSION_IDLE_S` seconds is forgotten and its folder
deleted; :meth:`SessionStore.close` deletes the whole root.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Optional

import numpy as np

from nst.io.images import IMAGES_DIR, MAX_PIXELS, SAMPLE_SHA256, ImageError

UPLOAD_LIMIT_BYTES = 20 * 2 ** 20  # one uploaded file; a phone photo is 3-12 MB
WORKING_SIDE = 4096  # uploads are kept at most this long side (36 MiB at 4:3): the largest size the page offers
SESSION_IDLE_S = 3600  # a session unused this long is deleted with its files and jobs
IMAGES_PER_SESSION = 12  # beyond this the session's oldest upload is forgotten (a job uses at most 5)
SESSIONS = 200  # beyond this the least recently used session is forgotten (each may hold 12 images)
NAME_LENGTH = 80  # a file name as shown on the page
SAMPLE_PREFIX = "sample-"  # ids of the shared sample images; uploads get random ids


class UploadError(ValueError):
    """A refused upload (one line, says what to do); ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class StoredImage:
    """An image a job can use: uint8 pixels [h, w, 3], at most WORKING_SIDE on the long side."""

    id: str
    name: str  # as the visitor called it (sanitised), for the page and the JSON record
    sha256: str  # of the file as uploaded
    source: str  # "upload" or "sample"
    original_size: tuple  # (width, height) of the file
    pixels: np.ndarray = field(repr=False)

    def describe(self) -> dict:
        return {"id": self.id, "name": self.name, "source": self.source, "sha256": self.sha256,
                "width": self.original_size[0], "height": self.original_size[1]}


@dataclass
class Session:
    token: str
    folder: Path
    images: OrderedDict = field(default_factory=OrderedDict)  # id -> StoredImage
    last_seen: float = field(default_factory=time.monotonic)


def display_name(name: Optional[str]) -> str:
    """A visitor's file name, safe to show and record: its last component, printable, short."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:NAME_LENGTH] or "upload"


def _shrunk(pixels: np.ndarray) -> np.ndarray:
    from nst.io.images import resize, size_for_long_side

    height, width = pixels.shape[:2]
    if max(height, width) <= WORKING_SIDE:
        return pixels
    height, width = size_for_long_side(height, width, WORKING_SIDE)
    return resize(pixels, width, height)


def decode_file(path: Path, name: str, max_pixels: int = MAX_PIXELS) -> tuple:
    """(uint8 pixels, (width, height)) of an uploaded file, or UploadError naming ``name`` instead of ``path``."""
    try:
        from nst.io.images import read_rgb

        pixels = read_rgb(path, max_pixels=max_pixels)
    except ImageError as error:
        raise UploadError(str(error).replace(str(path), name)) from None
    return _shrunk(pixels), (pixels.shape[1], pixels.shape[0])


class SessionStore:
    """All sessions of one server, under one temporary folder (deleted by :meth:`close`)."""

    def __init__(self, upload_limit: int = UPLOAD_LIMIT_BYTES, max_pixels: int = MAX_PIXELS,
                 images_dir: Path = IMAGES_DIR, idle_seconds: float = SESSION_IDLE_S):
        self.root = Path(tempfile.mkdtemp(prefix="nst-web-"))
        self.upload_limit, self.max_pixels, self.idle_seconds = upload_limit, max_pixels, idle_seconds
        self._sessions: dict = {}
        self._lock = threading.Lock()
        self._decode_lock = threading.Lock()  # one decode at a time: a 64-megapixel image is 192 MB decoded
        self.samples = self._load_samples(Path(images_dir))
        self.on_forget = []  # callables(token) run when a session is deleted (the job queue's cleanup)

    # ------------------------------------------------------------------
    # Samples: the project's verified sample images, shared by every session

    @staticmethod
    def _load_samples(images_dir: Path) -> dict:
        from nst.io.files import sha256_of

        samples = {}
        for name, digest in sorted(SAMPLE_SHA256.items()):
            path = images_dir / name
            if not path.is_file() or sha256_of(path) != digest:
                continue  # absent or altered: not offered
            pixels, original = decode_file(path, name)
            samples[SAMPLE_PREFIX + name] = StoredImage(SAMPLE_PREFIX + name, name, digest, "sample", original, pixels)
        return samples

    # ------------------------------------------------------------------
    # Sessions

    def new_session(self) -> Session:
        token = secrets.token_urlsafe(32)
        folder = self.root / secrets.token_hex(16)  # not the token: folder names may show in messages or logs
        folder.mkdir()
        session = Session(token, folder)
        with self._lock:
            self._sessions[token] = session
            excess = sorted(self._sessions.values(), key=lambda s: s.last_seen)[:max(0, len(self._sessions) - SESSIONS)]
            for old in excess:
                del self._sessions[old.token]
        for old in excess:
            self._forget(old)
        return session

    def get(self, token: Optional[str]) -> Optional[Session]:
        """The live session with this token (and mark it used), or None."""
        self.expire()
        with self._lock:
            session = self._sessions.get(token or "")
            if session is not None:
                session.last_seen = time.monotonic()
            return session

    def expire(self, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [s for s in self._sessions.values() if now - s.last_seen > self.idle_seconds]
            for session in idle:
                del self._sessions[session.token]
        for session in idle:
            self._forget(session)

    def _forget(self, session: Session) -> None:
        for callback in self.on_forget:
            callback(session.token)
        session.images.clear()
        shutil.rmtree(session.folder, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            self._forget(session)
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------
    # Images

    def image(self, session: Session, image_id: str) -> StoredImage:
        found = self.samples.get(image_id) or session.images.get(image_id)
        if found is None:
            raise UploadError("that image is no longer on the server; upload it again", status=404)
        return found

    async def add_upload(self, session: Session, name: str, chunks: AsyncIterator[bytes],
                         declared_length: Optional[int] = None) -> StoredImage:
        """Write an upload (streamed in ``chunks``) into the session's folder, stopping at the size limit,
        then decode it off the event loop.  A refused file leaves nothing behind."""
        from starlette.concurrency import run_in_threadpool

        name = display_name(name)
        limit_mb = self.upload_limit / 2 ** 20
        too_big = UploadError(f"{name} is over the {limit_mb:g} MB upload limit; shrink or re-export it", status=413)
        if declared_length is not None and declared_length > self.upload_limit:
            raise too_big
        path = session.folder / (secrets.token_hex(8) + Path(name).suffix[:10].lower())
        digest, size = hashlib.sha256(), 0
        try:
            with open(path, "wb") as handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.upload_limit:
                        raise too_big
                    digest.update(chunk)
                    handle.write(chunk)
            if size == 0:
                raise UploadError(f"{name} is empty; choose an image file")
            pixels, original = await run_in_threadpool(self._decode, path, name)
        finally:
            path.unlink(missing_ok=True)  # the decoded pixels are what jobs use
        stored = StoredImage(secrets.token_urlsafe(16), name, digest.hexdigest(), "upload", original, pixels)
        session.images[stored.id] = stored
        while len(session.images) > IMAGES_PER_SESSION:
            session.images.popitem(last=False)
        return stored

    def _decode(self, path: Path, name: str):
        with self._decode_lock:
            return decode_file(path, name, self.max_pixels)
