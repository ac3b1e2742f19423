"""The perception stage: photo or frame in, for each face a box, 478 landmarks, blendshape scores
and the facial transformation matrix out, all on ONNX Runtime.

`Perception.run(image)` is MediaPipe FaceLandmarker's IMAGE mode (detect every face, crop each
from its detection, run the landmark and blendshape networks, solve the head pose); `Tracker.run
(frame)` is its VIDEO mode (each face's next crop comes from its previous landmarks; the detector
runs only while fewer faces than wanted are tracked, and tracking is dropped when the landmark
network's face-presence score falls below the threshold). Every network sits behind a small class
with `.run(...)` so another backend can stand in. No face is a result (`NoFace`), not an
exception; a bad file raises `ImageError`. Must not import bpy; heavy imports (OpenCV, ONNX
Runtime) happen when a `Perception` is built, never when the package is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .blendshapes import MEDIAPIPE_NAMES, BlendshapeNetwork
from .blendshapes import MODEL_FILE as BLENDSHAPES_FILE
from .crop import Roi, roi_from_box, roi_from_landmarks
from .detector import MIN_TILE, Detection, FaceDetector
from .detector import MODEL_FILE as DETECTOR_FILE
from .image import ImageSource, load_image
from .landmarks import MODEL_FILE as LANDMARKS_FILE
from .landmarks import FaceLandmarkNetwork
from .pose import metric_landmarks
from .runtime import create_session, providers_in_use


@dataclass
class Face:
    """One face, in the pixels of the image as loaded (upright, full resolution)."""

    bbox: np.ndarray  # (4,) x0, y0, x1, y1: the detector's box, or the landmarks' box when tracked
    score: float  # the detector's score, or the landmark network's presence score when tracked
    landmarks_px: np.ndarray  # (478, 3) x right, y down, z in pixels (negative towards the camera)
    scores: np.ndarray  # (52,) blendshape scores in [0, 1], in `MEDIAPIPE_NAMES` order (`_neutral` first)
    matrix: np.ndarray  # (4, 4) canonical face (cm) -> camera space, MediaPipe's geometry pipeline
    metric_landmarks: np.ndarray  # (478, 3) the landmarks lifted into camera space (cm) by the same solve
    presence: float  # the landmark network's face-presence probability
    roi: Roi  # the crop the landmarks came from
    appearance: np.ndarray  # (2560,) float32: the landmark network's pooled feature maps (`landmarks.py`)

    @property
    def blendshapes(self) -> dict[str, float]:
        """The scores by MediaPipe's names, for reading and JSON (the array is what code passes on)."""
        return dict(zip(MEDIAPIPE_NAMES, map(float, self.scores), strict=True))

    def to_json(self) -> dict[str, Any]:
        return {
            "bbox": [round(float(v), 3) for v in self.bbox],
            "score": round(float(self.score), 5),
            "landmarks_px": np.round(self.landmarks_px, 3).tolist(),
            "blendshapes": {name: round(value, 5) for name, value in self.blendshapes.items()},
            "matrix": np.round(self.matrix, 6).tolist(),
        }


@dataclass
class PerceptionResult:
    faces: list[Face]  # largest first
    providers: list[str]  # execution providers in use, e.g. ["CPU"] or ["CUDA", "CPU"]
    width: int = 0
    height: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"faces": [face.to_json() for face in self.faces], "providers": self.providers,
                "width": self.width, "height": self.height}


@dataclass
class NoFace(PerceptionResult):
    """The image was read and searched, and holds no face (`faces` is empty)."""


class Perception:
    """MediaPipe FaceLandmarker's pipeline on ONNX Runtime. `max_faces=None` returns every face."""

    def __init__(self, *, max_faces: int | None = None, min_detection_score: float = 0.5,
                 min_presence: float = 0.5, search_small_faces: bool = True, threads: int = 1,
                 detector: Any = None, landmarker: Any = None, blendshapes: Any = None) -> None:
        # One intra-op thread per network by default: on the 2-core reference machine a second
        # thread made the landmark network's latency noisier and, alternating with the detector,
        # slower (its pool's wake-ups), and it leaves a core to Blender. `threads` changes the
        # landmark network's count (0: one per core) for bigger CPUs; the two small networks
        # never gain from a pool.
        self.detector = detector if detector is not None else FaceDetector(
            create_session(DETECTOR_FILE, intra_op_threads=1), min_score=min_detection_score)
        self.landmarker = landmarker if landmarker is not None else FaceLandmarkNetwork(
            create_session(LANDMARKS_FILE, intra_op_threads=threads))
        self.blendshapes = blendshapes if blendshapes is not None else BlendshapeNetwork(
            create_session(BLENDSHAPES_FILE, intra_op_threads=1))
        self.max_faces = max_faces
        self.min_presence = min_presence
        self.search_small_faces = search_small_faces

    @property
    def providers(self) -> list[str]:
        seen: list[str] = []
        for part in (self.detector, self.landmarker, self.blendshapes):
            session = getattr(part, "session", None)
            for name in providers_in_use(session) if session is not None else []:
                if name not in seen:
                    seen.append(name)
        return seen

    def detect(self, image: np.ndarray, *, tiles: bool = False) -> list[Detection]:
        detections: list[Detection] = self.detector.run(image, tiles=tiles) if tiles else self.detector.run(image)
        return detections[:self.max_faces] if self.max_faces else detections

    def _faces_from(self, image: np.ndarray, detections: list[Detection]) -> list[Face]:
        rois = [detection_roi(d) for d in detections]
        return self.faces_in(image, rois, [d.box for d in detections], [d.score for d in detections])

    def faces_in(self, image: np.ndarray, rois: list[Roi], boxes: list[np.ndarray | None],
                 scores: list[float | None]) -> list[Face]:
        """Landmarks, blendshapes and pose for each ROI whose face-presence passes; largest first."""
        landmarks, presence, appearance = self.landmarker.run(image, rois)
        height, width = image.shape[:2]
        faces = []
        for points, present, look, roi, box, score in zip(landmarks, presence, appearance, rois, boxes, scores,
                                                          strict=True):
            if present < self.min_presence:
                continue
            if box is None:
                box = np.concatenate([points[:, :2].min(axis=0), points[:, :2].max(axis=0)])
            # The pose is solved once here; the encoder's input reuses both of its results.
            metric, matrix = metric_landmarks(points, width, height)
            faces.append(Face(
                bbox=np.asarray(box, dtype=np.float64), score=float(present if score is None else score),
                landmarks_px=points, scores=self.blendshapes.scores(points).astype(np.float64), matrix=matrix,
                metric_landmarks=metric, presence=float(present), roi=roi, appearance=look))
        faces.sort(key=lambda f: -float((f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])))
        return faces

    def run(self, source: ImageSource) -> PerceptionResult:
        image = load_image(source)
        faces = self._faces_from(image, self.detect(image))
        if not faces and max(image.shape[:2]) >= 2 * MIN_TILE and self.search_small_faces:
            # Faces under about a tenth of the frame are invisible in the detector's 128 px view.
            faces = self._faces_from(image, self.detect(image, tiles=True))
        kind = PerceptionResult if faces else NoFace
        return kind(faces=faces, providers=self.providers, width=image.shape[1], height=image.shape[0])


def detection_roi(detection: Detection) -> Roi:
    """The landmark crop for a detection: FaceDetectorGraph's box, turned by the eye line and
    enlarged 1.5 times (not squared: the crop letterboxes it)."""
    return roi_from_box(detection.box, detection.keypoints[0], detection.keypoints[1], square_long=False)


def _axis_iou(a: Roi, b: Roi) -> float:
    """IoU of the two ROIs' unrotated rectangles, as AssociationNormRectCalculator compares them."""
    def edges(r: Roi) -> tuple[float, float, float, float]:
        return (r.x_center - r.width / 2, r.y_center - r.height / 2, r.x_center + r.width / 2,
                r.y_center + r.height / 2)

    ax0, ay0, ax1, ay1 = edges(a)
    bx0, by0, bx1, by1 = edges(b)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


class Tracker:
    """Video mode: feed frames in order to `.run(frame)`. The detector runs only while fewer than
    `max_faces` faces are tracked; a tracked face is dropped (and re-detected) once the landmark
    network's presence score falls below `min_presence`. `reset()` forgets all faces (a cut)."""

    def __init__(self, perception: Perception | None = None, *, max_faces: int = 1,
                 min_tracking_iou: float = 0.5) -> None:
        self.perception = perception if perception is not None else Perception(max_faces=max_faces)
        self.max_faces = max_faces
        self.min_tracking_iou = min_tracking_iou
        self.rois: list[Roi] = []
        self.detector_runs = 0

    def reset(self) -> None:
        self.rois = []

    def run(self, source: ImageSource) -> PerceptionResult:
        image = load_image(source)
        rois: list[Roi] = list(self.rois)
        boxes: list[np.ndarray | None] = [None] * len(rois)
        scores: list[float | None] = [None] * len(rois)
        if len(rois) < self.max_faces:
            self.detector_runs += 1
            for detection in self.perception.detect(image)[:self.max_faces]:
                roi = detection_roi(detection)
                # A fresh detection replaces the tracked face it overlaps, as MediaPipe's
                # association calculator keeps the later stream's rect.
                keep = [i for i, old in enumerate(rois) if _axis_iou(old, roi) <= self.min_tracking_iou]
                rois, boxes, scores = [rois[i] for i in keep], [boxes[i] for i in keep], [scores[i] for i in keep]
                rois.append(roi)
                boxes.append(detection.box)
                scores.append(detection.score)
        faces = self.perception.faces_in(image, rois[:self.max_faces], boxes[:self.max_faces], scores[:self.max_faces])
        self.rois = [roi_from_landmarks(face.landmarks_px) for face in faces]
        kind = PerceptionResult if faces else NoFace
        return kind(faces=faces, providers=self.perception.providers, width=image.shape[1], height=image.shape[0])
