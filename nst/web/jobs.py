"""The web page's jobs: what a visitor asked for, checked, run, and what it produced.

One job: turn a request (method, images, strength, size, ...) into a result
PNG and its JSON record, with the engines :class:`nst.fast.stylizer.FastStylizer` and
:func:`nst.optimise.stylize.stylize`.  The queue that decides *when* a job runs is
:mod:`nst.web.queue`; this module knows nothing about HTTP.

Strength (0..1, one slider for both methods): the fast method's ``alpha``;
for the optimisation, the style weight as a fraction of the default
(:data:`nst.optimise.stylize.DEFAULT_STYLE_WEIGHT` at 1).
"""

from __future__ import annotations

import io
import secrets
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from nst.fast.stylizer import DEFAULT_ALPHA
from nst.host.precision import DEFAULT_PRECISION, PRECISIONS, choose as choose_precision
from nst.optimise.stylize import DEFAULT_SIZE, DEFAULT_STYLE_WEIGHT, MIN_SIDE

METHODS = ("fast", "optimise")
# The size control's top: print size (above 2048 px the optimisation runs in tiles, nst.optimise.tiled, and
# the fast mode too, nst.fast.tiles); nst.web.sessions keeps uploads at this long side.
MAX_SIZE = 4096
MAX_STYLES = 4
MAX_ITERATIONS = 2000  # per scale, for the optional iterations field
PREVIEW_EVERY = 5  # optimisation steps between two live previews (and one at each scale's start)
FINISHED = ("done", "stopped", "failed", "cancelled")


CONTENT_FEATURES_KEPT = 8  # encoded photos kept for re-renders (6 MB each at 512x384)


class JobError(ValueError):
    """A request the page sent that cannot run (one line, says what to do)."""


@dataclass
class Request:
    """A checked request: image ids, and numbers within range."""

    method: str
    content: str  # image id
    styles: list  # [(image id, weight), ...]
    strength: float
    size: int
    preserve_colors: bool
    iterations: Optional[int] = None  # optimisation, per scale; None: the engine's schedule
    slot: Optional[str] = None  # fast: a newer request with the same slot replaces a queued one
    precision: str = DEFAULT_PRECISION  # as asked; nst.host.precision.choose gives what runs on this CPU


def _number(payload, key, default, low, high, kind=float):
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise JobError(f"{key} must be a number between {low} and {high}")
    if kind is int and value != int(value):
        raise JobError(f"{key} must be a whole number")
    if not low <= value <= high:
        raise JobError(f"{key} must be between {low} and {high}, not {value:g}")
    return kind(value)


def parse_request(payload: dict, method: str) -> Request:
    """Check a JSON request from the page (raises JobError)."""
    if method not in METHODS:
        raise JobError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if not isinstance(payload, dict):
        raise JobError("the request must be a JSON object")
    content = payload.get("content")
    if not isinstance(content, str) or not content:
        raise JobError("choose a content image first")
    styles = payload.get("styles")
    if not isinstance(styles, list) or not styles:
        raise JobError("choose at least one style image")
    if len(styles) > MAX_STYLES:
        raise JobError(f"use at most {MAX_STYLES} style images")
    pairs = []
    for style in styles:
        if not isinstance(style, dict) or not isinstance(style.get("id"), str):
            raise JobError("each style must be an object with an image id and a weight")
        pairs.append((style["id"], _number(style, "weight", 1.0, 0, 1000)))
    if sum(weight for _, weight in pairs) <= 0:
        raise JobError("the style weights are all zero; give one style a weight above 0")
    iterations = payload.get("iterations")
    if iterations is not None:
        iterations = _number(payload, "iterations", None, 1, MAX_ITERATIONS, int)
    slot = payload.get("slot")
    precision = payload.get("precision", DEFAULT_PRECISION)
    if precision not in PRECISIONS:
        raise JobError(f"precision must be one of {', '.join(PRECISIONS)}")
    return Request(method=method, content=content, styles=pairs,
                   strength=_number(payload, "strength", DEFAULT_ALPHA, 0, 1),
                   size=_number(payload, "size", DEFAULT_SIZE, MIN_SIDE, MAX_SIZE, int),
                   preserve_colors=bool(payload.get("preserve_colors", False)),
                   iterations=iterations, slot=slot if isinstance(slot, str) else None, precision=precision)


@dataclass
class Job:
    """One request of one session, from queued to finished; ``version`` grows with every change."""

    session: str  # the owner's token
    request: Request
    images: dict  # "content": StoredImage, "styles": [StoredImage, ...]
    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    state: str = "queued"  # queued | running | done | stopped | failed | cancelled
    message: str = ""
    created: float = field(default_factory=time.time)
    progress: dict = field(default_factory=dict)
    preview_png: Optional[bytes] = None
    previews: int = 0
    result_png: Optional[bytes] = None
    result_size: Optional[tuple] = None  # (width, height)
    record: Optional[dict] = None
    stop_requested: bool = False
    version: int = 0

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def describe(self) -> dict:
        """What the page sees (no pixels, no token)."""
        return {"id": self.id, "method": self.request.method, "state": self.state, "message": self.message,
                "progress": self.progress, "previews": self.previews, "version": self.version,
                "size": list(self.result_size) if self.result_size else None,
                "has_result": self.result_png is not None}


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _sized(pixels: np.ndarray, long_side: int) -> np.ndarray:
    from nst.io.images import resize, size_for_long_side

    height, width = size_for_long_side(*pixels.shape[:2], long_side)
    return resize(pixels, width, height)


def package_versions() -> dict:
    from nst.io.files import package_versions as versions

    return versions()


def _inputs_record(job: Job) -> dict:
    content, styles = job.images["content"], job.images["styles"]
    return {"content": content.describe(),
            "styles": [dict(style.describe(), weight=weight) for style, (_, weight) in zip(styles, job.request.styles)]}


def caching_stylizer(*args, **kwargs):
    """A :class:`nst.fast.stylizer.FastStylizer` that also keeps the last few photos' encodings, so moving the
    strength slider (or a style weight) re-runs only AdaIN and the decoder, about half the work."""
    import hashlib
    from collections import OrderedDict

    from nst.fast.stylizer import FastStylizer

    class CachingStylizer(FastStylizer):
        def __init__(self):
            super().__init__(*args, **kwargs)
            self._encoded = OrderedDict()
            self._siblings = {self.precision: self}

        def for_precision(self, precision: str):
            """The same networks in another number format, built on first use (the weights are shared)."""
            if precision not in self._siblings:
                sibling = caching_stylizer(*args, **dict(kwargs, precision=precision))
                sibling._siblings = self._siblings
                self._siblings[precision] = sibling
            return self._siblings[precision]

        def encode(self, image):
            image = np.ascontiguousarray(image)
            key = hashlib.sha256(image.tobytes() + repr((image.shape, image.dtype.str)).encode()).hexdigest()
            if key not in self._encoded:
                self._encoded[key] = super().encode(image)
                while len(self._encoded) > CONTENT_FEATURES_KEPT:
                    self._encoded.popitem(last=False)
            self._encoded.move_to_end(key)
            return self._encoded[key]

    return CachingStylizer()


def run_fast(job: Job, stylizer) -> None:
    """Stylise with the feed-forward network; fills the job's result and record (raises JobError)."""
    from nst.fast.stylizer import FastError, check_fits

    r = job.request
    started = time.perf_counter()
    precision, job.message = choose_precision(r.precision)
    if stylizer.precision != precision:
        stylizer = stylizer.for_precision(precision)
    content = _sized(job.images["content"].pixels, r.size)
    try:
        check_fits(*content.shape[:2], what="content image")
        # Styles at the content's long side, as the CLI's default --style-scale 1.
        styles = [_sized(style.pixels, r.size) for style in job.images["styles"]]
        result = stylizer.stylize(content, styles, alpha=r.strength, style_weights=[w for _, w in r.styles],
                                  preserve_colors=r.preserve_colors)
    except FastError as error:
        raise JobError(str(error)) from None
    seconds = time.perf_counter() - started
    height, width = result.shape[:2]
    job.result_png, job.result_size = png_bytes(result), (width, height)
    job.record = {
        "method": "fast", "job": job.id, **_inputs_record(job),
        "settings": {"alpha": r.strength, "style_blend_weights": [w for _, w in r.styles],
                     "preserve_colors": r.preserve_colors, "size": [width, height],
                     "style_sizes": [[s.shape[1], s.shape[0]] for s in styles], "precision": precision},
        "status": "done", "elapsed_s": round(seconds, 3), "versions": package_versions(),
    }
    job.progress = {"elapsed_s": round(seconds, 3)}


def optimise_settings(request: Request, n_styles: int, content_shape) -> tuple:
    """(the engine's resolved Settings for a page request, everything else at the engine's defaults; the
    scales [(h, w), ...] of a content of ``content_shape``), the default iterations fitted to them."""
    from nst.optimise.stylize import Settings, resolve

    settings = Settings(size=request.size, style_weight=request.strength * DEFAULT_STYLE_WEIGHT,
                        preserve_colors=request.preserve_colors, precision=choose_precision(request.precision)[0],
                        style_blend_weights=[w for _, w in request.styles])
    if request.iterations is not None:
        settings.iterations = request.iterations
    return resolve(settings, n_styles, *content_shape[:2])


def check_optimise(job: Job) -> None:
    """Refuse before queueing what cannot run: bad settings, a size this machine cannot hold."""
    from nst.host.budget import MemoryBudgetError, check_fits

    try:
        _, sizes = optimise_settings(job.request, len(job.request.styles), job.images["content"].pixels.shape)
        check_fits(*sizes[-1])
    except (ValueError, MemoryBudgetError) as error:
        raise JobError(str(error)) from None


class _Watcher:
    """The optimisation's callback: stop on request, a preview every few steps, progress with ETA.

    ``between_steps()`` runs other work (the queue's fast jobs) and its time is left out of the ETA.
    """

    def __init__(self, job: Job, settings, between_steps, changed):
        from nst.optimise.stylize import scale_iterations

        self.job, self.settings, self.between_steps, self.changed = job, settings, between_steps, changed
        self.paused = 0.0  # seconds spent on other jobs inside the callback
        self.scale_start = None  # (scale, active seconds) at this scale's first event
        self.seconds_per_pixel_step = None  # measured at the current (or last) scale
        self.last_preview_step = None
        self.scale_iterations = scale_iterations

    def _eta(self, progress, active: float) -> Optional[float]:
        """Seconds left: the rate of the current scale (graph building left out) times the work left.

        Work is counted in pixel-steps: a step at 128 px costs 1/16 of one at 512 px."""
        pixels = [h * w for h, w in progress.sizes]
        if self.scale_start is None or self.scale_start[0] != progress.scale:
            self.scale_start = (progress.scale, active)
        elif progress.iteration > 0:
            self.seconds_per_pixel_step = (active - self.scale_start[1]) / (progress.iteration * pixels[progress.scale])
        if self.seconds_per_pixel_step is None:
            return None
        per_scale = self.scale_iterations(self.settings.iterations, len(progress.sizes))
        left = (per_scale[progress.scale] - progress.iteration) * pixels[progress.scale]
        left += sum(n * p for n, p in zip(per_scale[progress.scale + 1:], pixels[progress.scale + 1:]))
        return self.seconds_per_pixel_step * left

    def __call__(self, progress) -> None:
        from nst.optimise.stylize import Stop

        if self.job.stop_requested:
            raise Stop("stopped from the page; kept the best image so far")
        active = max(0.0, progress.elapsed - self.paused)
        eta = self._eta(progress, active)
        height, width = progress.sizes[progress.scale]
        self.job.progress = {
            "step": progress.step, "total_steps": progress.total_steps, "scale": progress.scale + 1,
            "scales": len(progress.sizes), "iteration": progress.iteration, "width": width, "height": height,
            "costs": {k: float(v) for k, v in progress.costs.items()}, "elapsed_s": round(progress.elapsed, 2),
            "eta_s": None if eta is None else round(eta, 1)}
        if progress.iteration == 0 or progress.step - (self.last_preview_step or 0) >= PREVIEW_EVERY:
            self.job.preview_png = png_bytes(progress.image())
            self.job.previews += 1
            self.last_preview_step = progress.step
        self.changed(self.job)
        paused_from = time.perf_counter()
        self.between_steps()
        self.paused += time.perf_counter() - paused_from


def run_optimise(job: Job, between_steps, changed) -> None:
    """Optimise with live previews; Stop from the page keeps the best image so far (raises JobError)."""
    from nst.optimise.stylize import stylize

    r = job.request
    try:
        settings, _ = optimise_settings(r, len(r.styles), job.images["content"].pixels.shape)
    except ValueError as error:
        raise JobError(str(error)) from None
    watcher = _Watcher(job, settings, between_steps, changed)
    result = stylize(job.images["content"].pixels, [s.pixels for s in job.images["styles"]], settings,
                     callback=watcher)
    if result.image is None:
        raise JobError(result.message or "no finite image was found; lower the strength")
    height, width = result.image.shape[:2]
    job.result_png, job.result_size = png_bytes(result.image), (width, height)
    job.message = " ".join(filter(None, (choose_precision(r.precision)[1], result.message)))
    job.record = {
        "method": "optimise", "job": job.id, **_inputs_record(job),
        "settings": result.settings.to_json(), "status": result.status, "message": result.message,
        "sizes": [[w, h] for h, w in result.sizes], "steps": result.steps,
        "best_iteration": result.best_iteration, "final_costs": result.costs,
        "elapsed_s": round(result.elapsed, 3), "versions": package_versions(),
        "history": [row.record() for row in result.history],
    }
    job.state = "stopped" if result.status == "stopped" else "done"
