"""Helpers of the deeplearning.ai assignment "Art Generation with Neural Style Transfer".

The course's module, as learners import it (``from nst_utils import *``):
``CONFIG``, ``load_vgg_model``, ``generate_noise_image``,
``reshape_and_normalize_image``, ``save_image``, plus ``load_image`` and
``crop_to_aspect``, and ``tf`` as ``tensorflow.compat.v1``.  The code lives in
``nst/classroom/course_utils.py``; this module only switches TensorFlow to the
course's graph mode and re-exports it.
"""

from pathlib import Path  # noqa: F401  (re-exported, as the course's module had it)

import numpy as np  # noqa: F401
import tensorflow.compat.v1 as tf

from nst.classroom.course_utils import (CONFIG, build_vgg19, crop_to_aspect, generate_noise_image,  # noqa: F401
                                        load_image, load_vgg_model, reshape_and_normalize_image, save_image)

# The course's notebooks build graphs and sessions: TF 1 behaviour, for the whole process.
tf.disable_eager_execution()
