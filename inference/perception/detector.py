"""MediaPipe's short-range face detector (BlazeFace) on ONNX Runtime, with its post-processing.

The network scores 896 SSD anchors on a 128x128 letterboxed view of the whole image; this module
reproduces the anchors (SsdAnchorsCalculator with the FaceDetectorGraph's settings), the box and
keypoint decoding (TensorsToDetectionsCalculator) and MediaPipe's weighted non-maximum
suppression in numpy, because no maintained library implements them and their exact behaviour is
what the landmark network was trained against. Images much larger than the network's view are
first shrunk with area averaging; on request (`tiles=True`, the photo pipeline's fallback when the
whole view yields no face) faces too small for the whole view are looked for in overlapping
tiles. Boxes and keypoints come back in full-resolution image pixels. Must not import bpy, and
must not crop faces for other networks (that is `crop`'s job).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .crop import Roi, warp
from .runtime import create_session

MODEL_FILE = Path(__file__).resolve().parent.parent / "models" / "face_detector.onnx"
INPUT_SIZE = 128
# Whole images longer than this are shrunk (area averaging) before the 128 px bilinear letterbox.
DETECT_MAX_SIDE = 1024
# Smallest tile of the small-face search: below it the detector's 128 px view would be upscaled.
MIN_TILE = 160


@dataclass(frozen=True)
class Detection:
    """A face found by the detector, in image pixels (x right, y down)."""

    box: np.ndarray  # (4,) x0, y0, x1, y1
    score: float
    keypoints: np.ndarray  # (6, 2): eye (subject's right, on the image's left), other eye, nose, mouth, ear, ear

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0))


@lru_cache(maxsize=1)
def anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1], in SsdAnchorsCalculator's order: strides 8, 16, 16, 16,
    two anchors per cell per layer (aspect ratio 1 and the interpolated scale), fixed size 1."""
    centres = []
    strides = [8, 16, 16, 16]
    layer = 0
    while layer < len(strides):
        same = [s for s in strides[layer:] if s == strides[layer]]
        per_cell = 2 * len(same)
        cells = INPUT_SIZE // strides[layer]
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
        layer += len(same)
    return np.concatenate(centres).astype(np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, threshold: float,
                 max_count: int | None = None) -> list[Detection]:
    """MediaPipe's NonMaxSuppressionCalculator, WEIGHTED algorithm with IoU overlap: each kept
    detection is the score-weighted mean of every remaining box overlapping the best one by more
    than `threshold`, with the best one's score."""
    order = np.argsort(-scores, kind="stable")
    out: list[Detection] = []
    while order.size and (max_count is None or len(out) < max_count):
        best = order[0]
        overlap = _iou(boxes[best], boxes[order]) > threshold
        overlap[0] = True  # the best box always stands for itself
        members, order = order[overlap], order[~overlap]
        weights = scores[members][:, None]
        total = weights.sum()
        out.append(Detection(box=(boxes[members] * weights).sum(axis=0) / total, score=float(scores[best]),
                             keypoints=(keypoints[members] * weights[:, :, None]).sum(axis=0) / total))
    return out


class FaceDetector:
    """Finds faces in an RGB uint8 image; `.run(image)` returns detections, largest first."""

    def __init__(self, session: Any = None, *, min_score: float = 0.5, nms_threshold: float = 0.5,
                 max_faces: int | None = None) -> None:
        self.session = session if session is not None else create_session(MODEL_FILE)
        self._input = self.session.get_inputs()[0].name
        self.min_score = min_score
        self.nms_threshold = nms_threshold
        self.max_faces = max_faces

    def raw(self, image: np.ndarray, roi: Roi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (N, 4), keypoints (N, 6, 2) in image pixels and scores (N,) above `min_score`
        for the square `roi` of `image`, before suppression."""
        # MediaPipe samples the whole view bilinearly however small it shrinks it; so do we, for
        # parity, and `run` bounds the shrink by first area-averaging images above DETECT_MAX_SIDE.
        crop = warp(image, roi, (INPUT_SIZE, INPUT_SIZE), antialias_above=math.inf)
        tensor = (crop.astype(np.float32) * (1 / 127.5) - 1.0)[None]
        regressors, logits = self.session.run(None, {self._input: tensor})
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[0, :, 0].astype(np.float64), -100.0, 100.0)))
        keep = scores >= self.min_score
        # Per anchor: box centre offset, box size, six keypoint offsets; x before y (reverse order).
        raw = regressors[0, keep].reshape(-1, 8, 2) / INPUT_SIZE
        centres = anchors()[keep]
        centre = raw[:, 0] + centres
        half = raw[:, 1] / 2
        scale = np.array([roi.width, roi.height])
        origin = np.array([roi.x_center - roi.width / 2, roi.y_center - roi.height / 2])
        boxes = np.concatenate([(centre - half) * scale + origin, (centre + half) * scale + origin], axis=1)
        keypoints = (raw[:, 2:] + centres[:, None, :]) * scale + origin
        return boxes, keypoints, scores[keep]

    def run(self, image: np.ndarray, *, tiles: bool = False) -> list[Detection]:
        """Faces in the whole image, largest first; with `tiles`, faces looked for in overlapping
        tiles instead (for faces too small to be found in the whole view)."""
        if tiles:
            return sorted(self._tiles(image), key=lambda d: -d.area)[:self.max_faces]
        height, width = image.shape[:2]
        view, factor = image, 1.0
        if max(height, width) > DETECT_MAX_SIDE:
            import cv2

            factor = DETECT_MAX_SIDE / max(height, width)
            view = cv2.resize(image, (max(round(width * factor), 1), max(round(height * factor), 1)),
                              interpolation=cv2.INTER_AREA)
            factor = width / view.shape[1]
        vh, vw = view.shape[:2]
        side = max(vh, vw)
        detections = weighted_nms(*self.raw(view, Roi(vw / 2, vh / 2, side, side)), self.nms_threshold)
        scaled = [Detection(d.box * factor, d.score, d.keypoints * factor) for d in detections]
        scaled.sort(key=lambda d: -d.area)
        return scaled[:self.max_faces] if self.max_faces else scaled

    def _tiles(self, view: np.ndarray) -> list[Detection]:
        """Overlapping square tiles of the full-resolution image at halving sizes down to MIN_TILE
        pixels (`warp` area-averages the large ones)."""
        height, width = view.shape[:2]
        found: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
        tile = max(height, width) / 2
        while tile >= MIN_TILE:
            step = tile / 2
            for y in np.arange(0, max(height - tile, 0) + step, step):
                for x in np.arange(0, max(width - tile, 0) + step, step):
                    part = self.raw(view, Roi(x + tile / 2, y + tile / 2, tile, tile))
                    for store, value in zip(found, part, strict=True):
                        store.append(value)
            tile /= 2
        if not found[2] or not sum(len(s) for s in found[2]):
            return []
        boxes, keypoints, scores = (np.concatenate(s) for s in found)
        return weighted_nms(boxes, keypoints, scores, self.nms_threshold)
