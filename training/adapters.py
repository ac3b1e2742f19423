"""Real-data adapters: AffectNet-layout emotion labels, unlabelled footage.

Each adapter turns its files into the same arrays the synthetic set has (features plus whatever
labels exist, with masks saying which), running perception once per image and caching the
features by the image's sha256. A data source that yields no usable face is an error that names
it; single images without a face are skipped and counted.

* AffectNet: a CSV with AffectNet's columns (`subDirectory_filePath, ..., expression, valence,
  arousal`); codes 0-7 are our emotion order, 8-10 (none, uncertain, no face) are skipped; image
  paths are relative to the CSV's folder. Intensity is not labelled: it is taken as the distance
  of (valence, max(arousal, 0)) from the origin, clipped to [0, 1] (neutral: 0); rows without
  valence/arousal (-2) train the class only. Emotion branch and 2D consistency.
* Unlabelled: a folder of images and/or videos (every `frame_step`-th frame). 2D consistency only.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import FieldsError
from inference.expression.features import FEATURE_VERSION, encoder_input
from inference.files import write_with
from inference.perception.image import ImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm"}


class DataError(FieldsError):
    """A data source is missing, malformed, or yields no usable face."""


@dataclass
class RealData:
    """Features plus optional labels; a mask per label says which rows carry it."""

    features: np.ndarray  # (N, F) float32
    source: str
    expression: np.ndarray | None = None  # (N, n_expr) where scans give it
    jaw: np.ndarray | None = None
    eyelids: np.ndarray | None = None
    gaze: np.ndarray | None = None
    emotion: np.ndarray | None = None  # (N,) int
    intensity: np.ndarray | None = None  # (N,) float, NaN where unknown
    skipped: dict[str, int] = field(default_factory=dict)  # why -> how many rows


class FeatureCache:
    """Perception features of image files (or video frames), computed once, kept by content hash."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._perception: Any = None

    def _perceive(self, image: np.ndarray) -> np.ndarray | None:
        if self._perception is None:
            from inference.perception.pipeline import Perception

            self._perception = Perception(max_faces=1)
        result = self._perception.run(image)
        if not result.faces:
            return None
        return encoder_input(result.faces[0])

    def features(self, image: Path | np.ndarray, key: str | None = None) -> np.ndarray | None:
        if key is None:
            assert isinstance(image, Path)
            key = hashlib.sha256(image.read_bytes()).hexdigest()
        cached = self.folder / f"v{FEATURE_VERSION}" / f"{key}.npy"
        if cached.exists():
            stored = np.load(cached)
            return None if stored.size == 0 else stored
        value = self._perceive(image if isinstance(image, np.ndarray) else _load(image))
        def save(tmp: Path) -> None:
            with tmp.open("wb") as handle:  # an empty array records "no face"
                np.save(handle, np.zeros(0) if value is None else value)

        write_with(cached, save)
        return value


def _load(path: Path) -> np.ndarray:
    from inference.perception.image import load_image

    return load_image(path)


def _features_or_skip(cache: FeatureCache, image: Path, skipped: Counter[str]) -> np.ndarray | None:
    """The image's features, or None (counted in `skipped`) when it is unreadable or shows no face."""
    try:
        value = cache.features(image)
    except ImageError:
        skipped["unreadable"] += 1
        return None
    if value is None:
        skipped["no face"] += 1
    return value


def _usable(features: Sequence[np.ndarray | None], source: str, skipped: Counter[str]) -> np.ndarray:
    kept = [f for f in features if f is not None]
    if not kept:
        detail = ", ".join(f"{count} {why}" for why, count in skipped.items() if count)
        raise DataError(f"Data source '{source}' yields no usable face ({detail or 'no images'})")
    return np.stack(kept).astype(np.float32)


AFFECTNET_COLUMNS = ("subDirectory_filePath", "expression", "valence", "arousal")


def load_affectnet(csv_path: Path, cache: FeatureCache) -> RealData:
    if not csv_path.is_file():
        raise DataError(f"AffectNet CSV '{csv_path}' does not exist")
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in AFFECTNET_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"AffectNet CSV '{csv_path}' lacks the column(s) {', '.join(missing)}")
        records = list(reader)
    features, labels, intensities = [], [], []
    skipped: Counter[str] = Counter()
    for line, record in enumerate(records, start=2):
        try:
            code = int(record["expression"])
            valence, arousal = float(record["valence"]), float(record["arousal"])
        except ValueError:
            raise DataError(f"AffectNet CSV '{csv_path}' line {line}: expression/valence/arousal "
                            "are not numbers") from None
        if not 0 <= code <= 7:
            skipped["not an emotion (codes 8-10)"] += 1
            continue
        value = _features_or_skip(cache, csv_path.parent / record["subDirectory_filePath"], skipped)
        if value is None:
            continue
        features.append(value)
        labels.append(code)
        known = valence > -2 and arousal > -2
        intensity = min(1.0, float(np.hypot(valence, max(arousal, 0.0)))) if known else float("nan")
        intensities.append(0.0 if code == 0 else intensity)
    stacked = _usable(features, str(csv_path), skipped)
    return RealData(features=stacked, source=str(csv_path), emotion=np.array(labels),
                    intensity=np.array(intensities, dtype=np.float32), skipped=skipped)


def load_unlabelled(folder: Path, cache: FeatureCache, frame_step: int = 5) -> RealData:
    if not folder.is_dir():
        raise DataError(f"Unlabelled data folder '{folder}' does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    if not files:
        raise DataError(f"Unlabelled data folder '{folder}' holds no images or videos")
    features: list[np.ndarray | None] = []
    skipped: Counter[str] = Counter()
    for path in files:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            features.append(_features_or_skip(cache, path, skipped))
            continue
        import cv2

        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            skipped["unreadable"] += 1
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % frame_step == 0:
                value = cache.features(np.ascontiguousarray(frame[:, :, ::-1]), key=f"{digest}-{index}")
                if value is None:
                    skipped["no face"] += 1
                features.append(value)
            index += 1
        capture.release()
    return RealData(features=_usable(features, str(folder), skipped), source=str(folder), skipped=skipped)
