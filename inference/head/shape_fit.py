"""Fit a head's identity to a photo's landmarks: "Match face shape", and the fit training judges with.

A head is read at MediaPipe's 478 landmarks through a `LandmarkEmbedding` (triangle + barycentric
weights). `fit_landmarks` is the one least-squares fit: it alternates an exact similarity alignment
(Umeyama) of the observed landmarks onto the head with a bounded, ridge-regularised linear solve for
identity (and, when asked, expression units in [0, 1]) plus a first-order similarity, re-evaluating
the exact head every round (Gauss-Newton). `match_shape` is the product's use: the expression read
by the encoder is held fixed and only identity is solved. Numpy only, since Blender ships no scipy
(the bounded solve is a small active-set method, `bounded_least_squares`). Observed landmarks are
the pose-normalised ones the encoder reads (canonical face frame, metres). Must not import bpy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .face_model import FaceModel

# MediaPipe's region index sets (FaceLandmarksConnections in mediapipe/tasks/.../face_landmarker.py,
# Apache-2.0): the landmarks its lips, eye and eyebrow connections touch.
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
        270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_BROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
RIGHT_BROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
REGIONS = {"mouth": LIPS, "eyes": LEFT_EYE + RIGHT_EYE, "brows": LEFT_BROW + RIGHT_BROW}
IDENTITY_BOUND = 3.0  # identity coefficients are solved within +-3 (the heads' components are unit-scaled)
IDENTITY_RIDGE = 0.005  # keeps identity from absorbing expression where the two overlap (training's fit)
# Match face shape's prior: 100 x training's. On 60 held-out photos (tools/measure_shape_fit.py) it
# leaves 1.4 of the ICT head's 50 coefficients at +-3 per photo instead of 20, for 0.6 mm more
# residual: a face that looks like a person rather than one that chases landmark noise.
MATCH_RIDGE = 0.5


class ShapeFitError(ValueError):
    """The head cannot be fitted (no identity basis, or no landmark embedding); one sentence."""


@dataclass(frozen=True)
class LandmarkEmbedding:
    """Each landmark as a point on a mesh triangle: `triangles` (L, 3) vertex ids, `weights` (L, 3)."""

    triangles: np.ndarray
    weights: np.ndarray

    @classmethod
    def vertex_ids(cls, ids: np.ndarray) -> LandmarkEmbedding:
        ids = np.asarray(ids, dtype=np.int64)
        return cls(np.repeat(ids[:, None], 3, axis=1), np.tile([1.0, 0.0, 0.0], (len(ids), 1)))

    @classmethod
    def load(cls, path: str | Path, model: FaceModel) -> tuple[LandmarkEmbedding, np.ndarray]:
        """A MediaPipe embedding file of `model` (`lmk_face_idx`, `lmk_b_coords`, `landmark_indices`;
        FLAME's places 105 landmarks, ours all 478) and the landmark ids it places; raises
        LandmarkEmbeddingError naming the file when it does not fit the model."""
        from ..retarget.correspondence import load_mediapipe_embedding

        points = load_mediapipe_embedding(path, model)
        return cls(points.vertices, points.weights), points.labels

    def apply(self, vertices: np.ndarray) -> np.ndarray:
        """(..., V, 3) vertices -> (..., L, 3) landmarks."""
        return np.einsum("...lkc,lk->...lc", vertices[..., self.triangles, :], self.weights)


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


def bounded_least_squares(a: np.ndarray, b: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """argmin ||a x - b|| with lower <= x <= upper (infinite bounds allowed): a primal active-set
    method (what BVLS does), exact up to round-off. Free variables are solved with lstsq, so a
    column that never moves anything (e.g. tongueOut at the landmarks) stays where it starts."""
    n = a.shape[1]
    x = np.clip(np.zeros(n), lower, upper)
    at_lower, at_upper = x <= lower, x >= upper
    at_lower &= np.isfinite(lower)
    at_upper &= np.isfinite(upper) & ~at_lower
    scale = float(np.abs(a).max()) * float(np.abs(b).max() + 1.0) if a.size else 1.0
    for _ in range(10 * n + 10):
        free = ~(at_lower | at_upper)
        y = x.copy()
        if free.any():
            y[free] = np.linalg.lstsq(a[:, free], b - a[:, ~free] @ x[~free], rcond=None)[0]
        outside = free & ((y < lower) | (y > upper))
        if not outside.any():
            x = y
            gradient = a.T @ (a @ x - b)
            violation = np.where(at_lower, -gradient, 0.0) + np.where(at_upper, gradient, 0.0)
            worst = int(np.argmax(violation))
            if violation[worst] <= 1e-12 * scale:
                return x
            at_lower[worst] = at_upper[worst] = False
            continue
        # Step towards y until the first free variable meets its bound; it joins the active set.
        step = y - x
        with np.errstate(divide="ignore", invalid="ignore"):
            reach = np.where(y < lower, (lower - x) / step, np.where(y > upper, (upper - x) / step, np.inf))
        reach[~outside] = np.inf
        alpha = float(np.clip(reach.min(), 0.0, 1.0))
        x = np.clip(x + alpha * step, lower, upper)
        blocked = outside & (reach <= alpha + 1e-15)
        at_lower |= blocked & (y < lower)
        at_upper |= blocked & (y > upper)
        x[at_lower], x[at_upper] = lower[at_lower], upper[at_upper]
    return x


def _reduced_bounded(columns: np.ndarray, target: np.ndarray, prior: np.ndarray,
                     bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Bounded least squares of [columns; prior] x = [target; 0], reduced by QR first (a small
    square triangle instead of 1,443 rows: same minimiser, a tenth of the time)."""
    q, r = np.linalg.qr(np.vstack([columns, prior]))
    rhs = q.T @ np.r_[target, np.zeros(len(prior))]
    return bounded_least_squares(r, rhs, *bounds)


def motion_columns(points: np.ndarray) -> np.ndarray:
    """(3L, 7) first-order changes of `points` under translation, scale and rotation: solving for
    them with the head makes each round a Gauss-Newton step of the aligned problem, which
    alternating alignment and fit alone approaches only slowly."""
    centred = points - points.mean(0)
    rotations = [np.cross(axis, centred) for axis in np.eye(3)]
    translations = [np.broadcast_to(axis, points.shape) for axis in np.eye(3)]
    return np.stack([t.ravel() for t in translations] + [centred.ravel()] + [r.ravel() for r in rotations], axis=1)


Landmarks = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (units, identity) -> (478, 3)


def fit_landmarks(landmarks: Landmarks, identity_basis: np.ndarray, observed: np.ndarray,
                  fixed_units: np.ndarray | None = None, *, n_units: int = 0,
                  jacobian: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None, rounds: int = 6,
                  tolerance_m: float = 1e-5, ridge: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(units, identity, landmarks) of the head's least-squares fit to `observed` (478, 3), all
    aligned by a similarity. With `fixed_units` the units stay as given and only identity is
    solved; otherwise `n_units` units in [0, 1] are solved with identity, `jacobian(units,
    identity)` giving their (n_units, 478, 3) linearisation. Identity is bounded to +-3 with a ridge.
    On real faces it settles in three rounds; it stops once no aligned landmark moves by
    `tolerance_m` between rounds."""
    n_id = len(identity_basis)
    identity_columns = identity_basis.reshape(n_id, -1).T
    ridge = np.sqrt(IDENTITY_RIDGE if ridge is None else ridge) * np.linalg.norm(identity_columns, axis=0).mean()
    free = np.full(7, np.inf)
    units = np.zeros(n_units) if fixed_units is None else np.asarray(fixed_units, dtype=np.float64)
    identity = np.zeros(n_id)
    current = landmarks(units, identity)
    previous = None
    for _ in range(rounds):
        target = align(observed, current)
        if previous is not None and np.abs(target - previous).max() < tolerance_m:
            break
        previous = target
        base = (target - current).ravel() + identity_columns @ identity
        motion = motion_columns(current)
        if fixed_units is None:
            assert jacobian is not None, "solving units needs their jacobian"
            unit_columns = jacobian(units, identity).reshape(n_units, -1).T
            columns = np.concatenate([unit_columns, identity_columns, motion], axis=1)
            lower = np.r_[np.zeros(n_units), -IDENTITY_BOUND * np.ones(n_id), -free]
            upper = np.r_[np.ones(n_units), IDENTITY_BOUND * np.ones(n_id), free]
            prior = np.zeros((n_id, columns.shape[1]))
            prior[:, n_units:n_units + n_id] = ridge * np.eye(n_id)
            solution = _reduced_bounded(columns, base + unit_columns @ units, prior, (lower, upper))
            units, identity = solution[:n_units], solution[n_units:n_units + n_id]
        else:
            columns = np.concatenate([identity_columns, motion], axis=1)
            prior = np.concatenate([ridge * np.eye(n_id), np.zeros((n_id, 7))], axis=1)
            bounds = (np.r_[-IDENTITY_BOUND * np.ones(n_id), -free], np.r_[IDENTITY_BOUND * np.ones(n_id), free])
            identity = _reduced_bounded(columns, base, prior, bounds)[:n_id]
        current = landmarks(units, identity)
    return units, identity, current


@dataclass(frozen=True)
class ShapeFit:
    """Identity coefficients fitted to one face, and the landmark residuals (mm) before and after."""

    identity: np.ndarray  # (n_shape,)
    before_mm: dict[str, float]  # "mouth", "eyes", "brows", "all"
    after_mm: dict[str, float]

    def to_json(self) -> dict[str, object]:
        return {"identity": np.round(self.identity, 5).tolist(),
                "residual_mm_before": {k: round(v, 3) for k, v in self.before_mm.items()},
                "residual_mm_after": {k: round(v, 3) for k, v in self.after_mm.items()}}


def _residuals(observed: np.ndarray, head: np.ndarray, ids: np.ndarray) -> dict[str, float]:
    """Per region (over the region's landmarks the embedding places) and over all placed landmarks."""
    distance = np.linalg.norm(align(observed, head) - head, axis=1) * 1000.0
    out = {}
    for region, members in REGIONS.items():
        inside = np.isin(ids, members)
        out[region] = float(distance[inside].mean()) if inside.any() else float("nan")
    return {**out, "all": float(distance.mean())}


def match_shape(model: FaceModel, embedding: LandmarkEmbedding | None, observed: np.ndarray,
                expression: np.ndarray | None = None, pose: np.ndarray | None = None,
                eyelids: np.ndarray | None = None, ids: np.ndarray | None = None,
                ridge: float = MATCH_RIDGE) -> ShapeFit:
    """Fit `model`'s identity to `observed` (478, 3, metres, the canonical face frame) with its
    expression, pose and eyelids held fixed at what was read from the photo; `ids` are the
    landmarks the embedding places (all 478 when None). Raises ShapeFitError when the model has no
    identity basis or no embedding."""
    from .forward import forward

    if model.n_shape == 0:
        raise ShapeFitError(f"'{model.name}' has no identity components to fit")
    if embedding is None:
        raise ShapeFitError(f"'{model.name}' has no MediaPipe landmark embedding, so its shape cannot be "
                            "matched to a photo")
    pose = np.zeros((5, 3)) if pose is None else np.array(pose, dtype=np.float64)
    pose[0] = 0.0  # the head's own turn is not part of the face's shape; the alignment absorbs it

    def landmarks(_units: np.ndarray, identity: np.ndarray) -> np.ndarray:
        out = forward(model, shape=identity, expression=expression, pose=pose, eyelids=eyelids)
        return embedding.apply(out.vertices)

    ids = np.arange(len(observed)) if ids is None else np.asarray(ids)
    observed = np.asarray(observed, dtype=np.float64)[ids]
    identity_basis = embedding.apply(np.moveaxis(model.shapedirs, 2, 0))
    before = landmarks(np.zeros(0), np.zeros(model.n_shape))
    _, identity, after = fit_landmarks(landmarks, identity_basis, observed, np.zeros(0), ridge=ridge)
    return ShapeFit(identity, _residuals(observed, before, ids), _residuals(observed, after, ids))
