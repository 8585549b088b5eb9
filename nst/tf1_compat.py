"""The course compatibility switches, under the name the notebook's cells and the README use.

The code lives in :mod:`nst.classroom.tf1_compat`.
"""

from nst.classroom.tf1_compat import (disable_course_compat, disable_tf1_op_seeds,
                                      enable_course_compat, enable_tf1_op_seeds, tf1_op_seeds)

__all__ = ["disable_course_compat", "disable_tf1_op_seeds", "enable_course_compat", "enable_tf1_op_seeds",
           "tf1_op_seeds"]
