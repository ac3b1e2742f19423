"""Real data in its own layout: the labelled photos of `expressions-in-the-wild` and the unlabelled
`talking-clips`, read through our own perception once and cached by each file's sha256.

`PerceptionCache` keeps, per photo, what `inference.perception.Perception` saw (478 landmarks in
pixels, MediaPipe's 52 scores, the facial transformation matrix, the appearance, image size,
detector score, or "no face"; plus the appearance of the mirrored crop, for training's mirrored
faces), and per clip what `Tracker` saw frame by frame (plus frame numbers, times and fps), as
small .npz files written atomically under a cache folder outside the repository (default
`~/.cache/fields/real`, or `$FIELDS_REAL_CACHE`). A second run reads them and builds no network:
`cache.networks_built` says so. `load_photos` / `load_clips` give arrays ready for training and
measurement (the encoder's features come from `PhotoSet.features()`), with photos lacking a face
skipped and counted. The person split lives in `training/real_split.py`. Must not import bpy and
must never copy the data into the repository.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inference.expression.features import N_BLENDSHAPES, N_FEATURES, encoder_features
from inference.files import write_with
from inference.perception.landmarks import N_APPEARANCE, N_LANDMARKS

from .adapters import DataError, RealData
from .model import EMOTIONS

CACHE_VERSION = 2  # bump when what is stored per file changes
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
PHOTOS = "expressions-in-the-wild"
CLIPS = "talking-clips"
LABEL_COLUMNS = ("image", "emotion", "contributor")
_TRAILING_NUMBER = re.compile(r"_?\d+[a-z]?$")


def data_root() -> Path:
    """`$FIELDS_DATA`, else `../shared/data` beside the repository (where the data README puts it)."""
    return Path(os.environ.get("FIELDS_DATA", SHARED_DATA))


def default_cache() -> Path:
    return Path(os.environ.get("FIELDS_REAL_CACHE", Path.home() / ".cache" / "fields" / "real"))


def person_of(image_name: str) -> str:
    """The person a photo shows: its file name before the trailing number (`George_W_Bush_0123.jpg`)."""
    return _TRAILING_NUMBER.sub("", Path(image_name).stem) or Path(image_name).stem


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class PerceptionCache:
    """Perception results of whole files, kept by content hash; networks are built on first need."""

    def __init__(self, folder: Path | None = None, perception: Any = None) -> None:
        self.folder = (folder or default_cache()) / f"v{CACHE_VERSION}"
        self._perception = perception
        self.networks_built = 0  # Perception objects this cache had to build
        self.files_perceived = 0  # photos and clips that went through the networks

    @property
    def perception(self) -> Any:
        if self._perception is None:
            from inference.perception.pipeline import Perception

            self._perception = Perception(max_faces=1)
            self.networks_built += 1
        return self._perception

    def read_entry(self, path: Path) -> dict[str, np.ndarray] | None:
        """The arrays of a cache entry, or None when it is missing or damaged."""
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {key: stored[key] for key in stored.files}
        except (OSError, ValueError, EOFError):
            return None  # a damaged entry is recomputed, never trusted

    def write_entry(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        """Write an entry atomically (temporary file, then rename)."""
        def save(tmp: Path) -> None:
            with tmp.open("wb") as handle:
                np.savez(handle, **arrays)  # type: ignore[arg-type]

        write_with(path, save)

    def mirrored_appearance(self, image: np.ndarray, face: Any) -> np.ndarray:
        """(2560,) the appearance the landmark network gives the face's crop mirrored left-right."""
        landmarker = self.perception.landmarker
        crop = np.ascontiguousarray(landmarker.crops(image, [face.roi])[:, :, ::-1])
        return np.asarray(landmarker.session.run(["appearance"], {landmarker.session.get_inputs()[0].name: crop})[0][0])

    def photo(self, path: Path, digest: str | None = None) -> dict[str, np.ndarray]:
        """`found` (bool) and, when found, `landmarks` (478, 3) px, `scores` (52,), `matrix` (4, 4),
        `appearance` and `appearance_mirrored` (2560,), `size` (width, height), `detector_score`,
        `presence`. Raises ImageError on unreadable files."""
        digest = digest or sha256_of(path)
        entry = self.folder / "photos" / digest[:2] / f"{digest}.npz"
        cached = self.read_entry(entry)
        if cached is not None:
            return cached
        from inference.perception.image import load_image

        image = load_image(path)
        result = self.perception.run(image)
        self.files_perceived += 1
        arrays: dict[str, np.ndarray] = {"found": np.array(bool(result.faces)),
                                         "size": np.array([result.width, result.height], np.int32)}
        if result.faces:
            face = result.faces[0]
            arrays.update(landmarks=face.landmarks_px.astype(np.float32),
                          scores=face.scores.astype(np.float32),
                          matrix=face.matrix.astype(np.float32), detector_score=np.array(face.score, np.float32),
                          presence=np.array(face.presence, np.float32), appearance=face.appearance.astype(np.float32),
                          appearance_mirrored=self.mirrored_appearance(image, face).astype(np.float32))
        self.write_entry(entry, arrays)
        return arrays

    def clip(self, path: Path, digest: str | None = None) -> dict[str, np.ndarray]:
        """Per frame (T rows): `frames`, `times` (s), `found`, `landmarks` (T, 478, 3) px (NaN where
        no face), `scores` (T, 52), `matrix` (T, 4, 4), `appearance` and `appearance_mirrored` (T, 2560),
        `detector_score`; plus `fps` and `size`."""
        digest = digest or sha256_of(path)
        entry = self.folder / "clips" / f"{digest}.npz"
        cached = self.read_entry(entry)
        if cached is not None:
            return cached
        from inference.perception.pipeline import Tracker
        from inference.sequence.frames import VideoSource

        source = VideoSource(path)
        tracker = Tracker(self.perception, max_faces=1)
        rows: dict[str, list[Any]] = {k: [] for k in ("frames", "found", "landmarks", "scores", "matrix", "score",
                                                      "appearance", "appearance_mirrored")}
        for frame in source:
            if frame.image is None:
                tracker.reset()  # the chain of crops is broken: the face may have moved
                faces = []
            else:
                faces = tracker.run(frame.image).faces
            rows["frames"].append(frame.number)
            rows["found"].append(bool(faces))
            face = faces[0] if faces else None
            rows["landmarks"].append(face.landmarks_px if face else np.full((N_LANDMARKS, 3), np.nan))
            rows["scores"].append(face.scores.astype(np.float64) if face
                                  else np.full(N_BLENDSHAPES, np.nan))
            rows["matrix"].append(face.matrix if face else np.full((4, 4), np.nan))
            rows["score"].append(face.score if face else np.nan)
            rows["appearance"].append(face.appearance if face else np.full(N_APPEARANCE, np.nan))
            rows["appearance_mirrored"].append(self.mirrored_appearance(frame.image, face)
                                               if face and frame.image is not None
                                               else np.full(N_APPEARANCE, np.nan))
        self.files_perceived += 1
        frames = np.array(rows["frames"], np.int64)
        arrays = {"frames": frames, "times": frames / source.fps, "fps": np.array(source.fps),
                  "found": np.array(rows["found"]), "landmarks": np.array(rows["landmarks"], np.float32),
                  "scores": np.array(rows["scores"], np.float32), "matrix": np.array(rows["matrix"], np.float32),
                  "detector_score": np.array(rows["score"], np.float32),
                  "appearance": np.array(rows["appearance"], np.float32),
                  "appearance_mirrored": np.array(rows["appearance_mirrored"], np.float32),
                  "size": np.array([source.width, source.height], np.int32)}
        self.write_entry(entry, arrays)
        return arrays


@dataclass
class PhotoSet:
    """Photos with a face, row-aligned arrays; `emotion` indexes `training.model.EMOTIONS`."""

    names: list[str]
    people: list[str]
    emotion: np.ndarray  # (N,) int64
    contributor: list[str]
    landmarks: np.ndarray  # (N, 478, 3) float32, pixels
    scores: np.ndarray  # (N, 52) float32, MediaPipe's order (`_neutral` first)
    matrix: np.ndarray  # (N, 4, 4) float32
    appearance: np.ndarray  # (N, 2560) float32
    appearance_mirrored: np.ndarray  # (N, 2560) float32: of the face's crop mirrored (training's mirrored faces)
    size: np.ndarray  # (N, 2) int32 width, height
    detector_score: np.ndarray  # (N,) float32
    skipped: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, rows: np.ndarray) -> PhotoSet:
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        pick = [int(i) for i in rows]
        return PhotoSet([self.names[i] for i in pick], [self.people[i] for i in pick], self.emotion[rows],
                        [self.contributor[i] for i in pick], self.landmarks[rows], self.scores[rows],
                        self.matrix[rows], self.appearance[rows], self.appearance_mirrored[rows], self.size[rows],
                        self.detector_score[rows], Counter(self.skipped))

    def features(self) -> np.ndarray:
        """(N, 4046) encoder features, computed the one way training and inference share."""
        if not len(self):
            return np.zeros((0, N_FEATURES), np.float32)
        return np.stack([encoder_features(self.landmarks[i], self.scores[i], int(self.size[i, 0]),
                                          int(self.size[i, 1]), self.appearance[i]) for i in range(len(self))])

    def to_real_data(self, source: str = PHOTOS) -> RealData:
        """These photos as a training source of `training.train` (emotion labels; intensity is not
        labelled, so 0 for neutral and unknown otherwise). Pass only training people's photos."""
        intensity = np.where(self.emotion == EMOTIONS.index("neutral"), 0.0, np.nan).astype(np.float32)
        return RealData(features=self.features(), source=source, emotion=self.emotion.copy(), intensity=intensity,
                        skipped=dict(self.skipped))


@dataclass
class Clip:
    name: str  # file stem, e.g. "d6"
    fps: float
    frames: np.ndarray  # (T,) int64
    times: np.ndarray  # (T,) seconds
    found: np.ndarray  # (T,) bool
    landmarks: np.ndarray  # (T, 478, 3) px, NaN where no face
    scores: np.ndarray  # (T, 52), NaN where no face
    matrix: np.ndarray  # (T, 4, 4)
    appearance: np.ndarray  # (T, 2560), NaN where no face
    appearance_mirrored: np.ndarray  # (T, 2560), NaN where no face
    size: np.ndarray  # (2,) width, height

    def features(self) -> np.ndarray:
        """(T, 4046) encoder features, NaN rows where no face was tracked."""
        width, height = int(self.size[0]), int(self.size[1])
        out = np.full((len(self.frames), N_FEATURES), np.nan, np.float32)
        for i in np.flatnonzero(self.found):
            out[i] = encoder_features(self.landmarks[i], self.scores[i], width, height, self.appearance[i])
        return out


def read_labels(csv_path: Path) -> list[tuple[str, int, str]]:
    """(image, emotion index, contributor) per row; a bad row is a DataError naming file and line."""
    if not csv_path.is_file():
        raise DataError(f"Labels file '{csv_path}' does not exist")
    rows = []
    with csv_path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header[:3]) != LABEL_COLUMNS:
            raise DataError(f"Labels file '{csv_path}' line 1: expected the header {','.join(LABEL_COLUMNS)}, "
                            f"found {','.join(header or []) or 'nothing'}")
        for line, record in enumerate(reader, start=2):
            if not record:
                continue
            if len(record) != 3 or not record[0].strip():
                raise DataError(f"Labels file '{csv_path}' line {line}: expected 3 fields "
                                f"(image,emotion,contributor), found {len(record)}")
            emotion = record[1].strip().lower()
            if emotion not in EMOTIONS:
                raise DataError(f"Labels file '{csv_path}' line {line}: unknown emotion '{record[1]}' "
                                f"(expected one of {', '.join(EMOTIONS)})")
            rows.append((record[0].strip(), EMOTIONS.index(emotion), record[2].strip()))
    if not rows:
        raise DataError(f"Labels file '{csv_path}' lists no photos")
    return rows


def load_photos(folder: Path | None = None, cache: PerceptionCache | None = None,
                progress: Any = None) -> PhotoSet:
    """Every labelled photo of `expressions-in-the-wild` (layout: `labels.csv`, `images/`) that
    shows a face; unreadable and face-less photos are skipped and counted in `skipped`."""
    from inference.perception.image import ImageError

    folder = folder or data_root() / PHOTOS
    cache = cache or PerceptionCache()
    labels = read_labels(folder / "labels.csv")
    kept: dict[str, list[Any]] = {k: [] for k in ("names", "emotion", "contributor", "landmarks", "scores",
                                                  "matrix", "appearance", "appearance_mirrored", "size",
                                                  "detector_score")}
    skipped: Counter[str] = Counter()
    for i, (image, emotion, contributor) in enumerate(labels):
        if progress is not None:
            progress(i, len(labels))
        path = folder / "images" / image
        if not path.is_file():
            raise DataError(f"Photo '{path}' is listed in '{folder / 'labels.csv'}' but does not exist")
        try:
            seen = cache.photo(path)
        except ImageError:
            skipped["unreadable"] += 1
            continue
        if not bool(seen["found"]):
            skipped["no face"] += 1
            continue
        for key, value in (("names", image), ("emotion", emotion), ("contributor", contributor),
                           ("landmarks", seen["landmarks"]), ("scores", seen["scores"]), ("matrix", seen["matrix"]),
                           ("appearance", seen["appearance"]), ("appearance_mirrored", seen["appearance_mirrored"]),
                           ("size", seen["size"]), ("detector_score", seen["detector_score"])):
            kept[key].append(value)
    if not kept["names"]:
        raise DataError(f"Photo folder '{folder}' yields no usable face ({dict(skipped)})")
    return PhotoSet(names=kept["names"], people=[person_of(n) for n in kept["names"]],
                    emotion=np.array(kept["emotion"], np.int64), contributor=kept["contributor"],
                    landmarks=np.stack(kept["landmarks"]), scores=np.stack(kept["scores"]),
                    matrix=np.stack(kept["matrix"]), appearance=np.stack(kept["appearance"]),
                    appearance_mirrored=np.stack(kept["appearance_mirrored"]), size=np.stack(kept["size"]),
                    detector_score=np.array(kept["detector_score"], np.float32), skipped=skipped)


def load_clips(folder: Path | None = None, cache: PerceptionCache | None = None,
               names: list[str] | None = None) -> list[Clip]:
    """The talking clips (every `*.mp4` in the folder, or those named), tracked frame by frame."""
    folder = folder or data_root() / CLIPS
    cache = cache or PerceptionCache()
    files = sorted(folder.glob("*.mp4"))
    if names is not None:
        files = [f for f in files if f.stem in names]
        missing = set(names) - {f.stem for f in files}
        if missing:
            raise DataError(f"Clip folder '{folder}' lacks {', '.join(sorted(missing))}")
    if not files:
        raise DataError(f"Clip folder '{folder}' holds no .mp4 clips")
    clips = []
    for path in files:
        seen = cache.clip(path)
        clips.append(Clip(name=path.stem, fps=float(seen["fps"]), frames=seen["frames"], times=seen["times"],
                          found=seen["found"].astype(bool), landmarks=seen["landmarks"], scores=seen["scores"],
                          matrix=seen["matrix"], appearance=seen["appearance"],
                          appearance_mirrored=seen["appearance_mirrored"], size=seen["size"]))
    return clips
