"""The encoder's input, built the same way for a real photo and a synthetic face.

One normalisation shared by training and inference (SMIRK's copied crop code drifted apart; this
must not): the 478 landmarks lifted into MediaPipe's metric space and carried back into the
canonical face's frame by the inverse of the facial transformation matrix, so head pose, distance
and image size are removed and what remains is the face's shape in centimetres; then MediaPipe's
52 blendshape scores. Bump FEATURE_VERSION whenever the layout or maths change: caches and
shipped weights record it. Must not import bpy.
"""

from __future__ import annotations

import numpy as np

from ..perception.pose import metric_landmarks

FEATURE_VERSION = 1
N_LANDMARKS = 478
N_BLENDSHAPES = 52
N_FEATURES = N_LANDMARKS * 3 + N_BLENDSHAPES


def pose_normalised_landmarks(landmarks_px: np.ndarray, width: int, height: int) -> np.ndarray:
    """(478, 3) landmarks in the canonical face's frame, centimetres (+y up, +z out of the face)."""
    metric, matrix = metric_landmarks(np.asarray(landmarks_px, dtype=np.float64)[:N_LANDMARKS], width, height)
    # The matrix is a similarity (s R | t): invert it in closed form (numpy's general 4x4 inverse
    # costs ~1 ms per call here, more than the rest of the features together).
    scaled_rotation, translation = matrix[:3, :3], matrix[:3, 3]
    scale_squared = float(scaled_rotation[:, 0] @ scaled_rotation[:, 0])
    return (metric - translation) @ scaled_rotation / scale_squared


def encoder_features(landmarks_px: np.ndarray, blendshape_scores: np.ndarray, width: int, height: int) -> np.ndarray:
    """(1486,) float32: pose-normalised landmarks (478 x 3, flattened) then the 52 scores in
    MediaPipe's order (`inference.blendshapes.MEDIAPIPE_NAMES`)."""
    scores = np.asarray(blendshape_scores, dtype=np.float64).reshape(N_BLENDSHAPES)
    return np.concatenate([pose_normalised_landmarks(landmarks_px, width, height).ravel(), scores]).astype(np.float32)
