"""Generated clips for the sequence tests and benchmark, all made from the astronaut photo
(`skimage.data.astronaut()`, public domain): nothing is downloaded. Frames are produced one at a
time so long clips never sit in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

_PHOTO: np.ndarray | None = None
CENTRE = (450.0, 260.0)  # the face in the photo enlarged to 1024 px


def photo() -> np.ndarray:
    global _PHOTO
    if _PHOTO is None:
        from skimage import data

        _PHOTO = cv2.resize(data.astronaut(), (1024, 1024), interpolation=cv2.INTER_LINEAR)
    return _PHOTO


def moving_frame(i: int, count: int, size: tuple[int, int] = (640, 480), seed: int = 0,
                 noise: float = 3.0) -> np.ndarray:
    """Frame i of a webcam-like clip: the face (about 190 px wide) drifting and turning slightly,
    with sensor noise (as tools/bench_perception.py makes them)."""
    t = i / max(count - 1, 1)
    matrix = np.asarray(cv2.getRotationMatrix2D(CENTRE, 8 * np.sin(2 * np.pi * t), 1.0), dtype=np.float64)
    matrix[:, 2] += (size[0] / 2 - CENTRE[0] + 60 * np.sin(2 * np.pi * t),
                     size[1] / 2 - 20 - CENTRE[1] + 20 * np.cos(2 * np.pi * t))
    frame = cv2.warpAffine(photo(), matrix, size, borderValue=(96, 110, 120))
    if not noise:
        return frame
    return np.clip(frame + np.random.default_rng(seed + i).normal(0, noise, frame.shape), 0, 255).astype(np.uint8)


def still_frame(i: int, size: tuple[int, int] = (640, 480), seed: int = 0) -> np.ndarray:
    """Frame i of a still-face clip: the same face with a sub-pixel random shift, sensor noise and
    JPEG re-encoding per frame, so any frame-to-frame change in the parameters is measurement jitter."""
    rng = np.random.default_rng(seed + 7919 * i)
    dx, dy = rng.uniform(-0.5, 0.5, 2)
    matrix = np.float64([[1, 0, size[0] / 2 - CENTRE[0] + dx], [0, 1, size[1] / 2 - 20 - CENTRE[1] + dy]])
    frame = cv2.warpAffine(photo(), matrix, size, borderValue=(96, 110, 120))
    frame = np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
    quality = int(rng.integers(80, 95))
    encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    return np.asarray(cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED))


def blank_frame(size: tuple[int, int] = (640, 480)) -> np.ndarray:
    return np.full((size[1], size[0], 3), (96, 110, 120), dtype=np.uint8)


def write_video(path: Path, frames: Iterator[np.ndarray] | list[np.ndarray], fps: float = 25.0) -> Path:
    """An MJPG .avi (OpenCV's built-in encoder: works without any codec installed)."""
    writer: cv2.VideoWriter | None = None
    for frame in frames:
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (frame.shape[1], frame.shape[0]))
            assert writer.isOpened(), path
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    assert writer is not None
    writer.release()
    return path


def write_folder(folder: Path, frames: list[np.ndarray], names: list[str] | None = None) -> list[Path]:
    """Frames as JPEGs named frame1.jpg, frame2.jpg ... frame10.jpg (unpadded: natural order matters)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        path = folder / (names[i] if names else f"frame{i + 1}.jpg")
        assert cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        paths.append(path)
    return paths
