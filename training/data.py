"""Training data: the synthetic set (generated once per config, cached) as tensors.

The cache file name carries a hash of everything that changes the data (data config, seed, the
face model's sha256, the feature version), so a stale cache is never reused. Generation is split
across processes, one chunk per seed, and each chunk is deterministic on its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from inference.expression.features import FEATURE_VERSION
from inference.files import write_with
from inference.head.default_head import HEAD_FILE, arkit_mapping
from inference.head.face_model import file_sha256, load_face_model
from inference.retarget.correspondence import Correspondence
from inference.retarget.solver import Retargeter

from .config import ConfigError, DataConfig
from .synthetic import Batch, generate

CHUNK = 2_000


def retargeter_for(model_path: str, config: DataConfig) -> Retargeter | None:
    """None when training for the open head itself; else the open head -> target solver."""
    if Path(model_path).resolve() == HEAD_FILE.resolve():
        return None
    if not config.landmark_embedding:
        raise ConfigError(f"Face model '{model_path}' is not the open head: set data.landmark_embedding to its "
                          "mediapipe_landmark_embedding.npz so its labels can be solved from the open head's")
    target = load_face_model(model_path)
    head = load_face_model(HEAD_FILE)
    return Retargeter(head, target, Correspondence.open_head_to_flame(config.landmark_embedding, target))


def _chunk(args: tuple[str, int, int, dict]) -> dict[str, np.ndarray]:
    path, count, seed, data = args
    config = DataConfig(**data)
    head = load_face_model(HEAD_FILE)
    batch = generate(head, arkit_mapping(head), count, seed, config, retargeter=retargeter_for(path, config))
    return dataclasses.asdict(batch)


def synthetic(model_path: str, count: int, seed: int, config: DataConfig, cache: Path, workers: int = 2) -> Batch:
    retargeter_for(model_path, config)  # fail here, once, before any worker starts
    key = json.dumps({"data": dataclasses.asdict(config), "count": count, "seed": seed,
                      "model": file_sha256(model_path), "head": file_sha256(HEAD_FILE), "features": FEATURE_VERSION,
                      "layout": sorted(Batch.__dataclass_fields__)}, sort_keys=True)
    path = cache / f"synthetic-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path) as stored:
            return Batch(**{name: stored[name] for name in stored.files})
    jobs = [(model_path, min(CHUNK, count - start), seed * 100_003 + i, dataclasses.asdict(config))
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
