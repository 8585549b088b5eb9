"""Reference solutions of the assignment's graded functions, in graph mode.

Names and signatures are the course's.  The notebook defines its own copies
(students write them); these serve the tests, the autograder's hidden cases
and anyone who wants to import them.  Costs follow equations (1) and (2) of
the assignment; see :mod:`nst.optimise.costs` for the library's equivalents.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from dataclasses import dataclass

import tensorflow.compat.v1 as tf

from nst.optimise import costs
from nst.classroom import course_utils

STYLE_LAYERS = [
    ("conv1_1", 0.2),
    ("conv2_1", 0.2),
    ("conv3_1", 0.2),
    ("conv4_1", 0.2),
    ("conv5_1", 0.2),
]
CONTENT_LAYER = "conv4_2"


def compute_content_cost(a_C, a_G):
    """J_content = sum((a_C - a_G)^2) / (4 n_H n_W n_C) for activations of shape (1, n_H, n_W, n_C).

    The assignment unrolls both volumes to (n_C, n_H*n_W) first; the sum of
    squares does not depend on the layout, so this skips the two transposes.
    """
    return costs.content_cost(tf.convert_to_tensor(a_C, tf.float32), a_G)


def gram_matrix(A):
    """G_A = A A^T for A of shape (n_C, n_H*n_W); result (n_C, n_C)."""
    return tf.matmul(A, tf.transpose(A))


def compute_layer_style_cost(a_S, a_G):
    """J_style^[l] = sum((G_S - G_G)^2) / (4 n_C^2 (n_H n_W)^2).

    Same value as unrolling to (n_C, n_H*n_W) and calling :func:`gram_matrix`
    (the assignment's recipe), but computed as F^T F on the (n_H*n_W, n_C)
    reshape with a one-matmul gradient (:func:`nst.optimise.costs.style_gram`): no
    transposes, half the matmuls.  The style Gram of a constant ``a_S`` is
    computed once, when the graph is first run (constant folding).
    """
    return costs.layer_style_cost(tf.convert_to_tensor(a_S, tf.float32), a_G)


def compute_style_cost(model, STYLE_LAYERS, sess=None):
    """Weighted sum of the layer style costs; the style image must already be assigned to model['input'].

    Like the course, it evaluates the style activations with the default
    session (the InteractiveSession) unless ``sess`` is given.
    """
    sess = sess or tf.get_default_session()
    J_style = 0
    for layer_name, coeff in STYLE_LAYERS:
        out = model[layer_name]
        a_S = sess.run(out)  # style activations: a constant from now on
        a_G = out  # generated activations: evaluated at every step
        J_style += coeff * compute_layer_style_cost(a_S, a_G)
    return J_style


def total_cost(J_content, J_style, alpha=10, beta=40):
    """J = alpha J_content + beta J_style."""
    return alpha * J_content + beta * J_style


def model_nn(sess, input_image, num_iterations=200, *, model=None, train_step=None, J=None,
             J_content=None, J_style=None, output_dir="output", print_every=20, on_progress=None):
    """Run ``train_step`` ``num_iterations`` times from ``input_image``; return the generated image.

    As in the course, ``model``, ``train_step``, ``J``, ``J_content`` and
    ``J_style`` are taken from the caller's globals (the notebook's) unless
    passed.  Every ``print_every`` iterations it prints the three costs and
    saves ``output_dir/<i>.png``; at the end it saves
    ``output_dir/generated_image.jpg``.  ``on_progress(i, Jt, Jc, Js, image)``,
    if given, is called at each print, so callers can plot without re-running.
    Unlike the course's skeleton, the returned image is read back from the
    graph (``model['input']``), not a fresh noise image.
    """
    caller = inspect.currentframe().f_back.f_globals
    model = model if model is not None else caller["model"]
    train_step = train_step if train_step is not None else caller["train_step"]
    J = J if J is not None else caller["J"]
    J_content = J_content if J_content is not None else caller["J_content"]
    J_style = J_style if J_style is not None else caller["J_style"]

    os.makedirs(output_dir, exist_ok=True)
    sess.run(tf.global_variables_initializer())
    sess.run(model["input"].assign(input_image))
    generated_image = input_image
    for i in range(num_iterations):
        sess.run(train_step)
        if i % print_every == 0:
            generated_image, Jt, Jc, Js = sess.run([model["input"], J, J_content, J_style])
            print("Iteration " + str(i) + " :")
            print("total cost = " + str(Jt))
            print("content cost = " + str(Jc))
            print("style cost = " + str(Js))
            course_utils.save_image(os.path.join(output_dir, str(i) + ".png"), generated_image)
            if on_progress is not None:
                on_progress(i, Jt, Jc, Js, generated_image)
    generated_image = sess.run(model["input"])
    course_utils.save_image(os.path.join(output_dir, "generated_image.jpg"), generated_image)
    return generated_image


@contextlib.contextmanager
def course_session():
    """The course's InteractiveSession on a fresh graph, both the defaults inside the block; closed after.

    An InteractiveSession, not a plain Session: its configuration (a pruned
    graph is placed) changes how TensorFlow rewrites the graph, and so the
    timings the benchmarks report.  The graph is the caller's own, so this works
    whether or not the process switched eager execution off (``nst_utils`` does).
    """
    graph = tf.Graph()
    with graph.as_default():
        session = tf.InteractiveSession(graph=graph)
        try:
            yield session
        finally:
            session.close()


@dataclass(frozen=True)
class CourseGraph:
    """The assignment's section-4 graph: VGG-19 (``model``), its three costs and Adam's train step."""

    model: dict
    J: tf.Tensor
    J_content: tf.Tensor
    J_style: tf.Tensor
    train_step: tf.Operation

    def start_from(self, session, image) -> None:
        """Initialise the variables (Adam's slots included) and set the generated image to ``image``."""
        session.run(tf.global_variables_initializer())
        session.run(self.model["input"].assign(image))


def build_course_graph(session, content, style, alpha=10, beta=40, learning_rate=2.0,
                       weights_path=None) -> CourseGraph:
    """The course's recipe, in ``session``'s graph: the one builder the notebook path and bench/ share.

    ``content`` and ``style`` are (1, height, width, 3), minus the VGG mean
    (``reshape_and_normalize_image``); the network is built at their size.
    The content activations (``CONTENT_LAYER``) and the style activations
    (``STYLE_LAYERS``) are evaluated once, as constants; the generated image
    is ``model['input']``.
    """
    height, width = content.shape[1:3]
    with session.graph.as_default():
        model = course_utils.load_vgg_model(weights_path, height=height, width=width)
        session.run(model["input"].assign(content))
        a_C = session.run(model[CONTENT_LAYER])
        J_content = compute_content_cost(a_C, model[CONTENT_LAYER])
        session.run(model["input"].assign(style))
        J_style = compute_style_cost(model, STYLE_LAYERS, session)
        J = total_cost(J_content, J_style, alpha=alpha, beta=beta)
        train_step = tf.train.AdamOptimizer(learning_rate).minimize(J)
    return CourseGraph(model, J, J_content, J_style, train_step)


def run_course_pipeline(content_path, style_path, num_iterations=200, output_dir="output", seed=None,
                        alpha=10, beta=40, learning_rate=2.0):
    """The assignment's section 4 end to end: returns (generated image, list of (i, Jt, Jc, Js))."""
    import numpy as np

    if seed is not None:
        np.random.seed(seed)
    content_image = course_utils.reshape_and_normalize_image(course_utils.load_image(content_path))
    style_image = course_utils.reshape_and_normalize_image(course_utils.load_image(style_path))
    generated_image = course_utils.generate_noise_image(content_image)
    with course_session() as sess:
        recipe = build_course_graph(sess, content_image, style_image, alpha, beta, learning_rate)
        history = []
        image = model_nn(sess, generated_image, num_iterations, model=recipe.model, train_step=recipe.train_step,
                         J=recipe.J, J_content=recipe.J_content, J_style=recipe.J_style, output_dir=output_dir,
                         on_progress=lambda i, Jt, Jc, Js, _: history.append((i, Jt, Jc, Js)))
        return image, history


def main(argv=None) -> int:
    """``python -m nst.classroom.course``: the assignment's optimisation on the sample pair, images in output/."""
    import argparse
    import sys

    from nst.io import files, images
    from nst.weights import load as weights

    parser = argparse.ArgumentParser(prog="python -m nst.classroom.course", description=main.__doc__)
    parser.add_argument("--content", default=None, help="content image (default: the sample tubingen.jpg)")
    parser.add_argument("--style", default=None, help="style image (default: the sample starry_night.jpg)")
    parser.add_argument("--iterations", type=int, default=200, help="Adam iterations (default: %(default)s)")
    parser.add_argument("--output-dir", default=str(files.PROJECT_ROOT / "output"), help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=None, help="NumPy seed for the noise image")
    args = parser.parse_args(argv)
    try:
        content, style = images.fetch_default_pair() if not (args.content and args.style) else (None, None)
        content = args.content or content
        style = args.style or style
        for path in (content, style):
            images.read_rgb(path)  # fail on a bad image before building the graph
        if not weights.default_weights_path().exists():
            raise weights.WeightsError(f"no weights in {weights.WEIGHTS_DIR}; {weights.FETCH_HINT}")
    except (images.ImageError, weights.WeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    run_course_pipeline(content, style, args.iterations, args.output_dir, seed=args.seed)
    print(f"saved {args.output_dir}/generated_image.jpg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
