"""Typed errors raised by `inference`, each naming the file it is about.

Callers (the add-on's operators, the command line) show `str(error)` to the user as is, so the
message is one complete sentence that says which file and what is wrong with it.
"""

from __future__ import annotations

import os


class FieldsError(Exception):
    """Base class for every error FIELDS reports to a user."""


class FileProblem(FieldsError):
    """A file could not be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str, kind: str = "File") -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{kind} '{self.path}' {problem}")


class FaceModelError(FileProblem):
    """A face-model (FLAME-format) file is missing, unreadable, unsafe or malformed."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(path, problem, kind="Face model")


class ImageError(FileProblem):
    """An image file is missing, empty, truncated, not an image, or in a format we cannot read."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(path, problem, kind="Image")


class LandmarkEmbeddingError(FileProblem):
    """A landmark-embedding file (e.g. FLAME's `mediapipe_landmark_embedding.npz`) is missing,
    unreadable or does not fit the face model it is meant for."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(path, problem, kind="Landmark embedding")


class SequenceError(FileProblem):
    """A frame source (a video file or a folder of images) cannot be used as a sequence: it does not
    exist, cannot be opened, holds no images, mixes frame sizes, or the frame range lies outside it.
    `kind` says what the path is ("Video", "Image folder", "Frame")."""

    def __init__(self, path: str | os.PathLike[str], problem: str, kind: str = "Sequence") -> None:
        super().__init__(path, problem, kind=kind)


class CacheError(FileProblem):
    """A sequence-result cache file cannot be written (the folder is read-only or full)."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(path, problem, kind="Cache file")
