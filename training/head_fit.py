"""Landmark geometry of a head driven by ARKit units, and how well it meets a real face's landmarks.

A head is reached only through `LandmarkHead`: the 478 MediaPipe landmarks (metres) for 52 ARKit
weights and an identity vector, plus their linearisation (neutral, per-unit and per-identity-
component landmark changes). Landmarks sit on the mesh through a `LandmarkEmbedding` (triangle +
barycentric weights; a vertex id is the degenerate triangle), so the mask head (vertex i is
landmark i) and a full head such as ICT's plug in alike. `region_residuals` aligns a face's
observed landmarks onto the head by a similarity (Umeyama, all 478 points) and reports the mean
3D distance in millimetres over MediaPipe's lips, eyes and brows; `fit_photo` is the per-photo
least-squares reference (identity and bounded units solved together), `drive_photo` solves only
identity for units a reader gave. Both alternate alignment and a bounded linear solve, then judge
the exact (not linearised) head. Must not import bpy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.optimize import lsq_linear

from inference.head.default_head import ARKIT_TO_PARAMS, HEAD_FILE, N_LANDMARKS, ArkitMapping, load_default_head
from inference.head.face_model import FaceModel
from inference.perception.blendshapes import ARKIT_NAMES

# MediaPipe's region index sets (FaceLandmarksConnections in mediapipe/tasks/.../face_landmarker.py,
# Apache-2.0): the landmarks its lips, eye and eyebrow connections touch.
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
        270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_BROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
RIGHT_BROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
REGIONS = {"mouth": LIPS, "eyes": LEFT_EYE + RIGHT_EYE, "brows": LEFT_BROW + RIGHT_BROW}
N_UNITS = len(ARKIT_NAMES)
IDENTITY_BOUND = 3.0  # identity coefficients are solved within +-3 (the heads' components are unit-scaled)
IDENTITY_RIDGE = 0.005  # keeps identity from absorbing expression where the two overlap
FD_STEP = 1e-3


@dataclass(frozen=True)
class LandmarkEmbedding:
    """Each landmark as a point on a mesh triangle: `triangles` (L, 3) vertex ids, `weights` (L, 3)."""

    triangles: np.ndarray
    weights: np.ndarray

    @classmethod
    def vertex_ids(cls, ids: np.ndarray) -> LandmarkEmbedding:
        ids = np.asarray(ids, dtype=np.int64)
        return cls(np.repeat(ids[:, None], 3, axis=1), np.tile([1.0, 0.0, 0.0], (len(ids), 1)))

    def apply(self, vertices: np.ndarray) -> np.ndarray:
        """(..., V, 3) vertices -> (..., L, 3) landmarks."""
        return np.einsum("...lkc,lk->...lc", vertices[..., self.triangles, :], self.weights)


class LandmarkHead(Protocol):
    name: str
    key: str  # changes whenever the head's geometry does (e.g. its file's sha256): keys cached fits
    neutral: np.ndarray  # (478, 3) metres
    unit_basis: np.ndarray  # (52, 478, 3): landmark change per ARKit unit at weight 1 (linearised)
    identity_basis: np.ndarray  # (S, 478, 3): landmark change per identity coefficient

    def landmarks(self, weights: np.ndarray, identity: np.ndarray | None = None) -> np.ndarray: ...

    def jacobian(self, weights: np.ndarray, identity: np.ndarray) -> np.ndarray:
        """(52, 478, 3) landmark change per unit at `weights` (`unit_basis` for a linear head)."""
        ...


class FlameArkitHead:
    """A FLAME-format head with a stored ARKit table (the open head), read through an embedding."""

    def __init__(self, model: FaceModel, mapping: ArkitMapping, embedding: LandmarkEmbedding, name: str = "",
                 key: str = "") -> None:
        self.model, self.mapping, self.embedding = model, mapping, embedding
        self.rotation_units = [u for u, n in enumerate(ARKIT_NAMES) if ARKIT_TO_PARAMS[n][0] == "pose"]
        self.name = name or model.name
        self.key = key or self.name
        self.neutral = self.landmarks(np.zeros(N_UNITS))
        self.unit_basis = np.stack([self.landmarks(np.eye(N_UNITS)[u]) - self.neutral for u in range(N_UNITS)])
        self.identity_basis = embedding.apply(np.moveaxis(model.shapedirs, 2, 0))

    def jacobian(self, weights: np.ndarray, identity: np.ndarray) -> np.ndarray:
        """Shape keys and eyelids are linear; joint rotations (and their pose correctives) are
        differentiated numerically at `weights`, one-sided into [0, 1]."""
        out = self.unit_basis.copy()
        here = self.landmarks(weights, identity)
        for u in self.rotation_units:
            step = -FD_STEP if weights[u] + FD_STEP > 1.0 else FD_STEP
            moved = np.array(weights, dtype=np.float64)
            moved[u] += step
            out[u] = (self.landmarks(moved, identity) - here) / step
        return out

    def landmarks(self, weights: np.ndarray, identity: np.ndarray | None = None) -> np.ndarray:
        from inference.head.forward import forward

        params = self.mapping.to_params(np.asarray(weights, dtype=np.float64))
        out = forward(self.model, shape=identity, expression=params.expression, pose=params.pose,
                      eyelids=params.eyelids)
        return self.embedding.apply(out.vertices)


def open_head() -> FlameArkitHead:
    """The shipped open head: vertex i is MediaPipe landmark i."""
    model, mapping = load_default_head()
    key = hashlib.sha256(HEAD_FILE.read_bytes()).hexdigest()
    return FlameArkitHead(model, mapping, LandmarkEmbedding.vertex_ids(np.arange(N_LANDMARKS)), "FIELDS open head", key)


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Umeyama's least-squares similarity (scale, rotation, translation) taking source onto target."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    a, b = source - mu_s, target - mu_t
    u, singular, vt = np.linalg.svd(b.T @ a / len(a))
    flip = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ flip @ vt
    scale = float(np.trace(np.diag(singular) @ flip) / (a ** 2).sum(1).mean())
    return scale, rotation, mu_t - scale * rotation @ mu_s


def align(observed: np.ndarray, head: np.ndarray) -> np.ndarray:
    scale, rotation, translation = similarity(observed, head)
    return np.asarray(scale * observed @ rotation.T + translation)


def region_residuals(observed: np.ndarray, head: np.ndarray) -> dict[str, float]:
    """Mean distance (mm) per region after aligning the observed landmarks onto the head's."""
    distance = np.linalg.norm(align(observed, head) - head, axis=1) * 1000.0
    return {region: float(distance[list(ids)].mean()) for region, ids in REGIONS.items()}


def _bounded(columns: np.ndarray, target: np.ndarray, prior: np.ndarray,
             bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Bounded least squares of [columns; prior] x = [target; 0], reduced by QR first (the
    (61, 61) triangle instead of 1443 rows: same minimiser, a tenth of the time)."""
    q, r = np.linalg.qr(np.vstack([columns, prior]))
    rhs = q.T @ np.r_[target, np.zeros(len(prior))]
    return np.asarray(lsq_linear(r, rhs, bounds=bounds, method="bvls").x)


def _motion_columns(points: np.ndarray) -> np.ndarray:
    """(3L, 7) first-order changes of `points` under translation, scale and rotation: solving for
    them with the head makes each round a Gauss-Newton step of the aligned problem, which
    alternating alignment and fit alone approaches only slowly."""
    centred = points - points.mean(0)
    rotations = [np.cross(axis, centred) for axis in np.eye(3)]
    translations = [np.broadcast_to(axis, points.shape) for axis in np.eye(3)]
    return np.stack([t.ravel() for t in translations] + [centred.ravel()] + [r.ravel() for r in rotations], axis=1)


def _fit(head: LandmarkHead, observed: np.ndarray, weights: np.ndarray | None, rounds: int = 6,
         tolerance_m: float = 1e-5) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Gauss-Newton on units (in [0, 1], re-linearised where they are not linear, e.g. jaw and eye
    rotations), identity and a similarity, with the exact alignment redone every round. On real
    faces it settles in three rounds (residuals then move by under 0.001 mm); it stops once no
    aligned landmark moves by `tolerance_m` between rounds."""
    n_id = len(head.identity_basis)
    identity_columns = head.identity_basis.reshape(n_id, -1).T
    ridge = np.sqrt(IDENTITY_RIDGE) * np.linalg.norm(identity_columns, axis=0).mean()
    free = np.full(7, np.inf)
    units = np.zeros(N_UNITS) if weights is None else weights
    identity = np.zeros(n_id)
    current = head.landmarks(units, identity)
    previous = None
    for _ in range(rounds):
        target = align(observed, current)
        if previous is not None and np.abs(target - previous).max() < tolerance_m:
            break
        previous = target
        base = (target - current).ravel() + identity_columns @ identity
        motion = _motion_columns(current)
        if weights is None:
            jacobian = head.jacobian(units, identity).reshape(N_UNITS, -1).T
            columns = np.concatenate([jacobian, identity_columns, motion], axis=1)
            lower = np.r_[np.zeros(N_UNITS), -IDENTITY_BOUND * np.ones(n_id), -free]
            upper = np.r_[np.ones(N_UNITS), IDENTITY_BOUND * np.ones(n_id), free]
            prior = np.zeros((n_id, columns.shape[1]))
            prior[:, N_UNITS:N_UNITS + n_id] = ridge * np.eye(n_id)
            solution = _bounded(columns, base + jacobian @ units, prior, (lower, upper))
            units, identity = solution[:N_UNITS], solution[N_UNITS:N_UNITS + n_id]
        else:
            columns = np.concatenate([identity_columns, motion], axis=1)
            prior = np.concatenate([ridge * np.eye(n_id), np.zeros((n_id, 7))], axis=1)
            bounds = (np.r_[-IDENTITY_BOUND * np.ones(n_id), -free], np.r_[IDENTITY_BOUND * np.ones(n_id), free])
            identity = _bounded(columns, base, prior, bounds)[:n_id]
        current = head.landmarks(units, identity)
    return units, identity, region_residuals(observed, current)


def fit_photo(head: LandmarkHead, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Units in [0, 1], identity, and region residuals (mm) of the head's best fit to one face."""
    return _fit(head, observed, None)


def drive_photo(head: LandmarkHead, observed: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Region residuals (mm) of the head driven by `weights`, identity solved for this face."""
    return _fit(head, observed, np.clip(np.asarray(weights, dtype=np.float64), 0.0, 1.0))[2]
