"""MediaPipe's face geometry pipeline: the 4x4 facial transformation matrix from 478 landmarks.

It reproduces face_geometry's `GeometryPipeline` (geometry_pipeline.cc) in numpy with the
FaceLandmarker's default environment (a perspective camera with a 63 degree vertical field of
view, near plane 1, origin at the top-left corner): the screen landmarks are lifted into a metric
space in two scale-estimation passes and a weighted orthogonal Procrustes solve (Umeyama with
MediaPipe's weights) aligns the canonical face onto them. The matrix maps the canonical face
(centimetres, +y up, +z towards the camera) into camera space. No maintained library does this
exact solve, and parity with MediaPipe's matrices is the contract. Must not import bpy or OpenCV.
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import load_canonical_face

VERTICAL_FOV_DEGREES = 63.0
NEAR = 1.0


def _weights() -> tuple[np.ndarray, np.ndarray]:
    face = load_canonical_face()
    weights = np.zeros(len(face.vertices))
    weights[face.procrustes_ids] = face.procrustes_weights
    return face.vertices.T, weights


def solve_weighted_orthogonal(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """4x4 similarity (scale * rotation, translation) taking 3xN `source` onto `target` under
    per-point weights, exactly as geometry_pipeline.cc's SolveWeightedOrthogonalProblem."""
    sqrt_w = np.sqrt(weights)
    weighted_sources = source * sqrt_w
    weighted_targets = target * sqrt_w
    total = float(np.sum(weights))
    source_centre = (weighted_sources * sqrt_w).sum(axis=1, keepdims=True) / total
    centred_sources = weighted_sources - source_centre * sqrt_w
    design = weighted_targets @ centred_sources.T
    u, _, vt = np.linalg.svd(design)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        u[:, 2] *= -1
    rotation = u @ vt
    scale = float(np.sum((rotation @ centred_sources) * weighted_targets) / np.sum(centred_sources * weighted_sources))
    scaled = scale * rotation
    translation = ((weighted_targets - scaled @ weighted_sources) * sqrt_w).sum(axis=1) / total
    matrix = np.eye(4)
    matrix[:3, :3] = scaled
    matrix[:3, 3] = translation
    return matrix


def facial_transformation_matrix(landmarks_px: np.ndarray, width: int, height: int) -> np.ndarray:
    """The 4x4 matrix placing MediaPipe's canonical face on one face's landmarks (image pixels,
    z scaled like x) in an image of `width` x `height` pixels."""
    return metric_landmarks(landmarks_px, width, height)[1]


def metric_landmarks(landmarks_px: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The landmarks lifted into MediaPipe's metric camera space (N x 3, centimetres; all points
    given, the 468 mesh points driving the solve) and the facial transformation matrix."""
    canonical, weights = _weights()
    points = np.asarray(landmarks_px, dtype=np.float64)
    # Normalised landmarks, as the Tasks API reports them (z is relative to the image width).
    screen = np.stack([points[:, 0] / width, points[:, 1] / height, points[:, 2] / width])
    height_at_near = 2 * NEAR * math.tan(math.radians(VERTICAL_FOV_DEGREES) / 2)
    width_at_near = width * height_at_near / height
    left, bottom = -width_at_near / 2, -height_at_near / 2
    screen[1] = 1.0 - screen[1]  # origin at the top-left corner
    screen[0] = screen[0] * width_at_near + left
    screen[1] = screen[1] * height_at_near + bottom
    screen[2] = screen[2] * width_at_near
    mesh = canonical.shape[1]  # the 468 mesh points; iris points (if given) are lifted, not solved on
    depth_offset = screen[2, :mesh].mean()

    def metric(scale: float) -> np.ndarray:
        lifted = screen.copy()
        lifted[2] = (lifted[2] - depth_offset + NEAR) / scale
        lifted[0] *= lifted[2] / NEAR
        lifted[1] *= lifted[2] / NEAR
        lifted[2] *= -1  # change of handedness
        return lifted

    def estimate_scale(points3: np.ndarray) -> float:
        return float(np.linalg.norm(solve_weighted_orthogonal(canonical, points3[:, :mesh], weights)[:3, 0]))

    flipped = screen.copy()
    flipped[2] *= -1
    first = estimate_scale(flipped)
    second = estimate_scale(metric(first))
    lifted = metric(first * second)
    return lifted.T, solve_weighted_orthogonal(canonical, lifted[:, :mesh], weights)
