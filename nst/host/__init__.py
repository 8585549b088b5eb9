"""What this machine can do: the number format its CPU runs fast, and the memory a run may take.

precision (fp32, or bf16 where the CPU has bfloat16 units; ``NST_CPU_FLAGS`` stands
in for the CPU's flags) and budget (the memory free, and what a size needs): both
methods and every front end ask here, before any network is loaded.  quiet keeps
TensorFlow's C++ start-up lines off a command's stderr.
"""

from nst._exports import lazy

__getattr__ = lazy(__name__, {"choose": "precision", "check_fits": "budget", "MemoryBudgetError": "budget"})
__all__ = ["choose", "check_fits", "MemoryBudgetError"]
