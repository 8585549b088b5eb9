"""Small helpers for the classroom notebook (notebooks/Art_Generation_with_Neural_Style_Transfer.ipynb).

They keep the notebook's cells close to the assignment: choosing the image
pair, checking a printed value against the assignment's expected output, and
the figures (images side by side, a contact sheet, the cost curves).
Nothing here is graded.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from nst.io.files import PROJECT_ROOT
from nst.weights.load import MEAN_RGB

COURSE_CONTENT = "louvre_small.jpg"
COURSE_STYLE = "monet.jpg"

# The assignment's expected output of its gram_matrix test cell, as the course printed it
# (NumPy 1.13's layout), and the 3x3 matrix of the numbers in it.
EXPECTED_GA_PRINT = ("GA = [[  6.42230511  -4.42912197  -2.09668207]\n"
                     " [ -4.42912197  19.46583748  19.56387138]\n"
                     " [ -2.09668207  19.56387138  20.6864624 ]]")
EXPECTED_GA = np.array([float(x) for x in re.findall(r"-?\d+\.\d+", EXPECTED_GA_PRINT)]).reshape(3, 3)
# The last digits of three entries (6.42..., -2.09... twice) depend on how the
# host's matrix product rounds; they are one or two float32 ulps away (an ulp
# is 4.8e-7 near 6.4 and 2.4e-7 near 2.1).
GA_TOLERANCE = 5e-7


def pick_image_pair(images_dir=None, verbose=True):
    """(content path, style path): the course's Louvre/Monet pair if both files are there, else the sample pair.

    The sample pair (tubingen.jpg, starry_night.jpg) is fetched and
    hash-checked if missing.  Prints which pair is used.
    """
    images_dir = Path(images_dir) if images_dir is not None else PROJECT_ROOT / "images"
    content, style = images_dir / COURSE_CONTENT, images_dir / COURSE_STYLE
    if content.is_file() and style.is_file():
        which = "the course's own pair"
    else:
        from nst.io import images

        content, style = images.fetch_default_pair(images_dir)
        shown = images_dir.relative_to(PROJECT_ROOT) if images_dir.is_relative_to(PROJECT_ROOT) else images_dir
        which = (f"the project's sample pair (the course's {COURSE_CONTENT} and {COURSE_STYLE} "
                 f"are not in {shown}/)")
    if verbose:
        print(f"Using {which}:\n  content: {content.name}\n  style:   {style.name}\n"
              "Both are centre-cropped to 4:3 and resized to 400x300 when loaded.")
    return str(content), str(style)


def check_printed(printed, expected):
    """Compare a test cell's printed line with the assignment's, character for character."""
    if printed == expected:
        print(f"MATCH: printed {printed!r}, exactly the expected output.")
        return True
    print(f"MISMATCH: printed {printed!r}, the assignment expects {expected!r}.")
    return False


def check_printed_matrix(printed, expected=EXPECTED_GA, tolerance=GA_TOLERANCE,
                         expected_print=EXPECTED_GA_PRINT):
    """Compare a printed matrix with the assignment's: its layout, then number by number.

    The layout (every space, sign, bracket and point) must be the course's.
    The course printed float32 values with 8 decimals, finer than float32 can
    resolve, so the last digits of a few entries depend on how the host's
    matrix product rounds; within ``tolerance`` (two float32 ulps for these
    entries) they are the same float32 number.
    """
    if re.sub(r"\d", "9", str(printed)) != re.sub(r"\d", "9", expected_print):
        print(f"MISMATCH: the layout differs from the course's print:\n{printed}\nexpected\n{expected_print}")
        return False
    expected = np.asarray(expected, dtype=np.float64)
    numbers = [float(x) for x in re.findall(r"-?\d+\.\d*(?:e[-+]?\d+)?", str(printed))]
    if len(numbers) != expected.size:
        print(f"MISMATCH: found {len(numbers)} numbers in the printed matrix, expected {expected.size}.")
        return False
    values = np.array(numbers).reshape(expected.shape)
    difference = np.abs(values - expected)
    exact = int(np.sum(difference < 5e-9))
    ulps = difference / np.spacing(np.abs(expected).astype(np.float32)).astype(np.float64)
    if np.all(difference <= tolerance):
        if exact == expected.size:
            print("MATCH, in the course's layout: every entry equals the expected output to all 8 "
                  "printed decimals.")
        else:
            print(f"MATCH to float32 precision, in the course's layout: {exact} of {expected.size} entries "
                  f"equal the expected output to all 8 printed decimals; the other {expected.size - exact} "
                  f"differ by at most {difference.max():.1e} ({ulps.max():.0f} float32 ulps), within the "
                  f"{tolerance:.0e} tolerance: they agree to float32 precision (the course printed more "
                  "decimals than float32 holds, and the last bit of these entries depends on how the "
                  "host's matrix product rounds).")
        return True
    worst = np.unravel_index(np.argmax(difference), difference.shape)
    print(f"MISMATCH: entry {tuple(int(i) for i in worst)} is {values[worst]:.8f}, "
          f"the assignment expects {expected[worst]:.8f}.")
    return False


def displayable(image):
    """An image as uint8 (h, w, 3) for imshow.

    A (1, h, w, 3) batch is taken to be mean-subtracted (as made by
    ``reshape_and_normalize_image`` and returned by ``model_nn``): the VGG
    mean pixel is added back.  An (h, w, 3) image is taken as 0..255.
    Either is clipped to 0..255.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 4:
        image = image[0] + MEAN_RGB.astype(np.float64)
    return np.clip(image, 0, 255).astype(np.uint8)


def show_side_by_side(images, titles, size=4.0):
    """One row of images with titles (e.g. content | style | generated)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(images), figsize=(size * len(images), size * 0.8), dpi=80)
    for axis, image, title in zip(np.atleast_1d(axes), images, titles):
        axis.imshow(displayable(image))
        axis.set_title(title)
        axis.axis("off")
    figure.tight_layout()
    plt.show()
    return figure


def contact_sheet(saved, columns=5, size=2.6):
    """A grid of the images ``model_nn`` saved: ``saved`` is a list of (label, path)."""
    import imageio.v3 as iio
    import matplotlib.pyplot as plt

    if not saved:
        print("No saved images to show.")
        return None
    columns = min(columns, len(saved))
    rows = -(-len(saved) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(size * columns, size * 0.8 * rows), dpi=80,
                                squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, (label, path) in zip(axes.ravel(), saved):
        axis.imshow(iio.imread(path))
        axis.set_title(str(label), fontsize=10)
    figure.tight_layout()
    plt.show()
    return figure


def plot_costs(history):
    """Total, content and style cost against iteration, log scale; ``history`` holds (i, total, content, style)."""
    import matplotlib.pyplot as plt

    if not history:
        print("No costs recorded.")
        return None
    history = np.asarray(history, dtype=np.float64)
    figure, axis = plt.subplots(figsize=(7, 4), dpi=80)
    for column, label in ((1, "total cost J"), (2, "content cost J_content"), (3, "style cost J_style")):
        axis.plot(history[:, 0], history[:, column], marker="o", label=label)
    axis.set_yscale("log")
    axis.set_xlabel("iteration")
    axis.set_ylabel("cost (log scale)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    plt.show()
    return figure
