"""The grader's parent side: each graded function is tested in a fresh interpreter of its own.

The worker (:mod:`nst.classroom.grade_cases`) gets its job on stdin and answers
on stdout.  Its pipes are read as bytes (a student may write anything to them)
and only a bounded amount is kept, however much the student prints; a time
limit applies to the student's code, and a scratch folder is its working
directory, so a function that raises, loops forever, crashes the interpreter
or returns the wrong type costs only its own points.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time

from nst.io.files import PROJECT_ROOT

DEFAULT_TIMEOUT = 60.0
STARTUP_TIMEOUT = 300.0  # importing TensorFlow on a loaded 2-core machine
OUTPUT_TAIL_BYTES = 8192  # what is kept of a worker's stderr: enough for the last lines of a traceback
RESULT_LINE_LIMIT = 1 << 20  # a worker's RESULT line is a few KB; anything longer is not the grader's


def _read_lines(stream, lines: queue.Queue):
    """Queue each line of the worker's result channel (decoded), then None at its end.

    A line longer than RESULT_LINE_LIMIT cannot be one of the grader's and is
    skipped in pieces, so it is never held whole.
    """
    try:
        while line := stream.readline(RESULT_LINE_LIMIT):
            if not line.endswith(b"\n") and len(line) == RESULT_LINE_LIMIT:
                while line and not line.endswith(b"\n"):
                    line = stream.readline(RESULT_LINE_LIMIT)
                continue
            lines.put(line.decode("utf-8", errors="replace"))
    except (OSError, ValueError):  # the pipe went away: treated as its end
        pass
    finally:
        lines.put(None)


class _OutputTail:
    """Drains a binary stream to its end in a thread, keeping only its last ``limit`` bytes.

    Draining matters as much as bounding: a worker whose stderr pipe is full
    blocks, and would be reported as timed out.
    """

    def __init__(self, stream, limit: int = OUTPUT_TAIL_BYTES):
        self._stream, self._limit, self._kept = stream, limit, bytearray()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self):
        try:
            while chunk := self._stream.read1(1 << 16):
                self._kept += chunk
                del self._kept[:-self._limit]
        except (OSError, ValueError):
            pass

    def text(self, wait: float = 5.0) -> str:
        """The kept tail, decoded; waits up to ``wait`` s for the stream's end (a grandchild may hold it open)."""
        self._thread.join(wait)
        return bytes(self._kept).decode("utf-8", errors="replace")


def _start_worker(job: str, scratch: str) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    process = subprocess.Popen([sys.executable, "-m", "nst.classroom.grade_cases"], cwd=scratch, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        process.stdin.write(job.encode("utf-8") + b"\n")
        process.stdin.close()
    except BrokenPipeError:  # the worker died before reading its job: reported as such by the caller
        pass
    return process


def _await_result(lines: queue.Queue, token: str, timeout: float) -> tuple[dict | None, dict | None]:
    """(result, None); (None, {"error", "hint"}) on a time-out; (None, None) when the worker ended without a result."""
    deadline, started = time.monotonic() + STARTUP_TIMEOUT, False
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            if not started:  # the grader's problem, not the student's: no hint
                return None, {"error": f"the grader's worker did not start within {STARTUP_TIMEOUT:g} s", "hint": None}
            what = f"timed out: still running after {timeout:g} s (an infinite loop? a very slow computation?); stopped"
            return None, {"error": what, "hint": what}
        if line is None:
            return None, None
        if line.strip() == f"READY {token}":
            started, deadline = True, time.monotonic() + timeout
        elif line.startswith(f"RESULT {token} "):
            return json.loads(line[len(f"RESULT {token} "):]), None


def _stop(process: subprocess.Popen):
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def run_function(name: str, entry: dict, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """Test one extracted function in a fresh interpreter; always returns a result dict."""
    if "error" in entry:
        return {"name": name, "cases": [], "error": entry["error"], "hint": entry["error"]}
    token = secrets.token_hex(8)
    job = json.dumps({"name": name, "source": entry["source"], "helpers": entry["helpers"],
                      "placeholders": entry["placeholders"], "token": token})
    with tempfile.TemporaryDirectory(prefix="nst-grade-") as scratch:
        process = _start_worker(job, scratch)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
        errors = _OutputTail(process.stderr)
        try:
            result, timed_out = _await_result(lines, token, timeout)
        finally:
            _stop(process)
        if timed_out:
            return {"name": name, "cases": [], **timed_out}
        if result is None:
            tail = errors.text().strip().splitlines()[-3:]
            what = f"the process running {name} died (exit status {process.returncode})"
            return {"name": name, "cases": [], "error": what + (": " + " | ".join(tail) if tail else ""),
                    "hint": what}
        result["name"] = name
        return result
