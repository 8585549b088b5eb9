"""The classroom notebook's diagrams, drawn with matplotlib (the project's own drawings).

notebooks/build_notebooks.py embeds them in markdown cells as PNG
attachments.  Every figure is drawn from code alone (no image files), and
written without a timestamp or software tag, so the same matplotlib draws
the same bytes and the built notebook does not change between builds.
"""

from __future__ import annotations

import io

import numpy as np

DPI = 80
CHANNEL_COLOURS = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a"]  # one per channel (n_C = 4)


def _png(figure) -> bytes:
    """The figure as PNG bytes, without metadata that would change between builds."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _figure(width, height):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(width, height))
    axis.set_axis_off()
    return figure, axis


# --------------------------------------------------------------------------
# Content + style = generated, on synthetic pictures

def _scene(h=120, w=160) -> np.ndarray:
    """A toy photograph (h, w, 3) in [0, 1]: sky, hill, a house with a roof, a door and a window."""
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    image = np.empty((h, w, 3))
    image[:] = np.stack([0.55 + 0.3 * y, 0.75 + 0.15 * y, 0.95 + 0 * y], axis=-1)  # sky
    hill = y > 0.72 - 0.08 * np.sin(3 * x)
    image[hill] = (0.35, 0.6, 0.3)
    wall = (x > 0.3) & (x < 0.7) & (y > 0.45) & (y < 0.8)
    image[wall] = (0.85, 0.75, 0.55)
    roof = (y > 0.22) & (y <= 0.45) & (np.abs(x - 0.5) < 0.25 * (y - 0.22) / 0.23)
    image[roof] = (0.7, 0.2, 0.15)
    image[(x > 0.45) & (x < 0.55) & (y > 0.62) & (y < 0.8)] = (0.35, 0.2, 0.1)  # door
    image[(x > 0.34) & (x < 0.42) & (y > 0.52) & (y < 0.6)] = (0.3, 0.5, 0.8)  # window
    image[(x - 0.85) ** 2 + ((y - 0.15) * h / w) ** 2 < 0.004] = (1.0, 0.85, 0.2)  # sun
    return image


def _swirls(h=120, w=160) -> np.ndarray:
    """A toy painting's texture (h, w) in [0, 1]: curling brush-stroke bands."""
    y, x = np.mgrid[0:h, 0:w] / float(w)
    angle = np.arctan2(y - 0.35, x - 0.45)
    radius = np.hypot(x - 0.45, y - 0.35)
    return 0.5 + 0.5 * np.sin(40 * radius + 3 * angle + 4 * np.sin(9 * x))


def _palette(values) -> np.ndarray:
    """Night-blue to straw-yellow, as a painting's colours: (...,) in [0, 1] -> (..., 3)."""
    dark, light = np.array([0.1, 0.15, 0.45]), np.array([0.95, 0.85, 0.35])
    values = np.clip(values, 0, 1)[..., None]
    return dark + (light - dark) * values


def transfer_example() -> bytes:
    """Content C + style S -> generated G, on a toy scene and a toy swirl painting."""
    content = _scene()
    texture = _swirls()
    style = _palette(texture)
    luminance = content @ np.array([0.3, 0.55, 0.15])  # (h, w)
    generated = _palette(0.65 * luminance + 0.45 * (texture - 0.5))
    figure, axis = _figure(9, 2.6)
    axis.remove()
    panels = [(content, "content C (a photo)"), (style, "style S (a painting)"),
              (generated, "generated G")]
    for index, (image, title) in enumerate(panels):
        panel = figure.add_axes([0.02 + index * 0.34, 0.05, 0.28, 0.78])
        panel.imshow(image)
        panel.set_title(title, fontsize=12)
        panel.set_xticks([])
        panel.set_yticks([])
    for x, sign in ((0.315, "+"), (0.655, "=")):
        figure.text(x, 0.45, sign, fontsize=28, ha="center", va="center")
    return _png(figure)


# --------------------------------------------------------------------------
# Unrolling an activation volume, and the Gram matrix

def _grid(axis, left, bottom, rows, columns, colours, cell=0.5, labels=None, alpha=0.85):
    """A rows x columns grid of squares; colours[r] fills row r; labels[r][c] is written inside."""
    from matplotlib.patches import Rectangle

    for r in range(rows):
        for c in range(columns):
            x, y = left + c * cell, bottom + (rows - 1 - r) * cell
            axis.add_patch(Rectangle((x, y), cell, cell, facecolor=colours[r], edgecolor="white",
                                     alpha=alpha, linewidth=1.5))
            if labels is not None:
                axis.text(x + cell / 2, y + cell / 2, labels[r][c], ha="center", va="center",
                          fontsize=8, color="white")


def _volume(axis, left, bottom, n_h=3, n_w=4, n_c=4, cell=0.5):
    """An n_H x n_W x n_C activation volume, drawn as n_C slices one behind the other."""
    shift = 0.35
    for channel in reversed(range(n_c)):
        offset = channel * shift
        labels = [[str(r * n_w + c + 1) for c in range(n_w)] for r in range(n_h)]
        _grid(axis, left + offset, bottom + offset, n_h, n_w, [CHANNEL_COLOURS[channel]] * n_h, cell,
              labels if channel == 0 else None, alpha=0.95)
    axis.text(left + n_w * cell / 2, bottom - 0.35, "n_W = {}".format(n_w), ha="center", fontsize=10)
    axis.text(left - 0.25, bottom + n_h * cell / 2, "n_H = {}".format(n_h), ha="right", va="center",
              fontsize=10)
    axis.text(left + n_w * cell + n_c * shift + 0.1, bottom + n_h * cell + n_c * shift - 0.1,
              "n_C = {}\nchannels".format(n_c), fontsize=10, va="top")


def unrolling_diagram() -> bytes:
    """An (n_H, n_W, n_C) = (3, 4, 4) volume unrolled to an (n_C, n_H * n_W) = (4, 12) matrix."""
    n_h, n_w, n_c = 3, 4, 4
    left, cell = 7.9, 0.4  # the unrolled matrix
    figure, axis = _figure(10, 3.4)
    _volume(axis, 0.9, 0.8, n_h, n_w, n_c)
    axis.text(0.9 + n_w * 0.5 / 2 + 0.5, 3.75, "activations: (n_H, n_W, n_C)", ha="center", fontsize=11)
    axis.annotate("", xy=(6.5, 1.8), xytext=(4.9, 1.8),
                  arrowprops=dict(arrowstyle="-|>", lw=2, color="black"))
    axis.text(5.7, 2.05, "reshape to\n(n_H·n_W, n_C),\nthen transpose", ha="center", fontsize=10)
    labels = [[str(p + 1) for p in range(n_h * n_w)] for _ in range(n_c)]
    _grid(axis, left, 1.0, n_c, n_h * n_w, CHANNEL_COLOURS, cell, labels)
    for channel in range(n_c):
        axis.text(left - 0.1, 1.0 + (n_c - 1 - channel) * cell + cell / 2, "channel {}".format(channel + 1),
                  ha="right", va="center", fontsize=9)
    middle = left + n_h * n_w * cell / 2
    axis.text(middle, 0.6, "one column per position (n_H·n_W = 12)", ha="center", fontsize=10)
    axis.text(middle, 2.85, "unrolled: (n_C, n_H·n_W)", ha="center", fontsize=11)
    axis.set_xlim(0, 12.9)
    axis.set_ylim(0.3, 4.0)
    axis.set_aspect("equal")
    return _png(figure)


def gram_diagram() -> bytes:
    """G = A · Aᵀ for an unrolled A of shape (n_C, n_H·n_W) = (4, 6): G_ij is row i · row j."""
    from matplotlib.patches import Rectangle

    n_c, positions, cell = 4, 6, 0.45
    i, j = 1, 3  # the highlighted entry G_ij (0-based rows of A)
    figure, axis = _figure(10, 3.2)
    _grid(axis, 0.5, 1.0, n_c, positions, CHANNEL_COLOURS, cell, alpha=0.35)
    _grid(axis, 0.5, 1.0 + (n_c - 1 - i) * cell, 1, positions, [CHANNEL_COLOURS[i]], cell)
    axis.text(0.5 + positions * cell / 2, 0.6, "A: (n_C, n_H·n_W)", ha="center", fontsize=11)
    axis.text(3.5, 1.9, "×", fontsize=24, ha="center", va="center")
    # A transposed: one column per channel.
    for channel in range(n_c):
        alpha = 0.9 if channel == j else 0.35
        for p in range(positions):
            axis.add_patch(Rectangle((4.1 + channel * cell, 0.55 + (positions - 1 - p) * cell), cell, cell,
                                     facecolor=CHANNEL_COLOURS[channel], edgecolor="white", alpha=alpha))
    axis.text(4.1 + n_c * cell / 2, 0.2, "Aᵀ: (n_H·n_W, n_C)", ha="center", fontsize=11)
    axis.text(6.4, 1.9, "=", fontsize=24, ha="center", va="center")
    for r in range(n_c):
        for c in range(n_c):
            focus = (r, c) == (i, j)
            axis.add_patch(Rectangle((7.0 + c * cell, 1.0 + (n_c - 1 - r) * cell), cell, cell,
                                     facecolor="#444444" if focus else "#bbbbbb", edgecolor="white"))
    axis.text(7.0 + n_c * cell / 2, 0.6, "G: (n_C, n_C)", ha="center", fontsize=11)
    axis.text(9.2, 2.2, "G_{0}{1} = row {0} of A · row {1} of A\n"
              "large when channels {0} and {1}\nfire at the same positions".format(i + 1, j + 1),
              fontsize=10, va="center")
    axis.set_xlim(0, 13.5)
    axis.set_ylim(0, 3.4)
    axis.set_aspect("equal")
    return _png(figure)


DIAGRAMS = {
    "content_style_generated.png": transfer_example,
    "unrolling.png": unrolling_diagram,
    "gram_matrix.png": gram_diagram,
}


def render_all() -> dict[str, bytes]:
    """Every diagram's PNG bytes, by attachment name."""
    return {name: draw() for name, draw in DIAGRAMS.items()}
