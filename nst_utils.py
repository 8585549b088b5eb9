"""Helpers of the deeplearning.ai assignment "Art Generation with Neural Style Transfer".

The course's module, as learners import it (``from nst_utils import *``):
``CONFIG``, ``load_vgg_model``, ``generate_noise_image``,
``reshape_and_normalize_image``, ``save_image``, plus ``load_image`` and
``crop_to_aspect``, and ``tf`` as ``tensorflow.compat.v1``.  The code lives in
``nst/classroom/course_utils.py``; this module only switches TensorFlow to the
course's graph mode and re-exports it.
"""

from pathlib import Path

import numpy as np
import tensorflow.compat.v1 as tf

from nst.classroom.course_utils import (CONFIG, build_vgg19, crop_to_aspect, generate_noise_image,
                                        load_image, load_vgg_model, reshape_and_normalize_image, save_image)

# What ``from nst_utils import *`` gives, as the course's module did (its imports included).
__all__ = ["CONFIG", "Path", "build_vgg19", "crop_to_aspect", "generate_noise_image", "load_image", "load_vgg_model",
           "np", "reshape_and_normalize_image", "save_image", "tf"]

# The course's notebooks build graphs and sessions: TF 1 behaviour, for the whole process.
tf.disable_eager_execution()
