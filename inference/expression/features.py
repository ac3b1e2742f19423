"""The encoder's input, built the same way for a perceived face and a synthetic one.

One normalisation shared by training and inference (SMIRK's copied crop code drifted apart; this
must not): the 478 landmarks lifted into MediaPipe's metric space and carried back into the
canonical face's frame by the inverse of the facial transformation matrix, so head pose, distance
and image size are removed and what remains is the face's shape in centimetres; then MediaPipe's
52 blendshape scores; then the face's appearance (the landmark network's pooled feature maps, which
only the emotion branch reads). `encoder_input(face)` reads a perceived `Face`, whose pose
perception has already solved; `encoder_features` solves it for landmarks that did not come through
perception, and `geometry_features` is the part before the appearance (all that training's
synthetic faces have: they are never rendered). Bump FEATURE_VERSION whenever the layout or maths
change, GEOMETRY_VERSION when the geometry part's do: caches and shipped weights record them. Must
not import bpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..perception.blendshapes import MEDIAPIPE_NAMES
from ..perception.landmarks import N_APPEARANCE, N_LANDMARKS
from ..perception.pose import metric_landmarks

if TYPE_CHECKING:
    from ..perception.pipeline import Face

FEATURE_VERSION = 2
GEOMETRY_VERSION = 1
N_BLENDSHAPES = len(MEDIAPIPE_NAMES)
N_GEOMETRY = N_LANDMARKS * 3 + N_BLENDSHAPES  # 1486
N_FEATURES = N_GEOMETRY + N_APPEARANCE  # 4046


def pose_normalised(metric: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Metric landmarks (N, 3) carried into the canonical face's frame by the inverse of `matrix`:
    centimetres, +y up, +z out of the face."""
    # The matrix is a similarity (s R | t): invert it in closed form (numpy's general 4x4 inverse
    # costs ~1 ms per call here, more than the rest of the features together).
    scaled_rotation, translation = matrix[:3, :3], matrix[:3, 3]
    scale_squared = float(scaled_rotation[:, 0] @ scaled_rotation[:, 0])
    return (metric[:N_LANDMARKS] - translation) @ scaled_rotation / scale_squared  # type: ignore[no-any-return]


def _input(metric: np.ndarray, matrix: np.ndarray, scores: np.ndarray,
           appearance: np.ndarray | None = None) -> np.ndarray:
    parts = [pose_normalised(metric, matrix).ravel(), np.asarray(scores, dtype=np.float64).reshape(N_BLENDSHAPES)]
    if appearance is not None:
        parts.append(np.asarray(appearance, dtype=np.float64).reshape(N_APPEARANCE))
    return np.concatenate(parts).astype(np.float32)


def encoder_input(face: Face) -> np.ndarray:
    """(4046,) float32 for a perceived face: pose-normalised landmarks (478 x 3, flattened), the 52
    scores in `MEDIAPIPE_NAMES` order, then the 2560 appearance values."""
    return _input(face.metric_landmarks, face.matrix, face.scores, face.appearance)


def geometry_features(landmarks_px: np.ndarray, blendshape_scores: np.ndarray, width: int, height: int) -> np.ndarray:
    """(1486,) the input's geometry part for landmarks in pixels of a `width` x `height` image
    (solving their pose)."""
    metric, matrix = metric_landmarks(np.asarray(landmarks_px, dtype=np.float64)[:N_LANDMARKS], width, height)
    return _input(metric, matrix, blendshape_scores)


def encoder_features(landmarks_px: np.ndarray, blendshape_scores: np.ndarray, width: int, height: int,
                     appearance: np.ndarray) -> np.ndarray:
    """(4046,) the whole input for landmarks in pixels (their pose solved) and an appearance."""
    metric, matrix = metric_landmarks(np.asarray(landmarks_px, dtype=np.float64)[:N_LANDMARKS], width, height)
    return _input(metric, matrix, blendshape_scores, appearance)
