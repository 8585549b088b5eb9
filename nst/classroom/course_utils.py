"""The body of the course's ``nst_utils`` module: settings, the VGG-19 graph, image helpers.

The same API as the deeplearning.ai course's ``nst_utils.py`` (``CONFIG``,
``load_vgg_model``, ``generate_noise_image``, ``reshape_and_normalize_image``,
``save_image``), written for ``tensorflow.compat.v1`` on current TensorFlow,
with ``imageio``/PIL in place of the removed ``scipy.misc`` and an image size
that is configurable instead of fixed at 400x300.  The top-level ``nst_utils``
re-exports it after switching eager execution off; this module does not, so
the classroom code that uses it can run in an eager process inside a graph of
its own.
"""

from pathlib import Path

import numpy as np
import tensorflow.compat.v1 as tf

from nst.io import images as _images
from nst.weights import load as _weights
from nst.io.files import PROJECT_ROOT
from nst.optimise.vgg import build_vgg19


class CONFIG:
    """The course's settings; change IMAGE_WIDTH / IMAGE_HEIGHT before load_vgg_model for another size."""

    IMAGE_WIDTH = 400
    IMAGE_HEIGHT = 300
    COLOR_CHANNELS = 3
    NOISE_RATIO = 0.6
    MEANS = _weights.MEAN_RGB.astype(np.float64).reshape((1, 1, 1, 3))
    # The official MatConvNet file if it is there, else the converted normalised VGG-19.
    VGG_MODEL = str(_weights.default_weights_path())
    STYLE_IMAGE = str(_images.IMAGES_DIR / _images.DEFAULT_STYLE)
    CONTENT_IMAGE = str(_images.IMAGES_DIR / _images.DEFAULT_CONTENT)
    OUTPUT_DIR = str(PROJECT_ROOT / "output")


def load_vgg_model(path=None, height=None, width=None, pooling="avg"):
    """Build VGG-19 in the default graph; returns ``{name: tensor}``.

    ``'input'`` is a ``tf.Variable`` of shape (1, height, width, 3) that you
    ``assign`` images to; ``conv1_1`` ... ``conv5_4`` are after the ReLU;
    ``avgpool1`` ... ``avgpool5`` are the pooling layers (average pooling, as in
    the course; ``pooling="max"`` gives ``maxpool1`` ... instead).
    """
    weights = _weights.load_vgg19(path or CONFIG.VGG_MODEL)
    height = height or CONFIG.IMAGE_HEIGHT
    width = width or CONFIG.IMAGE_WIDTH
    graph = {"input": tf.Variable(np.zeros((1, height, width, CONFIG.COLOR_CHANNELS)), dtype="float32", use_resource=False)}
    graph.update(build_vgg19(weights, graph["input"], pooling=pooling, last_layer="pool5"))
    return graph


def generate_noise_image(content_image, noise_ratio=None):
    """Uniform noise in [-20, 20) blended with the content image: noise_ratio * noise + (1 - noise_ratio) * content."""
    noise_ratio = CONFIG.NOISE_RATIO if noise_ratio is None else noise_ratio
    noise_image = np.random.uniform(-20, 20, np.shape(content_image)).astype("float32")
    return noise_image * noise_ratio + content_image * (1 - noise_ratio)


def reshape_and_normalize_image(image):
    """(h, w, 3) 0..255 -> (1, h, w, 3) minus the VGG mean pixel, ready for model['input']."""
    image = np.reshape(image, ((1,) + np.shape(image)))
    return image - CONFIG.MEANS


def save_image(path, image):
    """Add the mean back, clip to 0..255 and write ``image`` (1, h, w, 3) to ``path`` (atomically)."""
    image = np.clip(np.asarray(image) + CONFIG.MEANS, 0, 255).astype("uint8")[0]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _images.save_rgb(path, image)


def crop_to_aspect(image, width, height):
    """The largest centred crop of ``image`` (h, w, 3) whose sides are in the ratio width:height."""
    h, w = image.shape[:2]
    if w * height > h * width:  # too wide: trim the left and right edges
        new_w = max(1, round(h * width / height))
        left = (w - new_w) // 2
        return image[:, left:left + new_w]
    if w * height < h * width:  # too tall: trim the top and bottom
        new_h = max(1, round(w * height / width))
        top = (h - new_h) // 2
        return image[top:top + new_h]
    return image


def load_image(path, width=None, height=None):
    """Read an image as uint8 (height, width, 3) at the course's size (default 400x300).

    The course expects images already at 400x300; this helper lets any photo
    in.  It first crops the picture's centre to the target's aspect ratio
    (4:3 by default), so that a picture of another shape is trimmed, not
    squeezed, then resizes it.
    """
    width, height = width or CONFIG.IMAGE_WIDTH, height or CONFIG.IMAGE_HEIGHT
    rgb = crop_to_aspect(_images.read_rgb(path), width, height)
    return _images.resize(rgb, width, height)
