"""MediaPipe's face landmark network (478 points: face mesh and irises) on ONNX Runtime.

Given the image and one ROI per face (from a detection or from the previous frame's landmarks),
it crops each face with `crop.warp` to 256x256, runs the network on all crops in one batch, and
un-projects the 478 x, y, z back into image pixels with `crop.unproject` (z in the same pixel
scale as x, negative towards the camera, relative to the face's centre). It also returns the
network's face-presence probability, which the tracker uses to decide when to re-detect, and the
face's appearance: two of the network's own feature maps pooled to a 4x4 grid (an output that
`tools/fetch_models.py` adds to MediaPipe's graph), which the FIELDS encoder's emotion branch reads
beside the landmarks. Must not import bpy, and must not decide which ROIs to use (that is the
pipeline's job).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .crop import Roi, pad_square, unproject, warp
from .runtime import create_session

MODEL_FILE = Path(__file__).resolve().parent.parent / "models" / "face_landmarks_detector.onnx"
INPUT_SIZE = 256
N_LANDMARKS = 478
N_APPEARANCE = 2560  # 32 + 128 channels x 4 x 4 cells
OUTPUTS = ("Identity", "Identity_1", "appearance")  # landmarks, presence logit, appearance


class FaceLandmarkNetwork:
    """`.run(image, rois)` -> (landmarks_px (N, 478, 3), presence (N,), appearance (N, 2560)) for RGB
    uint8 images."""

    def __init__(self, session: Any = None) -> None:
        self.session = session if session is not None else create_session(MODEL_FILE)
        self._input = self.session.get_inputs()[0].name

    def crops(self, image: np.ndarray, rois: Sequence[Roi]) -> np.ndarray:
        """The network's input for each ROI: (N, 256, 256, 3) float32 in [0, 1]."""
        size = (INPUT_SIZE, INPUT_SIZE)
        return np.stack([warp(image, pad_square(roi), size) for roi in rois]).astype(np.float32) * (1 / 255)

    def run(self, image: np.ndarray, rois: Sequence[Roi]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not rois:
            return np.zeros((0, N_LANDMARKS, 3)), np.zeros(0), np.zeros((0, N_APPEARANCE), np.float32)
        # The network input is square: a non-square ROI is letterboxed, which equals cropping a
        # square ROI grown on its short side.
        squares = [pad_square(roi) for roi in rois]
        points, logits, appearance = self.session.run(list(OUTPUTS), {self._input: self.crops(image, rois)})
        points = points.reshape(len(rois), N_LANDMARKS, 3)
        presence = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1).astype(np.float64), -100.0, 100.0)))
        size = (INPUT_SIZE, INPUT_SIZE)
        landmarks = np.stack([unproject(p, roi, size) for p, roi in zip(points, squares, strict=True)])
        return landmarks, presence, appearance
