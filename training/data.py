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

from inference.default_head import arkit_mapping
from inference.face_model import file_sha256, load_face_model
from inference.features import FEATURE_VERSION

from .config import DataConfig
from .io import write_with
from .synthetic import Batch, generate

CHUNK = 2_000


def _chunk(args: tuple[str, int, int, dict]) -> dict[str, np.ndarray]:
    path, count, seed, data = args
    model = load_face_model(path)
    batch = generate(model, arkit_mapping(model), count, seed, DataConfig(**data))
    return dataclasses.asdict(batch)


def synthetic(model_path: str, count: int, seed: int, config: DataConfig, cache: Path, workers: int = 2) -> Batch:
    key = json.dumps({"data": dataclasses.asdict(config), "count": count, "seed": seed,
                      "model": file_sha256(model_path), "features": FEATURE_VERSION,
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
