"""The web page's parts without a browser: request checks, uploads and sessions, the job queue's order."""

import asyncio
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")

from nst.web import jobs as web_jobs, queue as web_queue  # noqa: E402
from nst.web.jobs import Job, JobError, parse_request  # noqa: E402
from nst.web.sessions import SessionStore, UploadError  # noqa: E402


def good(**changes):
    payload = {"content": "a", "styles": [{"id": "b", "weight": 1}], "strength": 0.5, "size": 256}
    payload.update(changes)
    return payload


@pytest.mark.parametrize("payload, expected", [
    (good(content=None), "choose a content image"),
    (good(styles=[]), "at least one style"),
    (good(styles=[{"id": "b", "weight": 0}]), "all zero"),
    (good(strength=1.5), "strength must be between 0 and 1"),
    (good(strength=True), "strength must be a number"),
    (good(size=8), "size must be between 16"),
    (good(size=100.5), "whole number"),
    (good(size=10 ** 6), "size must be between"),
    (good(iterations=0), "iterations must be between 1"),
    (good(styles=[{"id": str(i)} for i in range(9)]), "at most"),
    ([1, 2], "JSON object"),
    (good(precision="fp16"), "precision must be one of auto, fp32, bf16"),
])
def test_bad_requests_are_refused_in_one_line(payload, expected):
    with pytest.raises(JobError) as refused:
        parse_request(payload, "fast")
    assert expected in str(refused.value) and "\n" not in str(refused.value)


def test_a_good_request_keeps_its_numbers():
    request = parse_request(good(iterations=30, slot="page"), "optimise")
    assert (request.strength, request.size, request.iterations, request.slot) == (0.5, 256, 30, "page")
    assert request.styles == [("b", 1.0)]
    assert request.precision == "auto" and parse_request(good(precision="bf16"), "fast").precision == "bf16"


# ------------------------------------------------------------------ uploads and sessions

async def _chunks(data, size=1000):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def _png(width, height) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_are_checked_kept_apart_and_deleted(tmp_path):
    store = SessionStore(upload_limit=50_000, images_dir=tmp_path)  # no samples there
    try:
        alice, bob = store.new_session(), store.new_session()
        assert alice.token != bob.token and len(alice.token) >= 40
        image = asyncio.run(store.add_upload(alice, "../../photo.png", _chunks(_png(64, 48))))
        assert (image.name, image.original_size, image.pixels.shape) == ("photo.png", (64, 48), (48, 64, 3))
        assert store.image(alice, image.id) is image
        with pytest.raises(UploadError):
            store.image(bob, image.id)  # another session's image does not exist for bob
        with pytest.raises(UploadError, match="over the .* upload limit") as too_big:
            asyncio.run(store.add_upload(alice, "big.png", _chunks(b"x" * 60_000)))
        assert too_big.value.status == 413
        with pytest.raises(UploadError, match="notes.png is not an image"):
            asyncio.run(store.add_upload(alice, "notes.png", _chunks(b"hello, not a picture")))
        assert list(alice.folder.iterdir()) == []  # the decoded pixels are kept, no file
        root = store.root
    finally:
        store.close()
    assert not root.exists()


def test_idle_sessions_are_forgotten_with_their_jobs(tmp_path):
    store = SessionStore(images_dir=tmp_path, idle_seconds=60)
    forgotten = []
    store.on_forget.append(forgotten.append)
    try:
        session = store.new_session()
        store.expire(now=time.monotonic() + 120)
        assert store.get(session.token) is None and forgotten == [session.token]
        assert not session.folder.exists()
    finally:
        store.close()


def test_the_least_recently_used_session_goes_beyond_the_cap(tmp_path, monkeypatch):
    from nst.web import sessions as web_sessions

    monkeypatch.setattr(web_sessions, "SESSIONS", 2)
    store = SessionStore(images_dir=tmp_path)
    try:
        first, second = store.new_session(), store.new_session()
        made = time.monotonic()
        while time.monotonic() == made:  # pacing: until the clock ticks, so the use below is newer
            pass
        assert store.get(first.token) is first  # used: now the second is the oldest
        third = store.new_session()
        assert store.get(second.token) is None and not second.folder.exists()
        assert store.get(first.token) is first and store.get(third.token) is third
    finally:
        store.close()


# ------------------------------------------------------------------ the queue

def _job(session, method, slot=None):
    request = web_jobs.Request(method, "c", [("s", 1.0)], 1.0, 64, False, slot=slot)
    return Job(session, request, {"content": None, "styles": []})


def test_fast_jobs_run_between_optimisation_steps_and_stop_ends_it(monkeypatch):
    """While an optimisation runs, a fast job is served at the next step, not after the whole run."""
    events = []
    started = threading.Event()

    def fake_optimise(job, between_steps, changed):  # a stand-in engine: steps until stopped
        for step in range(2000):
            started.set()
            events.append(("step", step))
            if job.stop_requested:
                job.state = "stopped"
                return
            between_steps()
            time.sleep(0.005)  # pacing: the stand-in engine's step time
        raise AssertionError("never stopped")

    def fake_fast(job, stylizer):
        events.append(("fast", job.id))

    monkeypatch.setattr(web_queue, "run_optimise", fake_optimise)
    monkeypatch.setattr(web_queue, "run_fast", fake_fast)
    queue = web_queue.JobQueue(stylizer=None)
    try:
        long_run, waiting = _job("alice", "optimise"), _job("alice", "optimise")
        queue.submit_optimise(long_run)
        queue.submit_optimise(waiting)
        assert started.wait(10)
        with pytest.raises(web_queue.QueueFull):  # two per session
            queue.submit_optimise(_job("alice", "optimise"))
        fast = _job("bob", "fast")
        assert queue.submit_fast(fast).result(timeout=10) is fast and fast.state == "done"
        assert long_run.state == "running"  # served between two steps of the optimisation
        assert queue.job("bob", long_run.id) is None and queue.job("alice", long_run.id) is long_run
        queue.stop(waiting)  # queued: cancelled, never started
        assert waiting.state == "cancelled"
        queue.stop(long_run)
        deadline = time.monotonic() + 10
        while not long_run.finished and time.monotonic() < deadline:
            time.sleep(0.01)  # pacing a poll of an observable state (the job finished)
        assert long_run.state == "stopped"
        fast_at = events.index(("fast", fast.id))
        assert events[fast_at - 1][0] == "step" and events[fast_at + 1][0] == "step"
    finally:
        queue.close()


def test_a_newer_request_of_the_same_slot_replaces_a_queued_one(monkeypatch):
    gate, running = threading.Event(), threading.Event()

    def held_at_the_gate(job, stylizer):
        running.set()
        gate.wait(10)

    monkeypatch.setattr(web_queue, "run_fast", held_at_the_gate)
    queue = web_queue.JobQueue(stylizer=None)
    try:
        first = queue.submit_fast(_job("alice", "fast", slot="page"))  # runs, held at the gate
        assert running.wait(10)  # the first is running, no longer queued
        second = _job("alice", "fast", slot="page")
        second_done = queue.submit_fast(second)
        other = _job("bob", "fast", slot="page")  # another session's slot is its own
        other_done = queue.submit_fast(other)
        third_done = queue.submit_fast(_job("alice", "fast", slot="page"))
        assert second_done.result(timeout=5) is second and second.state == "cancelled"
        gate.set()
        for future in (first, other_done, third_done):
            assert future.result(timeout=10).state == "done"
    finally:
        gate.set()
        queue.close()


# ------------------------------------------------------------------ the command

def test_serve_refuses_a_bad_or_busy_port_in_one_line():
    import socket
    import subprocess
    from pathlib import Path

    nst = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "nst"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        for port, expected in ((70000, "--port must be between 0 and 65535"),
                               (busy.getsockname()[1], "cannot listen on 127.0.0.1")):
            done = subprocess.run([str(nst), "serve", "--port", str(port)], capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 2 and done.stdout == ""
            assert done.stderr.startswith("error: ") and expected in done.stderr
            assert done.stderr.count("\n") == 1


@pytest.mark.host
def test_the_caching_stylizer_gives_the_same_pictures_and_encodes_a_photo_once(sample_pair, monkeypatch):
    from nst.io import images
    from nst.weights import fetch as weights_fetch
    from nst.fast.stylizer import FastStylizer

    content = images.resize(images.read_rgb(sample_pair[0]), 96, 72)
    style = images.resize(images.read_rgb(sample_pair[1]), 96, 60)
    vgg, decoder = weights_fetch.ensure_fast_weights()
    # Both on the plain graph: the XLA-compiled one (from a shape's third call) agrees only to float rounding.
    plain = FastStylizer(vgg, decoder, compiled=False)
    cached = web_jobs.caching_stylizer(vgg, decoder, compiled=False)
    encoded = []
    original = FastStylizer.encode
    monkeypatch.setattr(FastStylizer, "encode",
                        lambda self, image: encoded.append(image.shape) or original(self, image))
    for alpha in (1.0, 0.5, 0.2):
        np.testing.assert_array_equal(cached.stylize(content, [style], alpha=alpha),
                                      plain.stylize(content, [style], alpha=alpha))
    # plain: the photo 3 times and the style once; cached: each once (the style's statistics are cached anyway)
    assert encoded.count((72, 96, 3)) == 3 + 1 and len(encoded) == 4 + 2


def _stored(path, long_side):
    from nst.io import images
    from nst.web.sessions import StoredImage

    pixels = images.read_rgb(path)
    height, width = images.size_for_long_side(*pixels.shape[:2], long_side)
    return StoredImage(id=str(path), name=str(path), sha256="0", source="sample",
                       original_size=(width, height), pixels=images.resize(pixels, width, height))


@pytest.mark.host
@pytest.mark.parametrize("flags, runs", [("fpu sse2 avx2 fma", "fp32"), ("fpu avx2 avx512f amx_bf16", "bf16")])
def test_the_page_asks_for_bf16_and_gets_what_the_cpu_has(sample_pair, monkeypatch, flags, runs):
    """Issue 15: the page's number format; bf16 without units falls back to fp32 with a note, and the
    JSON record says what ran. With units, a second set of networks in bf16 is built once and reused."""
    from nst.host import precision
    from nst.weights import fetch as weights_fetch

    monkeypatch.setattr(precision, "cpu_flags", lambda cpuinfo="/proc/cpuinfo": flags)
    stylizer = web_jobs.caching_stylizer(*weights_fetch.ensure_fast_weights(), precision="fp32")
    pictures = {"content": _stored(sample_pair[0], 64), "styles": [_stored(sample_pair[1], 64)]}
    jobs = []
    for _ in range(2):
        request = parse_request(good(size=64, precision="bf16"), "fast")
        jobs.append(Job("alice", request, pictures))
        web_jobs.run_fast(jobs[-1], stylizer)
    for job in jobs:
        assert job.record["settings"]["precision"] == runs and job.result_png
        assert ("no bfloat16 units" in job.message) == (runs == "fp32")
    assert sorted(stylizer._siblings) == sorted({"fp32", runs})
    assert stylizer.for_precision(runs) is stylizer.for_precision(runs)
