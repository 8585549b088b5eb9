"""Which number format the convolutions run in: float32, or bfloat16 where the CPU has units for it.

Mixed precision, not plain bfloat16: only the VGG-19 / decoder convolutions run
in bfloat16 (8 bits of mantissa, float32's range), and in the optimisation not
conv1_1, whose input is the picture itself (issue 29, :mod:`nst.optimise.vgg`).  Gram matrices, cost
reductions, the image being optimised and the optimisers' state (Adam's
moments, L-BFGS's history) stay float32, so the costs keep about 3
significant digits and the optimisation stays stable (issue 15).

``auto`` picks bfloat16 only where the CPU runs it natively: Intel's AMX
(``amx_bf16``) or AVX512-BF16 (``avx512_bf16``).  Elsewhere TensorFlow
emulates it, which gives no speed and costs digits, so an explicit ``bf16``
on such a CPU falls back to float32 with a one-line notice (the run still
finishes, and its JSON record says which precision it used).

``NST_CPU_FLAGS``, when set, stands in for the CPU's ``flags`` line: the test
suite's host profiles (``pytest --host-profile``) use it to run as another kind
of machine, and a user can set it to ``avx2`` to make ``auto`` mean fp32.
"""

from __future__ import annotations

import os
from typing import Optional

PRECISIONS = ("auto", "fp32", "bf16")
DEFAULT_PRECISION = "auto"
BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic
FLAGS_VARIABLE = "NST_CPU_FLAGS"  # overrides the flags read from /proc/cpuinfo (host profiles, see above)
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}  # precision -> TensorFlow compute dtype


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> str:
    """``$NST_CPU_FLAGS`` if set, else the first ``flags`` line of ``cpuinfo`` ('' where it cannot be
    read: not Linux, no x86)."""
    if cpuinfo == "/proc/cpuinfo" and FLAGS_VARIABLE in os.environ:
        return os.environ[FLAGS_VARIABLE].strip()
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("flags"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass  # no /proc (macOS, a sandbox): treated as a CPU without bfloat16 units
    return ""


def has_bf16_units(flags: str) -> bool:
    return bool(set(flags.split()) & set(BF16_FLAGS))


def choose(requested: str, flags: Optional[str] = None) -> tuple:
    """(precision actually used, a notice or '') for ``requested`` on a CPU with ``flags``.

    ``flags``: a ``/proc/cpuinfo`` flags string; None reads this machine's.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    native = has_bf16_units(cpu_flags() if flags is None else flags)
    if requested == "auto":
        return ("bf16" if native else "fp32"), ""
    if requested == "bf16" and not native:
        return "fp32", ("this CPU has no bfloat16 units (amx_bf16 or avx512_bf16), where bf16 would be emulated "
                        "and slower; running in fp32")
    return requested, ""


def compute_dtype(precision: str) -> str:
    """TensorFlow dtype name of the convolutions for a *chosen* precision ('fp32' or 'bf16')."""
    if precision not in DTYPES:
        raise ValueError(f"precision must be fp32 or bf16 once chosen, not {precision!r}")
    return DTYPES[precision]
