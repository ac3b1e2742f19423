"""Frame sources for sequences: a video file or a folder of numbered images, read one frame at a time.

`open_source(path, start, end, step)` returns a `VideoSource` (OpenCV `VideoCapture`) or a
`FolderSource` (images in natural order, `frame2` before `frame10`); iterating either yields
`Frame(number, image, problem)` for each selected source frame, decoding only that frame, so a
clip is never held in memory. Frame numbers are source positions counted from 0 (a folder's
numbering is its natural order, not the digits in the names); `end` is inclusive, like Blender's
frame ranges. A frame that cannot be decoded in the middle of a source comes out with
`image=None` and a `problem`, never an exception; a source that cannot be used at all raises
`SequenceError` naming it. Must not import bpy, and must not read more than one frame ahead.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageError, SequenceError
from ..perception.image import load_image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".mxf", ".ogv", ".3gp", ".ts", ".mts", ".m2ts"})
DEFAULT_FPS = 24.0  # Blender's default scene rate, for folders (and videos that do not say)
# A video read that fails is retried this many times before the clip is taken to have ended:
# FFmpeg skips an undecodable packet by itself, so a failing read is nearly always the end.
MAX_CONSECUTIVE_FAILURES = 25

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders digit runs by value: frame2 < frame10 < Frame11 (case-insensitive).

    Written here (nine lines) rather than taking `natsort` as a dependency: the extension ships
    no pure-Python wheels it can avoid. `re.split` with a group alternates text and digit runs,
    so positions always compare like with like; the name itself breaks ties (frame01 vs frame1)."""
    parts = _DIGITS.split(name)
    return (tuple(int(part) if i % 2 else part.casefold() for i, part in enumerate(parts)), name)


@dataclass
class Frame:
    number: int  # source frame, from 0
    image: np.ndarray | None  # (H, W, 3) uint8 RGB, or None when the frame could not be decoded
    problem: str | None = None  # why `image` is None (one sentence naming the file or frame)


def _check_range(start: int, end: int | None, step: int) -> None:
    if start < 0 or step < 1 or (end is not None and end < start):
        raise ValueError(f"frame range start={start}, end={end}, step={step} is not valid: "
                         "start >= 0, end >= start (or None for the last frame), step >= 1.")


class FolderSource:
    """Images in a folder, natural order; hidden files and non-image files are ignored."""

    kind = "folder"

    def __init__(self, path: str | os.PathLike[str], start: int = 0, end: int | None = None, step: int = 1,
                 fps: float = DEFAULT_FPS, like: str | None = None) -> None:
        """`like`: one file name of a numbered sequence (e.g. shot_0001.png); only the images named
        like it (shot_<digits>.png) are read, as Blender's image sequences do."""
        _check_range(start, end, step)
        self.path = Path(path)
        if not self.path.exists():
            raise SequenceError(self.path, "does not exist.", kind="Image folder")
        if not self.path.is_dir():
            raise SequenceError(self.path, "is not a folder.", kind="Image folder")
        try:
            names = [entry.name for entry in os.scandir(self.path)
                     if not entry.name.startswith(".") and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
                     and entry.is_file()]
        except OSError as error:
            raise SequenceError(self.path, f"cannot be listed ({error.strerror or error}).",
                                kind="Image folder") from error
        if like is not None:
            names = [name for name in names if sequence_pattern(like).fullmatch(name)]
        if not names:
            looked = f"images named like '{like}'" if like else ", ".join(sorted(IMAGE_SUFFIXES))
            raise SequenceError(self.path, f"holds no images (looked for {looked}).", kind="Image folder")
        self.files = [self.path / name for name in sorted(names, key=natural_key)]
        last = len(self.files) - 1
        if start > last:
            raise SequenceError(self.path, f"has {len(self.files)} images; the range starts at frame {start} "
                                f"(frames count from 0).", kind="Image folder")
        self.numbers = list(range(start, min(last, end if end is not None else last) + 1, step))
        self.start, self.end, self.step, self.fps = start, end, step, float(fps)
        self.fps_from_source = False
        self.width = self.height = 0  # known after the first readable frame

    @property
    def total(self) -> int | None:
        return len(self.numbers)

    def __iter__(self) -> Iterator[Frame]:
        size: tuple[int, ...] | None = None
        first: Path | None = None
        for number in self.numbers:
            path = self.files[number]
            try:
                image = load_image(path)
            except ImageError as error:
                yield Frame(number, None, str(error))
                continue
            if size is None:
                size, first = image.shape[:2], path
                self.height, self.width = image.shape[:2]
            elif image.shape[:2] != size:
                raise SequenceError(path, f"is {image.shape[1]}x{image.shape[0]} but the sequence started "
                                    f"at {size[1]}x{size[0]} ('{first}'); every image must be the same size.",
                                    kind="Frame")
            yield Frame(number, image)

    def identity(self) -> dict[str, Any]:
        """What the cache is keyed on: the folder and every image's name, size and modification time."""
        digest = hashlib.sha256()
        for path in self.files:
            stat = path.stat()
            digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return {"kind": self.kind, "path": str(self.path.resolve()), "files": digest.hexdigest()}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "images": len(self.files), "start": self.start,
                "end": self.numbers[-1], "step": self.step, "fps": self.fps, "fps_from_source": False,
                "first": self.files[self.numbers[0]].name, "last": self.files[self.numbers[-1]].name}


class VideoSource:
    """A video file through OpenCV's `VideoCapture` (FFmpeg on every platform Blender runs on)."""

    kind = "video"

    def __init__(self, path: str | os.PathLike[str], start: int = 0, end: int | None = None, step: int = 1,
                 fps: float | None = None) -> None:
        import cv2

        _check_range(start, end, step)
        self.path = Path(path)
        if not self.path.exists():
            raise SequenceError(self.path, "does not exist.", kind="Video")
        if self.path.is_dir():
            raise SequenceError(self.path, "is a folder, not a video file.", kind="Video")
        capture = cv2.VideoCapture(str(self.path))
        try:
            opened = capture.isOpened()
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if opened else 0
            rate = float(capture.get(cv2.CAP_PROP_FPS)) if opened else 0.0
            self.width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) if opened else 0
            self.height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) if opened else 0
            readable = opened and capture.grab()
        finally:
            capture.release()
        if not opened:
            raise SequenceError(self.path, "cannot be opened as a video (not a video file, damaged, or in a "
                                "codec OpenCV's FFmpeg cannot decode).", kind="Video")
        if not readable:
            raise SequenceError(self.path, "opens but no frame in it can be decoded.", kind="Video")
        # The container's frame count can be missing (streams) or approximate; it only sizes the
        # progress bar and checks the range's start, iteration reads until the decoder stops.
        self.frame_count = count if count > 0 else None
        if self.frame_count is not None and start >= self.frame_count:
            raise SequenceError(self.path, f"has {self.frame_count} frames; the range starts at frame {start} "
                                "(frames count from 0).", kind="Video")
        self.fps_from_source = bool(fps is None and rate > 0 and np.isfinite(rate))
        self.fps = float(fps) if fps is not None else (rate if self.fps_from_source else DEFAULT_FPS)
        self.start, self.end, self.step = start, end, step

    @property
    def total(self) -> int | None:
        last = self.end if self.frame_count is None else min(self.end if self.end is not None else 1 << 62,
                                                               self.frame_count - 1)
        return None if last is None else len(range(self.start, last + 1, self.step))

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        try:
            number = 0
            if self.start:
                # Seek, and trust it only if the backend says it landed; otherwise decode forward.
                capture.set(cv2.CAP_PROP_POS_FRAMES, self.start)
                if int(capture.get(cv2.CAP_PROP_POS_FRAMES)) == self.start:
                    number = self.start
                else:
                    capture.release()
                    capture = cv2.VideoCapture(str(self.path))
            failures: list[int] = []
            while self.end is None or number <= self.end:
                wanted = number >= self.start and (number - self.start) % self.step == 0
                ok = capture.grab()
                if ok and wanted:
                    ok, bgr = capture.retrieve()
                if not ok:
                    failures.append(number)
                    if len(failures) > MAX_CONSECUTIVE_FAILURES:
                        break  # the clip has ended (failures at the end are not frames)
                    number += 1
                    continue
                for lost in failures:  # a good frame after failures: those were corrupt frames
                    if lost >= self.start and (lost - self.start) % self.step == 0:
                        yield Frame(lost, None, f"Frame {lost} of video '{self.path}' could not be decoded.")
                failures = []
                if wanted:
                    yield Frame(number, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                number += 1
        finally:
            capture.release()

    def identity(self) -> dict[str, Any]:
        """The file's resolved path, size and modification time: cheap for multi-gigabyte clips, and
        an edit rewrites the file and so changes the time."""
        stat = self.path.stat()
        return {"kind": self.kind, "path": str(self.path.resolve()), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "frame_count": self.frame_count, "start": self.start,
                "end": self.end, "step": self.step, "fps": self.fps, "fps_from_source": self.fps_from_source,
                "width": self.width, "height": self.height}


FrameSource = FolderSource | VideoSource


def sequence_pattern(name: str) -> re.Pattern[str]:
    """The names of the numbered sequence `name` belongs to: its text before the last run of digits,
    any digits, and its text after (shot_0001.png -> shot_<digits>.png)."""
    match = re.fullmatch(r"(.*?)(\d+)(\D*)", name)
    if match is None:
        return re.compile(re.escape(name))
    return re.compile(re.escape(match.group(1)) + r"\d+" + re.escape(match.group(3)))


def open_source(path: str | os.PathLike[str], start: int = 0, end: int | None = None, step: int = 1,
                fps: float | None = None) -> FrameSource:
    """A folder becomes a `FolderSource`, anything else a `VideoSource`. `fps` overrides the video's
    own rate; a folder has none and uses `fps` or DEFAULT_FPS."""
    if Path(path).is_dir():
        return FolderSource(path, start, end, step, fps if fps is not None else DEFAULT_FPS)
    return VideoSource(path, start, end, step, fps)


def is_sequence_path(path: str | os.PathLike[str]) -> bool:
    """A folder, or a file whose suffix names a video container (what the command line treats as a sequence)."""
    p = Path(path)
    return p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES
