"""The 52 ARKit blendshape names, and MediaPipe's blendshape network on ONNX Runtime.

The network (`face_blendshapes.onnx`, converted from MediaPipe's FaceLandmarker bundle) reads the
x, y of 146 of the 478 face landmarks in image pixels (it removes position and scale itself, so
only the aspect ratio must be kept) and scores `_neutral` plus 51 ARKit units; it has no
`tongueOut`. The perception stage, the default head's calibration and the training data generator
all score landmarks through `BlendshapeNetwork`. Must not import bpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .runtime import create_session

MODEL_FILE = Path(__file__).resolve().parent.parent / "models" / "face_blendshapes.onnx"

# Apple's ARKit order (ARFaceAnchor.BlendShapeLocation); Left/Right are the subject's own sides.
ARKIT_NAMES = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)
# The network's output order (face_blendshapes_graph.cc kBlendshapeNames): `_neutral`, then the
# other 51 ARKit names alphabetically.
MEDIAPIPE_NAMES = ("_neutral",) + tuple(sorted(n for n in ARKIT_NAMES if n != "tongueOut"))

# face_blendshapes_graph.cc kLandmarksSubsetIdxs: the landmarks the network reads.
LANDMARK_SUBSET = np.array([
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70,
    78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149,
    150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195,
    197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300,
    308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375,
    377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454,
    466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
])


class BlendshapeNetwork:
    """Scores 478 landmarks (image pixels, x right, y down) with MediaPipe's blendshape network."""

    def __init__(self, session: Any = None, threads: int = 1) -> None:
        # One thread: the network is tiny, and waking a thread pool costs more than it saves.
        self.session = session if session is not None else create_session(MODEL_FILE, intra_op_threads=threads)
        self._input = self.session.get_inputs()[0].name

    def scores(self, landmarks_px: np.ndarray) -> np.ndarray:
        """(52,) scores in `MEDIAPIPE_NAMES` order for one face's (478, 2+) landmarks, or
        (N, 52) for (N, 478, 2+)."""
        points = np.asarray(landmarks_px, dtype=np.float32)
        if points.ndim == 2:
            return self.scores(points[None])[0]
        subset = np.ascontiguousarray(points[:, LANDMARK_SUBSET, :2])
        return np.stack([self.session.run(None, {self._input: face[None]})[0] for face in subset])

    def named(self, landmarks_px: np.ndarray) -> dict[str, float]:
        return dict(zip(MEDIAPIPE_NAMES, map(float, self.scores(landmarks_px)), strict=False))
