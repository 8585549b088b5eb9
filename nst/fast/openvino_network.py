"""The AdaIN encoder and decoder on OpenVINO, in bfloat16 where the CPU has bfloat16 units.

ONNX Runtime starts in a fraction of TensorFlow's time but computes only in float32 on a CPU.  On a host
with bfloat16 units (AVX-512 BF16, AMX) the fast command picks OpenVINO instead: it starts as quickly
(its runtime loads in 0.03 s, see :func:`_compiled_core`; both networks in 0.06 s from the compiled cache)
and runs the same ONNX models with its bfloat16 kernels, 1.6x faster on a Zen 4 host than ONNX Runtime's
Winograd graph and 2x faster than its direct one (bench/bench_startup.py).  The models are
:mod:`nst.fast.onnx_network`'s with every conv direct: OpenVINO makes its own choice of convolution
algorithm, and the Winograd graph written for ONNX Runtime runs slower on it.  bfloat16 results are
within one grey level of the PyTorch fixtures on average (tests/fast/test_fast.py), as TensorFlow's
bf16 path is.  ``openvino`` is imported only here.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

# OpenVINO's names for the project's precisions (nst.host.precision, once chosen).
INFERENCE_PRECISION = {"bf16": "bf16", "fp32": "f32"}


def available() -> bool:
    """Whether OpenVINO can be imported here (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def _writable(folder) -> bool:
    """Whether a file can be created in ``folder`` (made if missing): a probe, since os.access says yes to
    root even on a read-only mount."""
    import tempfile

    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _compiled_core():
    """OpenVINO's compiled extension (``openvino._pyopenvino``) without running the package's ``__init__``.

    The package's ``__init__`` imports its model converter and its telemetry client, 0.25-0.3 s of a
    1.7 s command on a Zen 4 host; this command needs neither, only the runtime, which the extension
    is.  A stand-in parent package is in ``sys.modules`` only while the extension loads, so a later
    ``import openvino`` gets the real package (and this same extension).  None if that fails (another
    layout in another version): then the public package is used."""
    import importlib.util
    import sys
    import types

    if "openvino._pyopenvino" in sys.modules or "openvino" in sys.modules:  # loaded before, one way or the other
        return sys.modules.get("openvino._pyopenvino")
    spec = importlib.util.find_spec("openvino")
    if spec is None or not spec.submodule_search_locations:
        return None
    parent = types.ModuleType("openvino")
    parent.__path__ = list(spec.submodule_search_locations)
    sys.modules["openvino"] = parent
    try:
        from openvino import _pyopenvino
    except ImportError:
        return None
    finally:
        del sys.modules["openvino"]
    return _pyopenvino


class OpenVinoNetworks:
    """``encode`` and ``decode`` on NumPy NHWC arrays, as :class:`nst.fast.onnx_network.OnnxNetworks`'s.

    ``models(rebuild)`` gives [encoder, decoder] as ONNX files (paths) or model bytes; it is called
    again with ``rebuild=True`` if OpenVINO refuses what it gave first (a damaged cached file).
    ``precision``: "bf16" or "fp32", already chosen for this CPU.  ``cache_dir``: where OpenVINO keeps
    the networks it compiled from files (0.06 s to load instead of 0.17 s to compile both); it checks
    that a kept one was compiled for this CPU and these settings, and compiles again if not.
    ``public_api``: use the ``openvino`` package as documented, not :func:`_compiled_core`."""

    def __init__(self, models, precision: str, cache_dir=None, public_api: bool = False):
        self.core_only = None if public_api else _compiled_core()
        if self.core_only is None:
            import openvino

        core = self.core_only.Core() if self.core_only else openvino.Core()
        if cache_dir is not None and _writable(cache_dir):
            core.set_property({"CACHE_DIR": str(cache_dir)})
        if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            precision = "fp32"  # a profile or a request said bf16, but this CPU has no bfloat16 units
        self.precision = precision
        # LATENCY: one request at a time, using every core for it (the command's one image at a time).
        config = {"INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[precision], "PERFORMANCE_HINT": "LATENCY"}

        def compiled(rebuild: bool) -> list:
            return [core.compile_model(str(model) if isinstance(model, Path) else core.read_model(model), "CPU",
                                       config) for model in models(rebuild)]

        try:
            networks = compiled(rebuild=False)
        except Exception:  # a damaged cached file (OpenVINO's errors have no common class): build afresh
            networks = compiled(rebuild=True)
        self._requests = [network.create_infer_request() for network in networks]
        self._lock = threading.Lock()  # one request per network: callers on other threads take turns

    def _run(self, request, nhwc: np.ndarray) -> np.ndarray:
        nchw = np.ascontiguousarray(np.asarray(nhwc, np.float32).transpose(0, 3, 1, 2))
        with self._lock:
            if self.core_only:  # the extension's own call: (inputs, share_outputs, decode_strings)
                request.infer(self.core_only.Tensor(nchw), False, False)
                out = np.array(request.get_output_tensor(0).data)
            else:
                out = np.array(request.infer({0: nchw})[0])
        return out.transpose(0, 2, 3, 1)

    def encode(self, images: np.ndarray) -> np.ndarray:
        """RGB 0..1 [1, h, w, 3] -> features [1, ceil(h/8), ceil(w/8), 512]."""
        return self._run(self._requests[0], images)

    def decode(self, features: np.ndarray) -> np.ndarray:
        """Features [1, h, w, 512] -> RGB [1, 8h, 8w, 3]."""
        return self._run(self._requests[1], features)
