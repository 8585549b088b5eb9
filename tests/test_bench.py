"""The benchmark's smoke run: it must keep working (figures are not checked here)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_speed_smoke_runs_and_prints_figures(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_speed.py"), "--smoke",
                             "--paths", "course,engine", "--json", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GFLOP/s" in result.stdout and "course" in result.stdout and "engine" in result.stdout
    import json

    report = json.loads(out.read_text())
    figures = report["sizes"]["64x48"]["paths"]
    assert figures["course"]["s_per_iter"] > 0 and figures["engine"]["s_per_iter"] > 0
    # The peak is the fastest of the three matrix-product probes, all of which run here.
    assert set(report["peaks_gflops"]) == {"TensorFlow matmul (default kernels)", "TensorFlow matmul (oneDNN)",
                                           "NumPy sgemm"}
    assert report["matmul_gflops"] == max(report["peaks_gflops"].values()) > 0
