"""Left-right mirroring of perceived faces: what perception would have given for the mirrored photo,
without perceiving it again.

A mirrored face's landmark i sits where the original's mirror partner of i sat, reflected about the
image's vertical centre line (MediaPipe's z is a depth and does not change); each Left score becomes
the Right one and back. The partner of each of the 468 mesh landmarks is found once on MediaPipe's
canonical face, which is exactly symmetric (every partner lies at 0.0 cm of the reflected point);
the irises' ten points pair up in the order of MediaPipe's iris model (centre, then the four ring
points, whose horizontal neighbours swap). Emotion labels do not change under mirroring (contempt's
one-sided smirk stays contempt). Must not import bpy.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from inference.perception.blendshapes import MEDIAPIPE_NAMES
from inference.perception.landmarks import N_LANDMARKS

IRIS_PARTNERS = (473, 476, 475, 474, 477, 468, 471, 470, 469, 472)  # of landmarks 468..477


@cache
def landmark_partners() -> np.ndarray:
    """(478,) the index of each landmark's mirror partner (an involution; midline points are their own)."""
    from scipy.optimize import linear_sum_assignment

    from inference.perception.geometry import load_canonical_face

    mesh = np.asarray(load_canonical_face().vertices, dtype=np.float64)
    distance = np.linalg.norm(mesh[:, None] - (mesh * [-1.0, 1.0, 1.0])[None], axis=-1)
    _, partner = linear_sum_assignment(distance)
    out = np.concatenate([partner, IRIS_PARTNERS])
    assert len(out) == N_LANDMARKS and (out[out] == np.arange(N_LANDMARKS)).all()
    return out


@cache
def score_partners() -> np.ndarray:
    """(52,) the column of each MediaPipe score's mirror (Left <-> Right; the rest are their own)."""
    def mirrored(name: str) -> str:
        for a, b in (("Left", "Right"), ("Right", "Left")):
            if name.endswith(a):
                return name[: -len(a)] + b
        return name

    return np.array([MEDIAPIPE_NAMES.index(mirrored(n)) for n in MEDIAPIPE_NAMES])


def mirror(landmarks_px: np.ndarray, scores: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """The mirrored photo's landmarks (..., 478, 3) in pixels and scores (..., 52), for faces in an
    image `width` pixels wide."""
    out = np.array(landmarks_px, dtype=np.float64)[..., landmark_partners(), :]
    out[..., 0] = width - out[..., 0]
    return out, np.asarray(scores)[..., score_partners()]
