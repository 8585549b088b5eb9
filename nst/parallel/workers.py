"""Work for :mod:`nst.parallel.pool`: what a worker loads once and runs per item, for both methods.

Each class is picklable (settings, paths and the style images as arrays), so it
travels to Ray actors as it is; ``load(threads)`` runs in the worker, loads the
networks once and returns the function that stylises one item:
``run(content uint8 [h, w, 3]) -> (image, info dict)``, the image as the bytes of a
PNG file (``encode=".png"``, the default: encoding is then spread over the workers
instead of queueing in the driver, and fewer bytes travel back) or, with
``encode=None``, as ``uint8 [h', w', 3]``.
Weights paths of None mean the worker's own project files, so the nodes of a
cluster need not share a filesystem with the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


def encoded(image, extension: Optional[str]):
    """``image`` (uint8 [h, w, 3]) as the bytes of an image file, or as it is when ``extension`` is None."""
    if extension is None:
        return image
    from nst.io.images import encode_rgb

    return encode_rgb(image, extension)  # the encoder nst.io.images.save_rgb uses


def limit_threads(threads: Optional[int]) -> None:
    """Run TensorFlow's ops on ``threads`` threads (None: its default, every core).

    With Eigen's kernels (oneDNN off) the result's last bits depend on the thread
    count, so equal outputs from two runs need equal counts.  Raises RuntimeError
    if TensorFlow already runs with another count in this process.
    """
    if threads is None:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    except RuntimeError:
        if tf.config.threading.get_intra_op_parallelism_threads() != threads:
            raise RuntimeError(f"TensorFlow already runs in this process with another thread count; cannot use "
                               f"{threads} threads") from None


@dataclass
class FastWork:
    """The feed-forward (AdaIN) method: :class:`nst.fast.stylizer.FastStylizer` loaded once."""

    styles: list  # uint8 [h, w, 3] each, already at the style size
    alpha: float
    preserve_colors: bool = False
    weights: Optional[str] = None  # normalised VGG-19 .mat; None: the worker's own (fetched if missing)
    decoder: Optional[str] = None
    encode: Optional[str] = ".png"

    def load(self, threads: Optional[int] = None):
        limit_threads(threads)
        from nst.fast.stylizer import FastStylizer
        from nst.weights.fetch import fast_weights_for_use

        stylizer = FastStylizer(*fast_weights_for_use(self.weights, self.decoder))  # None: fetched on first use

        def run(content):
            image = stylizer.stylize(content, self.styles, alpha=self.alpha, preserve_colors=self.preserve_colors)
            return encoded(image, self.encode), {"size": [image.shape[1], image.shape[0]]}

        return run


@dataclass
class OptimiseWork:
    """The optimisation method: :func:`nst.optimise.stylize.stylize` per item, the VGG-19 weights loaded once."""

    styles: list  # uint8 [h, w, 3] each, at their own size (the engine scales them)
    settings: object  # nst.optimise.stylize.Settings, unresolved: a seed of None draws one per item
    weights: Optional[str] = None  # .mat path; None: the worker's own, fetched on first use
    encode: Optional[str] = ".png"

    def load(self, threads: Optional[int] = None):
        limit_threads(threads)
        from nst.optimise import stylize as engine

        vgg = engine.get_weights(self.weights)  # None: the project's file, as the one-image command finds it

        def run(content):
            result = engine.stylize(content, self.styles, self.settings, weights=vgg)
            if result.status != "done":
                raise RuntimeError(result.message or f"the optimisation ended with status {result.status}")
            image = result.image
            return encoded(image, self.encode), {"size": [image.shape[1], image.shape[0]], "seed": result.settings.seed,
                                                 "steps": result.steps, "final_costs": result.costs}

        return run
