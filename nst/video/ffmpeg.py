"""The bundled ffmpeg (the ``imageio-ffmpeg`` wheel's binary): running it, and an encoder fed through a pipe.

Its messages are kept, not printed: a failure becomes one OSError that says what went
wrong, and a full disk says so (see :func:`failure_of`).
"""

from __future__ import annotations

import collections
import errno
import os
import subprocess
import threading
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

from nst.io.files import one_line


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(arguments: list, timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    """Run the bundled ffmpeg in its own process group, so the terminal's Ctrl-C reaches only us."""
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *arguments], capture_output=True,
                          text=True, errors="replace", timeout=timeout, start_new_session=True)


def last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    useful = [line for line in lines if "must be specified" not in line]
    return one_line(useful[-1] if useful else "no message")


def failure_of(stderr: str, folder: Path, what: str) -> OSError:
    """The OSError for an ffmpeg run that failed writing into ``folder``.

    Out of space is told as such (errno ENOSPC or EDQUOT, as a failed Python write would be):
    ffmpeg's last line is often a consequence instead ("Nothing was written into output file,
    because at least one of its streams received no packets"), and a write into the encoder's
    pipe only sees a broken pipe.  ffmpeg prints the system's own text for the errno; a folder
    left with no free block at all counts too.  Anything else: ``what`` and ffmpeg's last line.
    """
    for code in (errno.ENOSPC, errno.EDQUOT):
        if os.strerror(code) in stderr:
            return OSError(code, os.strerror(code))
    try:
        full = os.statvfs(folder).f_bavail == 0
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return OSError(f"{what} ({last_error_line(stderr)})")


class Encoder:
    """The bundled ffmpeg encoding raw RGB frames, sent through a pipe, into ``path``.

    Not imageio-ffmpeg's ``write_frames``: that one lets ffmpeg print on our stderr (raw
    lines such as "Error writing trailer: No space left on device" above the one error
    line) and ignores ffmpeg's exit status when it closes, so a trailer that could not be
    written went unnoticed.  Here ffmpeg's messages are read into memory (the last few
    lines are kept; never a file, which a full disk would refuse) and a failure, in a
    write or at the end, raises the OSError :func:`failure_of` makes of them.
    """

    KEPT_LINES = 40

    def __init__(self, path: Path, width: int, height: int, fps: Fraction, output_arguments: list):
        self.path = Path(path)
        command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", "-f", "rawvideo",
                   "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(Fraction(fps)), "-i", "pipe:0",
                   "-an", *output_arguments, str(self.path)]
        # Its own session, as run_ffmpeg: the terminal's Ctrl-C reaches only us, and we stop after a frame.
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        self.messages: collections.deque = collections.deque(maxlen=self.KEPT_LINES)
        self.reader = threading.Thread(target=self._read_messages, daemon=True)
        self.reader.start()

    def _read_messages(self) -> None:
        for line in self.process.stderr:  # until ffmpeg exits and the pipe closes
            self.messages.append(line.decode("utf-8", errors="replace").rstrip())

    def send(self, frame: np.ndarray) -> None:
        try:
            self.process.stdin.write(memoryview(frame).cast("B"))
        except OSError:  # a broken pipe: ffmpeg has stopped, its messages say why
            self.process.stdin = close_quietly(self.process.stdin)
            raise self._failure() from None

    def close(self) -> None:
        """Let ffmpeg finish the file (its trailer); raise the OSError of a failure."""
        self.process.stdin = close_quietly(self.process.stdin)
        if self.process.wait() != 0:
            raise self._failure()
        self.reader.join()

    def kill(self) -> None:
        self.process.stdin = close_quietly(self.process.stdin)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join()

    def _failure(self) -> OSError:
        self.process.wait()
        self.reader.join()  # every message ffmpeg wrote before it exited
        return failure_of("\n".join(self.messages), self.path.parent, "the encoder stopped")


def close_quietly(stream) -> None:
    """Close a pipe to a process that may have exited (flushing it would raise a broken pipe); None."""
    if stream is not None:
        try:
            stream.close()
        except OSError:
            pass
    return None
