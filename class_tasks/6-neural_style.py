#!/usr/bin/env python3
"""Task 6 of the NST class: Content Cost.

Part of the eager TensorFlow 2 class ``NST`` of the second course, built
over eleven tasks; this file is the class as it stands after task 6.
It imports only numpy and tensorflow, as the spec requires, and is
generated from nst/classroom/eager_nst.py.in by
``python -m nst.classroom.eager_tasks`` (edit the template, not this file).

Weights: the spec's ``VGG19(include_top=False, weights='imagenet')``, which
Keras downloads on first use.  A machine that cannot download puts a Keras
weights file of the same network at one of ``LOCAL_WEIGHTS`` (``make`` in
the project writes pretrained-model/vgg19_notop.weights.h5), and the model
loads that instead.
"""
import numpy as np
import tensorflow as tf

# Long side of every scaled image, in pixels (spec, task 0).
MAX_SIDE = 512
# Caffe-mode preprocessing (vgg19.preprocess_input): mean per BGR channel.
BGR_MEAN = (103.939, 116.779, 123.68)
# Keras weights files used instead of downloading 'imagenet', first found
# wins; paths relative to the working directory.
LOCAL_WEIGHTS = ('vgg19_notop.weights.h5',
                 'pretrained-model/vgg19_notop.weights.h5')


def _is_integer(value):
    """True for Python and NumPy integers, but not for booleans."""
    return (isinstance(value, (int, np.integer))
            and not isinstance(value, (bool, np.bool_)))


def _is_number(value):
    """True for Python and NumPy integers and floats, but not booleans."""
    return _is_integer(value) or isinstance(value, (float, np.floating))


def _is_non_negative_number(value):
    """True for a number that is >= 0 (NaN is rejected)."""
    return _is_number(value) and value >= 0


def _is_image(value):
    """True for a NumPy array of shape (h, w, 3) with h, w > 0."""
    return (isinstance(value, np.ndarray) and value.ndim == 3
            and value.shape[2] == 3
            and value.shape[0] > 0 and value.shape[1] > 0)


def _is_tensor(value):
    """True for a tf.Tensor (eager or symbolic) or a tf.Variable."""
    return isinstance(value, (tf.Tensor, tf.Variable))


def _has_shape(tensor, shape):
    """True for a tensor of known rank whose static shape is ``shape``."""
    if not _is_tensor(tensor) or tensor.shape.rank is None:
        return False
    shape = tf.TensorShape(shape)
    return (shape.rank is not None
            and tensor.shape.as_list() == shape.as_list())


def _resize_long_side(image, long_side):
    """Resize an (h, w, 3) image bicubically to a long side of ``long_side``.

    Returns a float32 tensor of shape (1, h_new, w_new, 3) with values in
    [0, 1] (input values are taken to be in [0, 255]; bicubic overshoot is
    clipped).
    """
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    h_new = max(1, int(round(h * scale)))
    w_new = max(1, int(round(w * scale)))
    # (1, h, w, 3)
    batch = tf.convert_to_tensor(image[np.newaxis], dtype=tf.float32)
    # (1, h_new, w_new, 3)
    resized = tf.image.resize(batch, (h_new, w_new), method="bicubic")
    return tf.clip_by_value(resized / 255.0, 0.0, 1.0)


def _ensure_eager():
    """Make sure TensorFlow executes eagerly (the TF 2 default)."""
    if tf.executing_eagerly():
        return
    try:
        tf.compat.v1.enable_eager_execution()
    except ValueError:
        raise RuntimeError(
            "NST needs eager execution, but this process disabled it; "
            "use NST in a separate process") from None


def vgg19_weights():
    """The ``weights`` argument for VGG19: a local file, else 'imagenet'."""
    for path in LOCAL_WEIGHTS:
        if tf.io.gfile.exists(path):
            return path
    return 'imagenet'


class NST:
    """Neural style transfer (Gatys et al.) with an eager TF 2 Keras model.

    Class attributes:
        style_layers: the VGG-19 layers whose Gram matrices define the style.
        content_layer: the VGG-19 layer whose activations define the content.

    Instance attributes:
        style_image, content_image: the scaled images, tensors (1, h, w, 3)
            in [0, 1].
        alpha, beta: weights of the content and style costs.
        model: Keras model from a (1, h, w, 3) Caffe-preprocessed image to
            the style layers' outputs followed by the content layer's.
        gram_style_features: Gram matrices (1, c, c) of the style image's
            style layers.
        content_feature: the content layer's output (1, h', w', 512) for
            the content image.
    """

    style_layers = ['block1_conv1', 'block2_conv1', 'block3_conv1',
                    'block4_conv1', 'block5_conv1']
    content_layer = 'block5_conv2'

    def __init__(self, style_image, content_image, alpha=1e4, beta=1):
        """Validate and scale the images; set the costs' weights.

        From task 1 on the constructor builds the model, from task 3 on it
        extracts the target features.

        Args:
            style_image: np.ndarray (h, w, 3), values in [0, 255], the style
                reference.
            content_image: np.ndarray (h, w, 3), values in [0, 255], the
                content reference.
            alpha: weight of the content cost (non-negative number).
            beta: weight of the style cost (non-negative number).
        """
        if not _is_image(style_image):
            raise TypeError(
                'style_image must be a numpy.ndarray with shape (h, w, 3)')
        if not _is_image(content_image):
            raise TypeError(
                'content_image must be a numpy.ndarray with shape (h, w, 3)')
        if not _is_non_negative_number(alpha):
            raise TypeError('alpha must be a non-negative number')
        if not _is_non_negative_number(beta):
            raise TypeError('beta must be a non-negative number')
        _ensure_eager()
        self.style_image = self.scale_image(style_image)  # (1, hs, ws, 3)
        self.content_image = self.scale_image(content_image)  # (1, h, w, 3)
        self.alpha = alpha
        self.beta = beta
        self.load_model()
        self.generate_features()

    @staticmethod
    def scale_image(image):
        """Rescale an image to a long side of 512 pixels and values in [0, 1].

        Args:
            image: np.ndarray (h, w, 3) with values in [0, 255].

        Returns:
            tf.Tensor (1, h_new, w_new, 3), float32, with
            max(h_new, w_new) == 512, the other side scaled proportionally
            (rounded), bicubic interpolation.
        """
        if not _is_image(image):
            raise TypeError(
                'image must be a numpy.ndarray with shape (h, w, 3)')
        return _resize_long_side(image, MAX_SIDE)

    @staticmethod
    def preprocess(image):
        """Turn a (1, h, w, 3) RGB image in [0, 1] into the model's input.

        Equivalent to ``tf.keras.applications.vgg19.preprocess_input(
        image * 255)`` (Caffe mode: RGB -> BGR, minus the BGR mean), written
        with TensorFlow ops so that it is differentiable and traceable.
        """
        # (1, h, w, 3), BGR in [0, 255]
        bgr = tf.reverse(image * 255.0, axis=[-1])
        return bgr - tf.constant(BGR_MEAN, dtype=bgr.dtype)

    def load_model(self):
        """Build the cost model on Keras' VGG-19 and save it in ``model``.

        The base is ``tf.keras.applications.VGG19`` without its classifier
        (weights: see ``vgg19_weights``), kept up to ``block5_conv2``, with
        every max pooling replaced by an average pooling of the same size,
        stride and padding (Gatys et al. found it gives smoother results).
        The model is not trainable (the tape differentiates with respect to
        the input only).  Its outputs are the ``style_layers`` outputs
        followed by the ``content_layer`` output.
        """
        base = tf.keras.applications.VGG19(include_top=False,
                                           weights=vgg19_weights())
        x = base.input  # (None, None, None, 3), Caffe-preprocessed BGR
        outputs = {}
        for layer in base.layers[1:]:
            if isinstance(layer, tf.keras.layers.MaxPooling2D):
                layer = tf.keras.layers.AveragePooling2D(
                    pool_size=layer.pool_size, strides=layer.strides,
                    padding=layer.padding, name=layer.name)
            x = layer(x)
            outputs[layer.name] = x
            if layer.name == self.content_layer:
                break
        wanted = self.style_layers + [self.content_layer]
        model = tf.keras.Model(inputs=base.input,
                               outputs=[outputs[name] for name in wanted],
                               name="model")
        model.trainable = False
        self.model = model

    def _features(self, image):
        """Model outputs for a (1, h, w, 3) image in [0, 1].

        A list: the 5 style layers' outputs, then the content layer's.
        """
        return list(self.model(self.preprocess(image)))

    @staticmethod
    def gram_matrix(input_layer):
        """Gram matrix of a layer output, normalised by its positions.

        G_ij = 1 / (h * w) * sum over positions of F_hwi * F_hwj.

        Args:
            input_layer: tf.Tensor or tf.Variable (1, h, w, c).

        Returns:
            tf.Tensor (1, c, c).
        """
        if not _is_tensor(input_layer) or input_layer.shape.rank != 4:
            raise TypeError('input_layer must be a tensor of rank 4')
        shape = tf.shape(input_layer)
        positions = shape[1] * shape[2]  # h * w
        # (1, h*w, c)
        features = tf.reshape(input_layer, (shape[0], positions, shape[3]))
        gram = tf.matmul(features, features, transpose_a=True)  # (1, c, c)
        return gram / tf.cast(positions, gram.dtype)

    def generate_features(self):
        """Set ``gram_style_features`` and ``content_feature``.

        The Gram matrices come from the style image, the content feature
        from the content image.
        """
        # 5 x (1, h_l, w_l, c_l)
        style_outputs = self._features(self.style_image)[:-1]
        self.gram_style_features = [self.gram_matrix(output)
                                    for output in style_outputs]
        # (1, h', w', 512)
        self.content_feature = self._features(self.content_image)[-1]

    def layer_style_cost(self, style_output, gram_target):
        """Style cost of one layer: the mean squared Gram difference.

        E_l = 1 / c^2 * sum_ij (G_ij - A_ij)^2.

        Args:
            style_output: tf.Tensor (1, h, w, c), the generated image's
                layer output.
            gram_target: tf.Tensor (1, c, c), the style image's Gram matrix
                for that layer.

        Returns:
            scalar tf.Tensor.
        """
        if not _is_tensor(style_output) or style_output.shape.rank != 4:
            raise TypeError('style_output must be a tensor of rank 4')
        c = style_output.shape[-1]
        if not _has_shape(gram_target, (1, c, c)):
            raise TypeError(
                'gram_target must be a tensor of shape [1, {}, {}]'.format(
                    c, c))
        gram = self.gram_matrix(style_output)  # (1, c, c)
        return tf.reduce_mean(tf.square(gram - gram_target))

    def style_cost(self, style_outputs):
        """Style cost: the layers' costs, each weighted 1 / len(style_layers).

        Args:
            style_outputs: list of tf.Tensor, the generated image's style
                layer outputs.

        Returns:
            scalar tf.Tensor.
        """
        count = len(self.style_layers)
        if not isinstance(style_outputs, list) or len(style_outputs) != count:
            raise TypeError(
                'style_outputs must be a list with a length of {}'.format(
                    count))
        weight = 1.0 / count  # equal weights that sum to 1
        costs = [self.layer_style_cost(output, target) for output, target
                 in zip(style_outputs, self.gram_style_features)]
        return tf.add_n([weight * cost for cost in costs])

    def content_cost(self, content_output):
        """Content cost: mean squared difference from the content feature.

        L = 1 / (h * w * c) * sum (F - P)^2.

        Args:
            content_output: tf.Tensor with the shape of ``content_feature``.

        Returns:
            scalar tf.Tensor.
        """
        shape = self.content_feature.shape
        if not _has_shape(content_output, shape):
            raise TypeError(
                'content_output must be a tensor of shape {}'.format(shape))
        return tf.reduce_mean(tf.square(content_output - self.content_feature))
