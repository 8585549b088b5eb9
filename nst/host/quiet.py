"""TensorFlow's C++ start-up lines, kept off the terminal (issue 27's hostile review, issue 31).

TensorFlow 2.21 prints, while it is imported and whatever ``TF_CPP_MIN_LOG_LEVEL`` says (absl's
logging starts before that setting is read), two or four lines that tell a user nothing:

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... port.cc:153] oneDNN custom operations are on. You may see slightly different ...

(twice, once per shared library), or the two-line ``cpu_feature_guard.cc`` notice.  A command
installs :func:`install` first; the first ``import tensorflow`` of the process then runs with
file descriptor 2 on a pipe, and every line but those goes on to the real stderr, in order.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import threading

START_UP = re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                      rb"|[IW]\d{4} [\d:.]+ +\d+ (port|cpu_feature_guard)\.cc:\d+\] .*"
                      rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate "
                      rb"compiler flags\.")


class _Quietly(importlib.abc.Loader):
    """Wraps TensorFlow's loader: its module code runs with descriptor 2 filtered."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with filtered_stderr():
            self.loader.exec_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Quietly(spec.loader)
        return spec


SHOW_LOGS_ENV = "NST_TF_LOG"  # NST_TF_LOG=1: TensorFlow's own log lines reach stderr again


def logs_wanted() -> bool:
    return os.environ.get(SHOW_LOGS_ENV) == "1"


def lower_log_level() -> None:
    """TensorFlow's C++ logging at errors only, unless the user set ``TF_CPP_MIN_LOG_LEVEL`` or asked for
    the logs (``NST_TF_LOG=1``).  Before TensorFlow is imported, or it has no effect."""
    if not logs_wanted():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def install() -> None:
    """Filter TensorFlow's start-up lines when this process first imports it (no-op if it already has,
    or if the user asked for TensorFlow's logs)."""
    lower_log_level()
    if logs_wanted():
        return
    if "tensorflow" not in sys.modules and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


class filtered_stderr:
    """Descriptor 2 on a pipe for the block; a thread passes on every line that is not a start-up line."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self.thread = threading.Thread(target=self._pass_on, args=(read,), daemon=True)
        self.thread.start()
        return self

    def _pass_on(self, read) -> None:
        with os.fdopen(read, "rb") as lines:
            for line in lines:
                if not START_UP.fullmatch(line.rstrip(b"\r\n")):
                    os.write(self.saved, line)

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self.saved, 2)  # closes the pipe's last writer: the thread reads to the end and stops
        self.thread.join()
        os.close(self.saved)
        return False
