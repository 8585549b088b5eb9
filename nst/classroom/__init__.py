"""The classroom: the deeplearning.ai assignment's TF 1 graph code, its notebook's helpers and the grader.

Nothing in the engine, the data modules or the front ends imports this package.
Importing it (or any module in it) leaves TensorFlow's execution mode alone: only
the learners' top-level ``nst_utils`` switches eager execution off, as the course's
own module did.  Code here that builds TF 1 graphs does so in a graph of its own,
so it also runs in a process that keeps eager execution on.
"""

# The assignment's graded functions, in the notebook's order.  The notebook tags the
# four cost functions' cells "graded" (model_nn's cell is the optimisation run); the
# grader (grade_report) grades all five.
GRADED_COST_FUNCTIONS = ("compute_content_cost", "gram_matrix", "compute_layer_style_cost", "total_cost")
GRADED = GRADED_COST_FUNCTIONS + ("model_nn",)
