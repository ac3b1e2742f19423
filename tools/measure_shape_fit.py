"""Match face shape on real held-out photos: landmark residual (mm) before and after fitting the ICT
head's identity, per region (mouth, eyes, brows) and over all 478 landmarks.

Photos are the held-out people of `training/real_split.json`, read from the perception cache
(`training/real_data.py`, ~/.cache/fields/real); the expression held fixed is the shipped encoder's,
carried onto the ICT head through the ARKit tables (the route Reconstruct takes), exactly as
"Match face shape" does. Run: .venv/bin/python tools/measure_shape_fit.py [--limit N] [--ridge R]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="only the first N held-out photos (0: all)")
    parser.add_argument("--ridge", type=float, default=None, help="identity ridge (default: the product's)")
    args = parser.parse_args(argv)

    import inference.head.shape_fit as shape_fit
    from inference.expression.encoder import ExpressionEncoder
    from inference.head.default_head import HEAD_FILE, arkit_mapping
    from inference.head.face_model import load_face_model
    from inference.head.ict import ICT_EMBEDDING_FILE, ICT_HEAD_FILE
    from inference.perception.landmarks import N_LANDMARKS
    from inference.retarget.plan import source_parameters
    from training.real_data import PerceptionCache, load_photos
    from training.real_split import load_split

    ridge = shape_fit.MATCH_RIDGE if args.ridge is None else args.ridge
    photos = load_photos(cache=PerceptionCache())
    held = photos.subset(np.array(load_split().photo_mask(photos.people)))
    features = held.features()
    if args.limit:
        features = features[: args.limit]
    encoder = ExpressionEncoder()
    source = arkit_mapping(load_face_model(HEAD_FILE.with_name(encoder.face_model.file)))
    model = load_face_model(ICT_HEAD_FILE)
    target = arkit_mapping(model)
    embedding, ids = shape_fit.LandmarkEmbedding.load(ICT_EMBEDDING_FILE, model)
    rows, at_bound = [], 0
    started = time.perf_counter()
    for row in features:
        observed = row[: N_LANDMARKS * 3].reshape(N_LANDMARKS, 3).astype(np.float64) / 100.0
        expression = encoder.predict(row[None])[0]
        params = target.to_params(source.from_params(source_parameters(expression, encoder.expression_names)))
        fit = shape_fit.match_shape(model, embedding, observed, params.expression, params.pose, params.eyelids, ids,
                                        ridge=ridge)
        rows.append([fit.before_mm[k] for k in ("mouth", "eyes", "brows", "all")]
                    + [fit.after_mm[k] for k in ("mouth", "eyes", "brows", "all")])
        at_bound += int((np.abs(fit.identity) >= shape_fit.IDENTITY_BOUND - 1e-6).sum())
    table = np.array(rows)
    seconds = (time.perf_counter() - started) / len(rows)
    print(f"ICT head, {len(rows)} held-out photos, identity ridge {ridge}, "
          f"{seconds * 1000:.0f} ms per fit, {at_bound / len(rows):.1f} of {model.n_shape} coefficients "
          "at +-3 per photo")
    print(f"{'region':8} {'before mm':>10} {'after mm':>10}")
    for i, region in enumerate(("mouth", "eyes", "brows", "all")):
        print(f"{region:8} {table[:, i].mean():10.2f} {table[:, 4 + i].mean():10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
