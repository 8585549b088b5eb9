#!/usr/bin/env python3
"""Task 9 of the NST class: Generate Image.

Part of the eager TensorFlow 2 class ``NST`` of the second course, built
over eleven tasks; this file is the class as it stands after task 9.
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
# Adam's epsilon (the same default as tf.keras.optimizers.Adam).
ADAM_EPSILON = 1e-7
# generate_image's messages and progress line, as the spec words them.
STEP_RANGE_MESSAGE = 'step must be positive and less than iterations'
PROGRESS_FORMAT = 'Cost at iteration {}: {}, content {}, style {}'


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


def _check_generate_arguments(iterations, step, lr, beta1, beta2):
    """Raise the spec's error for a bad argument of generate_image."""
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
    for name, value in (('beta1', beta1), ('beta2', beta2)):
        if not isinstance(value, float):
            raise TypeError('{} must be a float'.format(name))
        if not 0 <= value <= 1:
            raise ValueError('{} must be in the range [0, 1]'.format(name))


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
        # Optimisation state, created on the first generate_image call.
        self._step_function = None
        self._step_key = None

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

    def _check_generated(self, generated_image):
        """Raise the spec's TypeError unless it has the content's shape."""
        shape = self.content_image.shape
        if not _has_shape(generated_image, shape):
            raise TypeError(
                'generated_image must be a tensor of shape {}'.format(shape))

    def total_cost(self, generated_image):
        """Total cost of a generated image.

        J = alpha * J_content + beta * J_style.

        Args:
            generated_image: tf.Tensor or tf.Variable with the content
                image's shape (1, nh, nw, 3), values in [0, 1].

        Returns:
            (J, J_content, J_style), scalar tensors.
        """
        self._check_generated(generated_image)
        # 5 style outputs, then the content output
        outputs = self._features(generated_image)
        J_style = self.style_cost(outputs[:-1])
        J_content = self.content_cost(outputs[-1])
        J = self.alpha * J_content + self.beta * J_style
        return J, J_content, J_style

    def _gradients_and_costs(self, generated_image):
        """(gradient of J, every cost total_cost returns) for an image.

        The gradient is a tf.Tensor (1, nh, nw, 3); the costs are
        ``total_cost``'s tuple.
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
        return (self.alpha, self.beta)

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
        _check_generate_arguments(iterations, step, lr, beta1, beta2)
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
        for i in range(iterations + 1):
            costs = self._step_function(*(last if i == iterations else hyper))
            if step is not None and (i % step == 0 or i == iterations):
                print(PROGRESS_FORMAT.format(
                    i, *(float(cost) for cost in costs)))
        return self._best_image.numpy()[0], self._best_cost.numpy()
