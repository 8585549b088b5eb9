"""Pictures of a run: side-by-side comparison, cost curves, progress GIF, live notebook preview.

Every file is written atomically (a temporary name, then a rename).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nst.io.images import atomic_path, resize, save_rgb
from nst.optimise.optimizers import HistoryRow

GAP = 8  # white pixels between the panels of the side-by-side picture


def side_by_side(panels, height: int | None = None) -> np.ndarray:
    """uint8 [h, w, 3] panels (content | style(s) | result) scaled to one height, white gaps between."""
    height = height or panels[-1].shape[0]
    scaled = []
    for panel in panels:
        width = max(1, round(panel.shape[1] * height / panel.shape[0]))
        scaled.append(resize(np.asarray(panel, dtype=np.uint8), width, height))
    width = sum(p.shape[1] for p in scaled) + GAP * (len(scaled) - 1)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for panel in scaled:
        canvas[:, x:x + panel.shape[1]] = panel
        x += panel.shape[1] + GAP
    return canvas


def save_side_by_side(path, content, styles, result) -> Path:
    """content | style(s) | result, a preview: written quickly rather than small (nst.io.images.write_rgb)."""
    return save_rgb(path, side_by_side([content, *styles, result]), quick=True)


def _weight_at_steps(weight, steps: np.ndarray, per_scale: list) -> np.ndarray:
    """A weight given for every scale or per scale (coarse to fine) at each step of a history:
    the steps of scale k run from sum(per_scale[:k]) to sum(per_scale[:k + 1])."""
    from nst.optimise.settings import per_scale as weights_per_scale

    weights = np.array(weights_per_scale(weight, len(per_scale)), dtype=np.float64)
    scale = np.searchsorted(np.cumsum(per_scale), steps, side="left")
    return weights[np.minimum(scale, len(per_scale) - 1)]


def save_cost_plot(path, history, weights: dict, sizes=None, title: str = "", per_scale=None) -> Path:
    """Plot the weighted costs against the step (log scale) to ``path`` (PNG).

    ``history`` rows are :class:`nst.optimise.optimizers.HistoryRow` ``(step, elapsed, total, content, style, tv[,
    distribution])``; ``weights`` maps those terms to their weights (a number, or one per scale for
    ``distribution``), so the curves show each
    term's share of the total.  ``per_scale``: iterations at each scale (a list), to mark
    where each scale starts.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = [HistoryRow(*row) for row in history]
    column = {name: np.array([getattr(row, name) for row in rows], dtype=np.float64) for name in HistoryRow._fields}
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    try:
        steps = column["step"]
        axes.plot(steps, column["total"], label="total", color="black", linewidth=1.8)
        for name, colour in (("content", "tab:blue"), ("style", "tab:orange"), ("tv", "tab:green"),
                             ("distribution", "tab:purple")):
            weight = weights.get(name, 0.0)
            at_step = _weight_at_steps(weight, steps, per_scale or [steps.max() if len(steps) else 0])
            if np.any(at_step > 0):
                shown = ",".join(f"{w:g}" for w in weight) if isinstance(weight, (list, tuple)) else f"{weight:g}"
                axes.plot(steps, at_step * column[name], label=f"{shown} x {name}", color=colour, linewidth=1.2)
        if sizes and len(sizes) > 1:
            per_scale = per_scale or [steps.max() / len(sizes) if len(steps) else 0] * len(sizes)
            starts = np.cumsum(per_scale)[:-1]
            for start, (h, w) in zip(starts, sizes[1:]):
                axes.axvline(start, color="gray", linestyle=":", linewidth=0.8)
                axes.text(start, 1, f" {w}x{h}", transform=axes.get_xaxis_transform(),
                          va="top", fontsize=8, color="gray")
        costs = np.concatenate([column[name] for name in ("total", "content", "style", "tv")])
        positive = costs[costs > 0]
        if positive.size:
            axes.set_yscale("log")
            # A term that starts at 0 (the content cost from --init content) would stretch the axis
            # down to 1e-12: show three decades below the smallest total instead.
            totals = column["total"][column["total"] > 0]
            if totals.size:
                axes.set_ylim(bottom=max(positive.min(), totals.min() * 1e-3))
        axes.set_xlabel("iteration")
        axes.set_ylabel("cost")
        axes.set_title(title or "costs")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
        figure.tight_layout()
        with atomic_path(path) as name:
            figure.savefig(name, format="png")
    finally:
        plt.close(figure)
    return Path(path)


def save_gif(path, frames, duration_ms: int = 80) -> Path:
    """Animated GIF of uint8 frames (resized to the last frame's size), looping."""
    from PIL import Image

    h, w = frames[-1].shape[:2]
    pictures = [Image.fromarray(resize(np.asarray(f, dtype=np.uint8), w, h)) for f in frames]
    # Hold the final frame longer.
    durations = [duration_ms] * (len(pictures) - 1) + [max(duration_ms, 1500)]
    with atomic_path(path) as name:
        pictures[0].save(name, format="GIF", save_all=True, append_images=pictures[1:], duration=durations,
                         loop=0, optimize=False)
    return Path(path)


def live_preview(every: int = 10, width: int = 512):
    """A ``stylize`` callback for Jupyter: one image and a cost line that update in place.

    Usage: ``stylize.stylize(content, styles, callback=pictures.live_preview())``.
    """
    import io

    from IPython.display import HTML, Image as IPImage, display
    from PIL import Image

    handles = {}

    def show(progress):
        last = progress.step == progress.total_steps
        if progress.iteration % every and not last and progress.step != 0:
            return
        image = progress.image()
        buffer = io.BytesIO()
        picture = Image.fromarray(image)
        if picture.width > width:
            picture = picture.resize((width, round(picture.height * width / picture.width)))
        picture.save(buffer, format="PNG")
        h, w = progress.sizes[progress.scale]
        c = progress.costs
        text = (f"step {progress.step}/{progress.total_steps} ({w}x{h}), total {c['total']:.4g}, "
                f"content {c['content']:.4g}, style {c['style']:.4g}, tv {c['tv']:.4g}, {progress.elapsed:.0f} s")
        if not handles:
            handles["image"] = display(IPImage(data=buffer.getvalue()), display_id=True)
            handles["text"] = display(HTML(f"<code>{text}</code>"), display_id=True)
        else:
            handles["image"].update(IPImage(data=buffer.getvalue()))
            handles["text"].update(HTML(f"<code>{text}</code>"))

    return show
