"""Loading photos and frames into one form: an RGB uint8 array (H, W, 3), upright.

Every source the perception stage accepts goes through `load_image`: a path (any format OpenCV
decodes, EXIF orientation applied, grayscale, RGBA, 16-bit and CMYK converted) or an array
(grayscale, RGB, RGBA; uint8, uint16 or float in [0, 1]). A file that cannot be used raises one
`ImageError` naming it. Decoding goes through `cv2.imdecode` on the file's bytes so that
non-ASCII paths work on Windows and a truncated file can be told from a valid one (OpenCV only
warns about a JPEG missing its end marker and fills the rest grey). Must not import bpy, and must
not resize: callers keep full-resolution coordinates.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ImageError

ImageSource = str | os.PathLike[str] | np.ndarray


def _check_complete(path: Path, data: bytes) -> None:
    """Raise when a JPEG or PNG stops before its end marker (an interrupted download or copy)."""
    if data[:3] == b"\xff\xd8\xff" and b"\xff\xd9" not in data[-65536:]:
        raise ImageError(path, "is truncated: the JPEG data stops before its end marker.")
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-4096:]:
        raise ImageError(path, "is truncated: the PNG data stops before its IEND chunk.")


def to_rgb8(array: np.ndarray, name: str = "<array>") -> np.ndarray:
    """An (H, W, 3) uint8 RGB copy of a grayscale, RGB or RGBA array (alpha dropped)."""
    image = np.asarray(array)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)) or min(image.shape[:2]) < 1:
        raise ImageError(name, f"has shape {image.shape}; expected (H, W), (H, W, 3) or (H, W, 4).")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError(name, f"has pixel type {image.dtype}; expected uint8, uint16 or float.")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def load_image(source: ImageSource) -> np.ndarray:
    """The image as (H, W, 3) uint8 RGB, upright. Raises `ImageError` naming the file."""
    if isinstance(source, np.ndarray):
        return to_rgb8(source)
    import cv2

    path = Path(source)
    if not path.exists():
        raise ImageError(path, "does not exist.")
    if path.is_dir():
        raise ImageError(path, "is a folder, not an image file.")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageError(path, f"cannot be read ({error.strerror or error}).") from error
    if not data:
        raise ImageError(path, "is empty (0 bytes).")
    _check_complete(path, data)
    # ANYDEPTH|ANYCOLOR keeps 16-bit and grayscale as they are and still applies EXIF orientation
    # (only IMREAD_UNCHANGED ignores it); CMYK JPEGs come back as BGR.
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if decoded is None or decoded.size == 0:
        raise ImageError(path, "is not an image in a format OpenCV can read (JPEG, PNG, TIFF, WebP, BMP...).")
    if decoded.ndim == 3:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB if decoded.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    try:
        return to_rgb8(decoded, str(path))
    except ImageError as error:
        raise ImageError(path, error.problem) from None
