"""Writing files without ever leaving half of one: write beside, then rename.

The one atomic writer of the project: the sequence cache and `--out` files, training's
checkpoints, ONNX and metadata, and the head tools all write through it, so a crash or a full disk
never leaves a file a reader would take for whole. Must not import bpy."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    write_with(path, lambda tmp: tmp.write_bytes(data))


def write_with(path: Path, writer: Callable[[Path], object]) -> None:
    """Call `writer(tmp)` on a temporary file in the same folder, then rename it onto `path`;
    on any failure the temporary file is removed and `path` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        writer(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result is an ordinary file
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
