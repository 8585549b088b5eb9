"""Reading and writing video: frames in and out, the frame rate, the audio track.

The decoder and encoder are the ffmpeg binary that the ``imageio-ffmpeg``
wheel ships (no system ffmpeg is needed); nothing else in the project
imports it.  Inputs are anything that ffmpeg reads (mp4, mov, webm, mkv, GIF,
...) or a folder of numbered image frames; outputs are chosen by OUT's suffix
(``.mp4``, ``.mov``, ``.mkv``, ``.webm``, ``.gif``) or, without a suffix, a
new folder of numbered PNG frames.

Every output is written under a hidden temporary name beside its target and
renamed into place when complete, so a failed run leaves nothing behind and
an interrupted one (see :meth:`VideoWriter.finish`) leaves a playable video
of the frames written so far.  Frames are ``uint8 [height, width, 3]`` RGB.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from nst.io.files import FileProblem, check_regular_file, one_line, publish, shown, stat_path
from nst.video.ffmpeg import Encoder, failure_of, last_error_line, run_ffmpeg

FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_FOLDER_FPS = Fraction(25)  # a folder of frames carries no frame rate
PROBE_TIMEOUT_S = 60
# Output suffix -> (video encoder, its options, pixel format, audio encoder or None).
# x264 at CRF 18 is visually lossless for these pictures; VP9 in its real-time mode
# keeps encoding a small share of the run's time; a GIF is made from a lossless
# intermediate (FFV1) with its own palette when the run ends.
CONTAINERS = {
    ".mp4": ("libx264", ["-crf", "18", "-preset", "veryfast"], "yuv420p", "aac"),
    ".mov": ("libx264", ["-crf", "18", "-preset", "veryfast"], "yuv420p", "aac"),
    ".mkv": ("libx264", ["-crf", "18", "-preset", "veryfast"], "yuv420p", "aac"),
    ".webm": ("libvpx-vp9", ["-crf", "32", "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8"],
              "yuv420p", "libopus"),
    ".gif": ("ffv1", [], "yuv444p", None),
}
# A folder of frames carries no rate and no sound, so an output folder gets a sidecar beside its
# frames: SIDECAR_NAME (JSON: fps as an exact fraction, frame count, the audio file's name or null)
# and the input's audio track, stream-copied into SIDECAR_AUDIO (Matroska audio holds any codec).
# Reading that folder back picks both up, so `nst video FOLDER STYLE -o out.mp4` rebuilds the clip.
SIDECAR_NAME = "video.json"
SIDECAR_AUDIO = "audio.mka"
GIF_PALETTE_FILTER = "[0:v]split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse"
AUDIO_BITRATE = "160k"


class VideoError(FileProblem):
    """A user-facing problem with a video input or output (one line, says what to do)."""


# --------------------------------------------------------------------------
# Input


@dataclass
class Clip:
    """What is known of an input before its frames are read.

    ``fps`` is exact (a Fraction, 30000/1001 stays so); ``frames`` is an estimate
    from the duration (for the progress bar), None where unknown.
    """

    path: Path
    is_folder: bool
    fps: Fraction
    frames: Optional[int]
    has_audio: bool
    width: int
    height: int
    start: float = 0.0
    duration: Optional[float] = None
    frame_files: tuple = ()


def _parse_probe(path: Path, stderr: str) -> tuple:
    """(fps, duration seconds or None, has_audio, width, height) from ``ffmpeg -i``'s report."""
    if "Input #0" not in stderr:
        raise VideoError(f"{shown(path)} is not a video ffmpeg can read, or is damaged "
                         f"({last_error_line(stderr)}); give an mp4, mov, webm, mkv or GIF file, "
                         f"or a folder of numbered frames")
    video_lines = [line for line in stderr.splitlines() if re.search(r"Stream #.*: Video: ", line)]
    if not video_lines:
        raise VideoError(f"{shown(path)} has no video stream; give a video file")
    line = video_lines[0]
    size = re.search(r" (\d{1,5})x(\d{1,5})[ ,\]]", line)
    if size is None:
        raise VideoError(f"{shown(path)}: its video stream has no frame size (unknown or damaged codec); "
                         f"re-encode it, e.g. to H.264 mp4")
    rate = re.search(r" (\d+(?:\.\d+)?)k? fps", line) or re.search(r" (\d+(?:\.\d+)?)k? tbr", line)
    fps = Fraction(rate.group(1)).limit_denominator(1001) if rate else Fraction(0)
    if "k fps" in line or "k tbr" in line or not 0 < fps <= 1000:
        fps = DEFAULT_FOLDER_FPS  # a still image or an odd timebase: a sane rate for the output
    duration = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", stderr)
    seconds = (int(duration.group(1)) * 3600 + int(duration.group(2)) * 60 + float(duration.group(3))
               if duration else None)
    has_audio = re.search(r"Stream #.*: Audio: ", stderr) is not None
    return fps, seconds, has_audio, int(size.group(1)), int(size.group(2))


def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _open_folder(folder: Path, fps: Optional[Fraction]) -> Clip:
    from nst.io.images import ImageError, read_rgb

    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS),
                   key=_natural_key)
    if not files:
        raise VideoError(f"folder {shown(folder)} holds no frames ({', '.join(FRAME_EXTENSIONS)}); "
                         f"give a video file or a folder of numbered images")
    try:
        first = read_rgb(files[0])
    except ImageError as error:
        raise VideoError(str(error)) from None
    sidecar = read_sidecar(folder)
    return Clip(folder, True, fps or sidecar.get("fps") or DEFAULT_FOLDER_FPS, len(files), sidecar["has_audio"],
                first.shape[1], first.shape[0], frame_files=tuple(files))


def read_sidecar(folder: Path) -> dict:
    """{"fps": Fraction or None, "has_audio": bool} from a frame folder's SIDECAR_NAME (none: nothing known)."""
    path = Path(folder) / SIDECAR_NAME
    if not path.is_file():
        return {"fps": None, "has_audio": False}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        fps = Fraction(record["fps"]) if record.get("fps") is not None else None
        audio = record.get("audio")
    except (OSError, ValueError, TypeError, KeyError, ZeroDivisionError, AttributeError) as error:
        raise VideoError(f"{shown(path)} is not a valid sidecar ({one_line(str(error))}); fix or remove it, "
                         f"and give --fps") from None
    if fps is not None and not 0 < fps <= 1000:
        raise VideoError(f"{shown(path)} gives a frame rate of {fps}; fix or remove it, and give --fps")
    has_audio = audio == SIDECAR_AUDIO and (Path(folder) / SIDECAR_AUDIO).is_file()
    return {"fps": fps, "has_audio": has_audio}


def _write_sidecar(folder: Path, fps: Fraction, frames: int, audio: Optional["AudioSource"]) -> None:
    """The rate, the frame count and (if ``audio``) the sound of the frames written, into ``folder``."""
    sound = None
    if audio is not None:
        seconds = frames / fps
        done = run_ffmpeg(["-y", "-v", "error", "-ss", f"{audio.start:.6f}", "-t", f"{float(seconds):.6f}",
                            "-i", str(audio.path), "-map", "0:a:0", "-vn", "-c:a", "copy",
                            str(folder / SIDECAR_AUDIO)])
        if done.returncode != 0:
            raise failure_of(done.stderr, folder, "ffmpeg could not copy the sound beside the frames")
        sound = SIDECAR_AUDIO
    record = {"fps": str(fps), "frames": frames, "audio": sound, "written_by": "nst video"}
    (folder / SIDECAR_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def open_clip(path, fps: Optional[Fraction] = None) -> Clip:
    """Look at ``path`` (a video file or a folder of frames) without decoding it; raise VideoError if unusable.

    ``fps`` overrides the frame rate (a folder of frames has none of its own).
    """
    path = Path(path)
    info = stat_path(path, "input", error=VideoError)
    if info is not None and os.path.isdir(path):
        return _open_folder(path, fps)
    check_regular_file(path, "input video", hint="give a video file or a folder of frames", error=VideoError)
    try:
        report = run_ffmpeg(["-i", str(path)], timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise VideoError(f"ffmpeg took over {PROBE_TIMEOUT_S} s to open {shown(path)}; is it a video?") from None
    rate, seconds, has_audio, width, height = _parse_probe(path, report.stderr)
    rate = fps or rate
    frames = round(seconds * rate) if seconds else None
    return Clip(path, False, rate, frames, has_audio, width, height, duration=seconds)


def even_size(width: int, height: int, long_side: int = 0) -> tuple:
    """(width, height) scaled to ``long_side`` (0: as is), both even (the yuv420p encoders need it)."""
    if long_side:
        scale = long_side / max(width, height)
        width, height = width * scale, height * scale
    return max(2, int(round(width / 2)) * 2), max(2, int(round(height / 2)) * 2)


def trim(clip: Clip, start: float = 0.0, duration: Optional[float] = None,
         max_frames: Optional[int] = None) -> Clip:
    """The same clip limited to ``duration`` seconds from ``start`` and at most ``max_frames`` frames."""
    from dataclasses import replace

    known = clip.duration if not clip.is_folder else (clip.frames / clip.fps if clip.frames else None)
    if known is not None and start >= known:
        raise VideoError(f"--start {start:g} s is at or past the end of {shown(clip.path)} ({known:.2f} s long)")
    left = None if known is None else known - start
    if duration is not None:
        left = duration if left is None else min(left, duration)
    frames = None if left is None else max(1, int(round(left * clip.fps)))
    if max_frames:
        frames = max_frames if frames is None else min(frames, max_frames)
    files = clip.frame_files
    if clip.is_folder:
        first = int(round(start * clip.fps))
        files = files[first:first + frames] if frames else files[first:]
    return replace(clip, start=start, duration=duration, frames=frames, frame_files=files)


def read_frames(clip: Clip, width: int, height: int) -> Iterator[np.ndarray]:
    """Decode ``clip``'s frames (after :func:`trim`) scaled to ``width`` x ``height``: uint8 [h, w, 3] each."""
    if clip.is_folder:
        yield from _read_folder(clip, width, height)
        return
    import logging

    import imageio_ffmpeg

    # imageio-ffmpeg warns whenever the frames are scaled, which here is on purpose.
    logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)
    before_input = ["-ss", f"{clip.start:.6f}"] if clip.start else []
    if clip.duration is not None:
        before_input += ["-t", f"{clip.duration:.6f}"]
    after = ["-vf", f"scale={width}:{height}:flags=area", "-an", "-sn"]
    if clip.frames is not None:
        after += ["-frames:v", str(clip.frames)]
    reader = imageio_ffmpeg.read_frames(str(clip.path), input_params=before_input, output_params=after)
    try:
        meta = next(reader)
        if tuple(meta["size"]) != (width, height):
            raise VideoError(f"ffmpeg gave {meta['size']} frames for {shown(clip.path)}, not {width}x{height}")
        for index, data in enumerate(reader):
            yield np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
    except (IOError, RuntimeError, IndexError, StopIteration) as error:
        if isinstance(error, VideoError):
            raise
        raise VideoError(f"could not decode {shown(clip.path)} ({last_error_line(str(error))}); the codec "
                         f"may be unknown or the file damaged: re-encode it, e.g. to H.264 mp4") from None
    finally:
        reader.close()


def check_decodable(clip: Clip, width: int, height: int) -> None:
    """Decode the first frame asked for (after :func:`trim`), or raise VideoError.

    ffmpeg's probe (:func:`open_clip`) reads the container's header only: a file whose
    frames are missing (cut off after the header) or damaged passes it.  Decoding one
    frame here refuses it while the run is still being checked, before any network loads.
    A folder's first frame was read by :func:`open_clip` already.
    """
    if clip.is_folder:
        return
    from dataclasses import replace

    frames = read_frames(replace(clip, frames=1), width, height)
    try:
        if next(frames, None) is None:
            raise VideoError(f"{shown(clip.path)} has no frame ffmpeg can decode in the part asked for; check "
                             f"--start/--duration, or re-encode the file (e.g. to H.264 mp4) if it is damaged")
    finally:
        frames.close()


def _read_folder(clip: Clip, width: int, height: int) -> Iterator[np.ndarray]:
    from nst.io.images import ImageError, read_rgb, resize

    for path in clip.frame_files:
        try:
            frame = read_rgb(path)
        except ImageError as error:
            raise VideoError(str(error)) from None
        if frame.shape[:2] != (clip.height, clip.width):
            raise VideoError(f"frame {shown(path)} is {frame.shape[1]}x{frame.shape[0]}, the first is "
                             f"{clip.width}x{clip.height}; every frame of a folder must have the same size")
        yield resize(frame, width, height)


# --------------------------------------------------------------------------
# Output


def check_output(target, inputs, overwrite: bool = False) -> Path:
    """Fail before any work if ``target`` cannot be written; never let it replace an input."""
    target = Path(target)
    suffix = target.suffix.lower()
    if suffix and suffix not in CONTAINERS:
        raise VideoError(f"output {shown(target)}: unknown video type {suffix!r}; end it in "
                         f"{', '.join(CONTAINERS)}, or give no suffix for a folder of PNG frames")
    folder = target.parent if str(target.parent) else Path(".")
    folder_info = stat_path(folder, "output folder", error=VideoError)
    if folder_info is None or not os.path.isdir(folder):
        raise VideoError(f"output folder {shown(folder)} does not exist; create it first")
    try:
        handle, probe = tempfile.mkstemp(prefix=".nst-probe.", dir=folder)
    except OSError:
        raise VideoError(f"output folder {shown(folder)} is not writable; choose another folder") from None
    os.close(handle)
    os.unlink(probe)
    info = stat_path(target, "output", error=VideoError)
    resolved = target.resolve()
    if any(resolved == Path(p).resolve() for p in inputs):
        raise VideoError(f"output {shown(target)} is one of the inputs; choose another name")
    if info is not None:
        if not suffix:
            raise VideoError(f"output folder {shown(target)} already exists; give a new folder name "
                             f"(frames go to a new folder)")
        if not overwrite:
            raise VideoError(f"output {shown(target)} already exists; pass --overwrite or choose another name")
        if not os.path.isfile(target):
            raise VideoError(f"output {shown(target)} is not a regular file; choose another name")
    return target


@dataclass
class AudioSource:
    """Where the sound comes from: the input file, from ``start`` seconds on.

    A folder of frames stands for the sound file its sidecar names (see SIDECAR_NAME).
    """

    path: Path
    start: float = 0.0

    def __post_init__(self):
        self.path = Path(self.path)
        if self.path.is_dir():
            self.path = self.path / SIDECAR_AUDIO


class VideoWriter:
    """Frames in, one finished file (or folder of frames) out, renamed into place by :meth:`finish`.

    ``audio``: the input's audio track is copied in (re-encoded for the container),
    trimmed to the frames actually written.  A GIF has no sound; a folder of frames gets
    it beside them, with its frame rate, in a sidecar (SIDECAR_NAME).
    """

    def __init__(self, target, width: int, height: int, fps: Fraction, audio: Optional[AudioSource] = None):
        self.target, self.width, self.height, self.fps = Path(target), width, height, Fraction(fps)
        self.audio = audio if self.target.suffix.lower() != ".gif" else None
        self.frames = 0
        self._temporaries: list = []
        self._encoder = None
        if self.target.suffix:
            self._start_encoder()
        else:
            self._folder = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.partial-", dir=self.target.parent))

    def _temporary(self, suffix: str) -> Path:
        handle, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=suffix, dir=self.target.parent)
        os.close(handle)
        self._temporaries.append(Path(name))
        return Path(name)

    def _start_encoder(self) -> None:
        codec, options, pixels, _ = CONTAINERS[self.target.suffix.lower()]
        suffix = ".mkv" if self.target.suffix.lower() == ".gif" else self.target.suffix
        self._encoded = self._temporary(suffix)
        self._encoder = Encoder(self._encoded, self.width, self.height, self.fps, [
            "-c:v", codec, "-pix_fmt", pixels, *options])

    def write(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        if frame.shape != (self.height, self.width, 3):
            raise ValueError(f"frame of shape {frame.shape}, the video is {self.width}x{self.height}")
        if self._encoder is not None:
            self._encoder.send(frame)
        else:
            from nst.io.images import save_rgb

            save_rgb(self._folder / f"frame_{self.frames + 1:06d}.png", frame)
        self.frames += 1

    def finish(self) -> Optional[Path]:
        """Close the encoder, add the sound, rename into place; None (nothing written) if no frame came."""
        if self.frames == 0:
            self.discard()
            return None
        if self._encoder is None:
            _write_sidecar(self._folder, self.fps, self.frames, self.audio)
            os.replace(self._folder, self.target)
            return self.target
        self._encoder.close()  # ffmpeg writes the trailer: the file is complete and playable
        self._encoder = None
        final = self._encoded
        if self.target.suffix.lower() == ".gif":
            final = self._remux(["-filter_complex", GIF_PALETTE_FILTER, "-loop", "0"])
        elif self.audio is not None:
            final = self._remux(self._audio_arguments())
        publish(final, self.target)
        self.discard()
        return self.target

    def _audio_arguments(self) -> list:
        seconds = self.frames / self.fps
        audio_codec = CONTAINERS[self.target.suffix.lower()][3]
        return ["-ss", f"{self.audio.start:.6f}", "-t", f"{float(seconds):.6f}", "-i", str(self.audio.path),
                "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", audio_codec, "-b:a", AUDIO_BITRATE,
                "-shortest"]

    def _remux(self, arguments: list) -> Path:
        result = self._temporary(self.target.suffix)
        done = run_ffmpeg(["-y", "-v", "error", "-i", str(self._encoded), *arguments, str(result)])
        if done.returncode != 0:
            raise failure_of(done.stderr, result.parent, f"ffmpeg could not finish {shown(self.target)}")
        return result

    def discard(self) -> None:
        """Stop the encoder and remove every temporary (called after finish, or instead of it)."""
        if self._encoder is not None:
            self._encoder.kill()  # its file is removed just below: no trailer to wait for
            self._encoder = None
        for path in self._temporaries:
            path.unlink(missing_ok=True)
        self._temporaries = []
        if self._encoder is None and not self.target.suffix and self._folder.exists():
            shutil.rmtree(self._folder, ignore_errors=True)


def describe(path) -> dict:
    """Frame count, frame rate, size and audio of a finished video (decodes it: for tests and benches)."""
    path = Path(path)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS]
        sidecar = read_sidecar(path)
        return {"frames": len(files), "fps": sidecar["fps"], "has_audio": sidecar["has_audio"]}
    clip = open_clip(path)
    count = sum(1 for _ in read_frames(clip, *even_size(clip.width, clip.height)))
    audio = None
    if clip.has_audio:
        report = run_ffmpeg(["-i", str(path), "-map", "0:a:0", "-f", "null", "-"])
        times = re.findall(r"time=(\d+):(\d\d):(\d\d(?:\.\d+)?)", report.stderr)
        audio = int(times[-1][0]) * 3600 + int(times[-1][1]) * 60 + float(times[-1][2]) if times else None
    return {"frames": count, "fps": clip.fps, "has_audio": clip.has_audio, "audio_seconds": audio,
            "size": (clip.width, clip.height)}
