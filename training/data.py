"""Training data: the synthetic set of ICT-head faces (generated once per config, cached) and the
real training people's photos and clip frames, as arrays.

The synthetic cache file name carries a hash of everything that changes the data (data config,
seed, the head's and embedding's sha256, the feature version), so a stale cache is never reused.
Generation is split across processes, one chunk per seed, and each chunk is deterministic on its
own. Real faces come from the perception cache of `training.real_data` (never re-perceived here)
and only from people and clips the committed split does not hold out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.expression.features import GEOMETRY_VERSION
from inference.files import write_with

from .config import DataConfig
from .ict import IctLandmarks
from .synthetic import Batch, generate

CHUNK = 2_000
# The data config's fields that `synthetic.generate` reads: only they key the synthetic cache (the
# real-data fields do not change the synthetic faces).
SYNTHETIC_FIELDS = ("yaw_deg", "pitch_deg", "roll_deg", "landmark_noise_px", "neutral_fraction",
                    "single_unit_fraction")


def _chunk(args: tuple[int, int, dict]) -> dict[str, np.ndarray]:
    count, seed, data = args
    batch = generate(IctLandmarks(), count, seed, DataConfig(**data))
    return dataclasses.asdict(batch)


def synthetic(count: int, seed: int, config: DataConfig, cache: Path, workers: int = 2) -> Batch:
    # Synthetic faces carry the geometry part of the features only (never rendered: no appearance).
    key = json.dumps({"data": {name: getattr(config, name) for name in SYNTHETIC_FIELDS}, "count": count, "seed": seed,
                      "head": IctLandmarks().sha256, "features": GEOMETRY_VERSION,
                      "layout": sorted(Batch.__dataclass_fields__)}, sort_keys=True)
    path = cache / f"synthetic-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path) as stored:
            return Batch(**{name: stored[name] for name in stored.files})
    jobs = [(min(CHUNK, count - start), seed * 100_003 + i, dataclasses.asdict(config))
            for i, start in enumerate(range(0, count, CHUNK))]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_chunk, jobs))
    else:
        parts = [_chunk(job) for job in jobs]
    arrays = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def save(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.savez(handle, **arrays)

    write_with(path, save)
    return Batch(**arrays)


@dataclass
class RealFaces:
    """Real training faces: features, MediaPipe's scores as ARKit units, emotion label or -1."""

    features: np.ndarray  # (N, 4046) float32
    mediapipe: np.ndarray  # (N, 52) ARKit order (tongueOut 0)
    emotion: np.ndarray  # (N,) int64, -1 where unlabelled
    source: str


def real_training_faces(config: DataConfig, log: Any = print) -> RealFaces:
    """The training people's labelled photos plus every `clip_step`-th tracked frame of the training
    clips, read from the perception cache (filled by `training.real_data`); with `config.mirror`,
    each of them mirrored left-right too (`training.augment`)."""
    from inference.expression.features import encoder_features

    from .augment import mirror
    from .readers import mediapipe_arkit
    from .real_data import PerceptionCache, load_clips, load_photos
    from .real_split import load_split

    cache = PerceptionCache(Path(config.real_cache) if config.real_cache else None)
    split = load_split()
    photos = load_photos(cache=cache)
    train = photos.subset(~np.array(split.photo_mask(photos.people)))
    # (landmarks px, scores, image size, appearance, mirrored appearance, emotion) per face
    faces = [(train.landmarks[i], train.scores[i], train.size[i], train.appearance[i], train.appearance_mirrored[i],
              train.emotion[i]) for i in range(len(train))]
    clips = [c for c in load_clips(cache=cache) if c.name not in split.held_out_clips] if config.clip_step else []
    for clip in clips:
        rows = np.flatnonzero(clip.found)[:: config.clip_step]
        faces += [(clip.landmarks[i], clip.scores[i], clip.size, clip.appearance[i], clip.appearance_mirrored[i], -1)
                  for i in rows]
    frames = len(faces) - len(train)
    if config.mirror:
        faces += [(*mirror(landmarks, scores, float(size[0])), size, mirrored, appearance, label)
                  for landmarks, scores, size, appearance, mirrored, label in faces]
    features = np.stack([encoder_features(landmarks, scores, int(size[0]), int(size[1]), appearance)
                         for landmarks, scores, size, appearance, _, _ in faces])
    scores = np.stack([face[1] for face in faces])
    out = RealFaces(features.astype(np.float32), mediapipe_arkit(scores),
                    np.array([face[5] for face in faces], dtype=np.int64),
                    f"{len(train)} photos of {len(set(train.people))} training people, "
                    f"{frames} frames of {len(clips)} training clips{', each also mirrored' if config.mirror else ''}")
    if cache.files_perceived:
        log(f"data: warning, {cache.files_perceived} files were perceived (the cache was not full)")
    return out
