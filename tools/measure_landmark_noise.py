"""Measure the landmark network's error on a real photo under augmentation: the noise model of the
synthetic training data (training/config.py `landmark_noise_px`, docs/MODEL_CARD.md).

The astronaut photo is scaled, rotated, shifted and JPEG-recompressed at random; perception runs
on each copy; its landmarks are mapped back through the known transform and compared with the
landmarks on the untouched photo. The spread of that difference, expressed per 256 px of face
crop (the network's input size), is the noise the generator adds. Run:
    .venv/bin/python tools/measure_landmark_noise.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.perception.image import load_image  # noqa: E402
from inference.perception.pipeline import Perception  # noqa: E402

SAMPLE = ROOT / "inference" / "samples" / "astronaut.jpg"


def main(trials: int = 60, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    image = load_image(SAMPLE)
    perception = Perception()
    reference = perception.run(image).faces[0]
    crop = reference.roi.width  # the face crop's side in pixels
    residuals = []
    for _ in range(trials):
        angle, scale = rng.uniform(-15, 15), rng.uniform(0.7, 1.3)
        centre = (image.shape[1] / 2 + rng.uniform(-20, 20), image.shape[0] / 2 + rng.uniform(-20, 20))
        matrix = cv2.getRotationMatrix2D(centre, angle, scale)
        warped = cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
        ok, encoded = cv2.imencode(".jpg", warped[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(50, 96))])
        assert ok
        result = perception.run(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1])
        if not result.faces:
            continue
        back = cv2.invertAffineTransform(matrix)
        points = result.faces[0].landmarks_px[:, :2]
        restored = points @ back[:, :2].T + back[:, 2]
        residuals.append((restored - reference.landmarks_px[:, :2]) * 256.0 / crop)
    spread = np.concatenate(residuals)
    print(f"{len(residuals)} of {trials} augmented copies had a face; face crop {crop:.0f} px")
    print(f"landmark error per 256 px crop: std x {spread[:, 0].std():.2f}, y {spread[:, 1].std():.2f}, "
          f"mean |error| {np.linalg.norm(spread, axis=1).mean():.2f} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
