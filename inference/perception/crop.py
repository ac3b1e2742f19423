"""The one crop and alignment of a face, shared by inference and training.

A face region is a `Roi`: a rotated square (or rectangle) in image pixels. It is built the way
MediaPipe builds it (a box and two keypoints giving the eye line, enlarged and squared on its long
side), warped to the network's input size with the same corner convention as MediaPipe's
ImageToTensorCalculator (`cv::boxPoints` corners mapped onto 0 and the full output size, sampled
bilinearly), and network outputs are mapped back to image pixels by the inverse. Training code
imports this module rather than copying it, so the crop never drifts between the two. Must
not import bpy, and must not know about any particular network beyond its input size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Roi:
    """A rotated rectangle in image pixels; rotation in radians, as MediaPipe's NormalizedRect."""

    x_center: float
    y_center: float
    width: float
    height: float
    rotation: float = 0.0

    def corners(self) -> np.ndarray:
        """(4, 2) corners in `cv2.boxPoints` order: bottom-left, top-left, top-right, bottom-right
        of the unrotated rectangle."""
        b = math.cos(self.rotation) * 0.5
        a = math.sin(self.rotation) * 0.5
        p0 = (self.x_center - a * self.height - b * self.width, self.y_center + b * self.height - a * self.width)
        p1 = (self.x_center + a * self.height - b * self.width, self.y_center - b * self.height - a * self.width)
        return np.array([p0, p1, (2 * self.x_center - p0[0], 2 * self.y_center - p0[1]),
                         (2 * self.x_center - p1[0], 2 * self.y_center - p1[1])], dtype=np.float64)


def normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def roi_from_box(box: np.ndarray, start: np.ndarray, end: np.ndarray, *, scale: float = 1.5,
                 square_long: bool = True, target_angle: float = 0.0) -> Roi:
    """MediaPipe's DetectionsToRects + RectTransformation: the box (x0, y0, x1, y1) in pixels,
    turned so the start->end keypoint line (the eyes) is horizontal, optionally squared on its long
    side, and scaled."""
    x0, y0, x1, y1 = (float(v) for v in box)
    rotation = normalize_radians(target_angle - math.atan2(-(float(end[1]) - float(start[1])),
                                                           float(end[0]) - float(start[0])))
    width, height = x1 - x0, y1 - y0
    if square_long:
        width = height = max(width, height)
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, width * scale, height * scale, rotation)


def pad_square(roi: Roi) -> Roi:
    """The ROI grown on its short side to a square, as ImageToTensor's keep_aspect_ratio letterbox
    does for a square network input; cropping and un-projecting with it equals letterbox removal."""
    side = max(roi.width, roi.height)
    return Roi(roi.x_center, roi.y_center, side, side, roi.rotation)


def roi_from_landmarks(landmarks_px: np.ndarray, start: int = 33, end: int = 263, *, scale: float = 1.5) -> Roi:
    """The tracking ROI for the next frame: the landmarks' bounding box, turned by the line from
    the left side of the left eye (33) to the right side of the right eye (263), as MediaPipe's
    face_landmarks_detector_graph does."""
    points = np.asarray(landmarks_px)[:, :2]
    box = np.concatenate([points.min(axis=0), points.max(axis=0)])
    return roi_from_box(box, points[start], points[end], scale=scale)


def roi_matrix(roi: Roi, size: tuple[int, int]) -> np.ndarray:
    """2x3 affine matrix taking image pixels to crop pixels for an output of size (width, height)."""
    import cv2

    width, height = size
    destination = np.array([[0, height], [0, 0], [width, 0]], dtype=np.float32)
    return cv2.getAffineTransform(roi.corners()[:3].astype(np.float32), destination).astype(np.float64)


def warp(image: np.ndarray, roi: Roi, size: tuple[int, int], *, antialias_above: float = 4.0) -> np.ndarray:
    """The ROI cut out of `image`, turned upright and resized to `size` (width, height); outside
    the image is black. Sampling is bilinear, exactly as MediaPipe's; only when the ROI is more
    than `antialias_above` times the output size (a face filling a huge photo) is the region first
    shrunk with area averaging, so that bilinear sampling does not alias."""
    import cv2

    matrix = roi_matrix(roi, size)
    shrink = min(roi.width / size[0], roi.height / size[1])
    if shrink > antialias_above:
        factor = math.floor(shrink / 1.5)
        corners = roi.corners()
        x0, y0 = np.floor(np.maximum(corners.min(axis=0), 0)).astype(int)
        x1, y1 = np.ceil(np.minimum(corners.max(axis=0) + 1, image.shape[1::-1])).astype(int)
        if x1 - x0 >= factor and y1 - y0 >= factor:
            new_size = (max((x1 - x0) // factor, 1), max((y1 - y0) // factor, 1))
            small = cv2.resize(image[y0:y1, x0:x1], new_size, interpolation=cv2.INTER_AREA)
            sx, sy = (x1 - x0) / new_size[0], (y1 - y0) / new_size[1]
            # image pixel centre x maps to small pixel (x - x0 + 0.5) / sx - 0.5
            to_small = np.array([[1 / sx, 0, (0.5 - x0) / sx - 0.5], [0, 1 / sy, (0.5 - y0) / sy - 0.5], [0, 0, 1]])
            matrix = (np.vstack([matrix, [0, 0, 1]]) @ np.linalg.inv(to_small))[:2]
            image = small
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))


def unproject(points: np.ndarray, roi: Roi, size: tuple[int, int]) -> np.ndarray:
    """Crop-pixel points (N, 2 or 3) back to image pixels, as MediaPipe's LandmarkProjection does;
    z (in crop pixels) is scaled like x, so it stays in image pixels."""
    points = np.asarray(points, dtype=np.float64)
    width, height = size
    x = points[:, 0] / width - 0.5
    y = points[:, 1] / height - 0.5
    cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
    out = np.empty_like(points)
    out[:, 0] = (cos * x - sin * y) * roi.width + roi.x_center
    out[:, 1] = (sin * x + cos * y) * roi.height + roi.y_center
    if points.shape[1] > 2:
        out[:, 2] = points[:, 2] / width * roi.width
    return out
