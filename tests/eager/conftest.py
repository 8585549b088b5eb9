"""Fixtures for the eager NST tests.

They share the pytest process with the other tests: nothing under nst/ switches
eager execution off, and the tests that need the course's graph-mode
``nst_utils`` import it in a subprocess (tests/classroom/test_course.py).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The spec's mains call plt.show(); without a display it must not block.
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SMALL_SIDE = 64  # long side of the images in the fast instance


@pytest.fixture(autouse=True)
def eager_mode_is_on():
    """The NST class needs eager execution; say which rule broke if a test before switched it off."""
    import tensorflow as tf

    assert tf.executing_eagerly(), ("eager execution is off in this pytest process: a test imported "
                                    "nst_utils (or disabled eager mode) in-process; do that in a subprocess")


@pytest.fixture(scope="session", autouse=True)
def keras_weights(weights_path):
    """The project's VGG-19 as the Keras file the class loads instead of 'imagenet' (python -m nst.weights writes it).

    neural_style looks for it relative to the working directory; the tests give it the absolute path.
    The task files, whose tests run from the repository root, find it in pretrained-model/.
    """
    import neural_style
    from nst.weights.keras_vgg import ensure_keras_vgg19
    from nst.weights.load import WEIGHTS_DIR

    path = ensure_keras_vgg19(weights_path, WEIGHTS_DIR)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(neural_style, "LOCAL_WEIGHTS", (str(path),))
        yield path


@pytest.fixture(scope="session")
def style_array():
    from nst.io import images

    return images.read_rgb(images.fetch_sample("starry_night.jpg"))


@pytest.fixture(scope="session")
def content_array():
    from nst.io import images

    return images.read_rgb(images.fetch_sample("tubingen.jpg"))


@pytest.fixture(scope="session")
def small_class():
    """NST with images scaled to a 64-pixel long side instead of 512 (same code otherwise)."""
    import neural_style

    class SmallNST(neural_style.NST):
        @staticmethod
        def scale_image(image):
            return neural_style._resize_long_side(image, SMALL_SIDE)

    return SmallNST


@pytest.fixture(scope="session")
def small_nst(small_class, style_array, content_array):
    """A fast instance: a 64x64 crop of tubingen.jpg, starry_night.jpg scaled to 40x64."""
    crop = np.ascontiguousarray(content_array[300:364, 400:464])
    return small_class(style_array, crop)


@pytest.fixture(scope="session")
def full_nst(style_array, content_array):
    """The real class on the sample pair (images scaled to a 512-pixel long side)."""
    from neural_style import NST

    return NST(style_array, content_array)
