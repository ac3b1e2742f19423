"""Benchmark: per-frame retargeting from the open head to a FLAME-sized target (issue 6).

The target is a FLAME-format fixture of FLAME's size (about 5000 vertices, 10000 faces, 100
expression components, local like FLAME's mouth and brow components) with a generated
105-point MediaPipe embedding, as FLAME's `mediapipe_landmark_embedding.npz` has. Each frame is
one of the eight emotion prototypes at a random intensity with a random jaw. Prints the set-up
time and the per-frame median and 95th percentile, with the iterations taken.
Run: .venv/bin/python tools/bench_retarget.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from flame_fixtures import make_flame_arrays  # noqa: E402
from retarget_fixtures import (  # noqa: E402
    bump_basis,
    default_embedding_ids,
    model_from_arrays,
    open_head_embedding,
    write_embedding,  # noqa: E402
)

from inference.expression.emotions import EMOTIONS, emotion_weights  # noqa: E402
from inference.head.default_head import landmarks, load_default_head  # noqa: E402
from inference.retarget.correspondence import Correspondence  # noqa: E402
from inference.retarget.solver import Retargeter  # noqa: E402

FRAMES = 200


def main() -> None:
    head, mapping = load_default_head()
    arrays = make_flame_arrays(n_lat=60, n_lon=86, n_components=310)
    target = model_from_arrays(arrays, bump_basis(arrays["v_template"], 100, seed=1), name="FLAME-sized")
    ids = default_embedding_ids()
    with tempfile.TemporaryDirectory() as folder:
        faces, bary = open_head_embedding(landmarks(head, mapping), target, ids)
        path = write_embedding(Path(folder) / "mediapipe_landmark_embedding.npz", faces, bary, ids)
        start = time.perf_counter()
        retargeter = Retargeter(head, target, Correspondence.open_head_to_flame(path, target))
        setup = time.perf_counter() - start
    rng = np.random.default_rng(0)
    frames = []
    for i in range(FRAMES):
        params = mapping.to_params(emotion_weights(EMOTIONS[i % len(EMOTIONS)], rng.uniform(0.3, 1.0)))
        params.pose[2, 0] += rng.uniform(0.0, 0.2)
        frames.append(params)
    times, iterations = [], []
    for params in frames:
        start = time.perf_counter()
        result = retargeter.retarget(params.expression, params.pose, params.eyelids)
        times.append(time.perf_counter() - start)
        iterations.append(result.iterations)
    times.sort()
    print(f"target: {target.n_verts} vertices, {len(target.faces)} faces, {target.n_expr} expression components, "
          f"{len(retargeter.correspondence)} corresponding points")
    print(f"set-up {setup * 1e3:.1f} ms; per frame median {statistics.median(times) * 1e3:.2f} ms, "
          f"p95 {times[int(0.95 * len(times))] * 1e3:.2f} ms; iterations median {statistics.median(iterations)}, "
          f"max {max(iterations)}")


if __name__ == "__main__":
    main()
