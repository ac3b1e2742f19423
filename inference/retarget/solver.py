"""Retargeting: the encoder's face-model parameters carried onto another face model or rig.

The encoder predicts parameters of one FLAME-format model (the source, e.g. the open head); the
artist's head may be another (a real FLAME head, a re-parameterised basis, an ARKit-named rig).
For FLAME-format targets, `Retargeter` solves the target's expression coefficients and jaw
rotation that best reproduce the source's landmark displacement (source posed minus source
neutral, both through the forward model) at corresponding surface points, by ridge-regularised
least squares (Gauss-Newton for the jaw) over Gram blocks precomputed once, so a video frame costs
a few small matrix products. Head rotation, gaze and (when both models have them) eyelids are copied, not solved.
ARKit-named rigs are driven by name (`match_arkit_names`, `arkit_key_values`). Correspondences
come from the open head's own layout (vertex i = MediaPipe landmark i), FLAME's
`mediapipe_landmark_embedding.npz` (read with `allow_pickle=False`, every problem a
`LandmarkEmbeddingError` naming the file) or a shared vertex order. Pure numpy: it must
not import bpy, nor scipy (Blender has none), and it never guesses a name it cannot match.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import LandmarkEmbeddingError
from ..head.default_head import N_LANDMARKS, ArkitMapping, HeadParams
from ..head.face_model import JOINT_NAMES, FaceModel
from ..perception.blendshapes import ARKIT_NAMES

JAW = JOINT_NAMES.index("jaw")
_JAW_FEATURES = slice(9 * (JAW - 1), 9 * JAW)  # the jaw's (R - I) entries among FLAME's 36 pose features


def rotation_and_derivatives(axis_angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R (3, 3) of one axis-angle vector (`forward.rodrigues`' formula) and dR (3, 3, 3), dR[a] =
    dR/d axis_angle[a] (Gallego and Yezzi 2015, "A compact formula for the derivative of a 3-D
    rotation in exponential coordinates"). One vector at a time, in plain floats: it runs several
    times a frame, where numpy's per-call overhead on 3x3 arrays would dominate."""
    x, y, z = (float(v) for v in axis_angle)
    angle = math.sqrt(x * x + y * y + z * z)
    if angle < 1e-12:
        return np.eye(3), _GENERATORS.copy()  # the exact derivative at 0
    k = _skew(x / angle, y / angle, z / angle)
    rotation = np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)
    skew_vector = _skew(x, y, z)
    complement = np.eye(3) - rotation
    derivatives = np.empty((3, 3, 3))
    for a, component in enumerate((x, y, z)):
        u, v, w = complement[:, a]
        cross = _skew(y * w - z * v, z * u - x * w, x * v - y * u)  # [axis_angle x (I - R) e_a]_x
        derivatives[a] = (component * skew_vector + cross) @ rotation / (angle * angle)
    return rotation, derivatives


def _skew(x: float, y: float, z: float) -> np.ndarray:
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


_GENERATORS = np.array([_skew(1.0, 0.0, 0.0), _skew(0.0, 1.0, 0.0), _skew(0.0, 0.0, 1.0)])


# --------------------------------------------------------------------------------------------
# Surface points and correspondences


@dataclass(frozen=True)
class SurfacePoints:
    """Points on a mesh, each a barycentric combination of three vertices, named by `labels`
    (MediaPipe landmark ids for landmark embeddings, vertex ids for vertex correspondences)."""

    vertices: np.ndarray  # (N, 3) int64 vertex ids (a vertex point repeats its id)
    weights: np.ndarray  # (N, 3) float64 barycentric coordinates
    labels: np.ndarray  # (N,) int64

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.vertices.shape != (n, 3) or self.weights.shape != (n, 3) or n == 0:
            raise ValueError(f"surface points need (N, 3) vertices and weights and N labels, N > 0; got "
                             f"{self.vertices.shape}, {self.weights.shape}, {self.labels.shape}")
        if len(np.unique(self.labels)) != n:
            raise ValueError("surface-point labels must be distinct")

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def at_vertices(cls, ids: Iterable[int] | np.ndarray, labels: Iterable[int] | np.ndarray | None = None
                    ) -> SurfacePoints:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        weights = np.zeros((len(ids), 3))
        weights[:, 0] = 1.0
        return cls(np.repeat(ids[:, None], 3, axis=1), weights,
                   ids.copy() if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1))

    def positions(self, vertices: np.ndarray) -> np.ndarray:
        """The points (N, 3) on a mesh with these vertex positions (V, 3)."""
        return np.einsum("nk,nkd->nd", self.weights, vertices[self.vertices])

    def select(self, labels: np.ndarray) -> SurfacePoints:
        """The points named `labels`, in that order (every label must be present)."""
        order = {int(label): i for i, label in enumerate(self.labels)}
        rows = np.array([order[int(label)] for label in labels], dtype=np.int64)
        return SurfacePoints(self.vertices[rows], self.weights[rows], self.labels[rows])

    def check(self, model: FaceModel, role: str) -> None:
        if self.vertices.min() < 0 or self.vertices.max() >= model.n_verts:
            raise ValueError(f"the {role} points refer to vertices outside 0..{model.n_verts - 1} of "
                             f"'{model.name}'")


def open_head_landmarks(ids: Iterable[int] | np.ndarray | None = None) -> SurfacePoints:
    """MediaPipe landmarks on the open head, where vertex i is landmark i (all 478 by default)."""
    ids = np.arange(N_LANDMARKS) if ids is None else np.asarray(ids, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= N_LANDMARKS):
        raise ValueError(f"MediaPipe landmark ids run from 0 to {N_LANDMARKS - 1}")
    return SurfacePoints.at_vertices(ids)


EMBEDDING_KEYS = ("lmk_face_idx", "lmk_b_coords", "landmark_indices")


def load_mediapipe_embedding(path: str | os.PathLike[str], model: FaceModel) -> SurfacePoints:
    """FLAME's `mediapipe_landmark_embedding.npz` (metrical-tracker, SMIRK) as points on `model`:
    `lmk_face_idx` (N,) faces of `model.faces`, `lmk_b_coords` (N, 3) barycentric coordinates,
    `landmark_indices` (N,) the MediaPipe ids they stand for. Raises LandmarkEmbeddingError."""
    path = Path(path)
    if not path.is_file():
        raise LandmarkEmbeddingError(path, "does not exist" if not path.exists() else "is not a file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise LandmarkEmbeddingError(path, "is a single array, not an .npz archive of named arrays")
        with loaded as archive:
            missing = [key for key in EMBEDDING_KEYS if key not in archive.files]
            if missing:
                raise LandmarkEmbeddingError(path, f"lacks the key(s) {', '.join(missing)} (it holds "
                                                   f"{', '.join(archive.files) or 'nothing'})")
            faces, bary, ids = (archive[key] for key in EMBEDDING_KEYS)
    except ValueError as exc:  # object arrays would need pickle, which is never allowed
        raise LandmarkEmbeddingError(path, f"holds data that cannot be read safely ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise LandmarkEmbeddingError(path, f"is truncated or not an .npz archive ({exc})") from None

    n = len(faces) if faces.ndim == 1 else -1
    if n <= 0 or bary.shape != (n, 3) or ids.shape != (n,):
        raise LandmarkEmbeddingError(path, f"has arrays of shapes lmk_face_idx {faces.shape}, lmk_b_coords "
                                           f"{bary.shape}, landmark_indices {ids.shape}; expected (N,), (N, 3), (N,)")
    if not (np.issubdtype(faces.dtype, np.integer) and np.issubdtype(ids.dtype, np.integer)):
        raise LandmarkEmbeddingError(path, f"has non-integer indices ({faces.dtype}, {ids.dtype})")
    if not np.issubdtype(bary.dtype, np.floating) or not np.all(np.isfinite(bary)):
        raise LandmarkEmbeddingError(path, "has barycentric coordinates that are not finite numbers")
    if not np.allclose(bary.sum(axis=1), 1.0, atol=1e-3):
        raise LandmarkEmbeddingError(path, "has barycentric coordinates whose rows do not sum to 1")
    faces, ids = faces.astype(np.int64), ids.astype(np.int64)
    if faces.min() < 0 or faces.max() >= len(model.faces):
        raise LandmarkEmbeddingError(path, f"refers to faces outside 0..{len(model.faces) - 1} of '{model.name}' "
                                           f"(it was made for another mesh)")
    if ids.min() < 0 or ids.max() >= N_LANDMARKS or len(np.unique(ids)) != n:
        raise LandmarkEmbeddingError(path, "has landmark_indices that are not distinct MediaPipe ids "
                                           f"0..{N_LANDMARKS - 1}")
    return SurfacePoints(model.faces[faces].astype(np.int64), bary.astype(np.float64), ids)


@dataclass(frozen=True)
class Correspondence:
    """The same N surface points on the source model and on the target model, row for row."""

    source: SurfacePoints
    target: SurfacePoints

    def __post_init__(self) -> None:
        if len(self.source) != len(self.target):
            raise ValueError(f"{len(self.source)} source points but {len(self.target)} target points")

    def __len__(self) -> int:
        return len(self.source)

    @classmethod
    def by_label(cls, source: SurfacePoints, target: SurfacePoints) -> Correspondence:
        """Pair the points both sides name alike (e.g. the MediaPipe ids both embed), in the target's order."""
        common = np.array([label for label in target.labels if label in set(source.labels.tolist())], dtype=np.int64)
        if len(common) == 0:
            raise ValueError("the source and target points share no label")
        return cls(source.select(common), target.select(common))

    @classmethod
    def open_head_to_flame(cls, embedding_path: str | os.PathLike[str], target: FaceModel) -> Correspondence:
        """From the open head (landmark i = vertex i) to a FLAME head through its MediaPipe embedding."""
        return cls.by_label(open_head_landmarks(), load_mediapipe_embedding(embedding_path, target))

    @classmethod
    def shared_vertices(cls, source_ids: Iterable[int] | np.ndarray,
                        target_ids: Iterable[int] | np.ndarray | None = None) -> Correspondence:
        """Vertex `source_ids[i]` of the source is vertex `target_ids[i]` of the target (the same ids
        when the two models share their vertex order)."""
        source_ids = np.asarray(source_ids, dtype=np.int64).reshape(-1)
        target_ids = source_ids if target_ids is None else np.asarray(target_ids, dtype=np.int64).reshape(-1)
        return cls(SurfacePoints.at_vertices(source_ids), SurfacePoints.at_vertices(target_ids, labels=source_ids))


# --------------------------------------------------------------------------------------------
# The forward model at a few points


class PointModel:
    """`forward.forward` restricted to the vertices under some surface points, with every joint but
    the jaw at rest: what retargeting evaluates each frame (the full mesh would cost 50x more).
    Joints are regressed from the whole shaped mesh, so the jaw joint's dependence on shape and
    expression is precomputed as a (3, K) matrix."""

    def __init__(self, model: FaceModel, points: SurfacePoints, shape: np.ndarray | None = None) -> None:
        points.check(model, "surface")
        ids, inverse = np.unique(points.vertices, return_inverse=True)
        self.model = model
        self.points = points
        self.blend = np.zeros((len(points), len(ids)))  # points = blend @ vertices
        np.add.at(self.blend, (np.repeat(np.arange(len(points)), 3), inverse.reshape(-1)), points.weights.reshape(-1))
        regressor = model.j_regressor[JAW]
        template = model.v_template
        if shape is not None:
            shape = np.asarray(shape, dtype=np.float64)
            template = template + model.shapedirs[:, :, : len(shape)] @ shape
        self.template = template[ids]
        self.jaw_template = regressor @ template
        self.shapedirs = model.shapedirs[ids]
        self.jaw_shapedirs = np.einsum("v,vdk->dk", regressor, model.shapedirs)
        self.exprdirs = model.exprdirs[ids]
        self.jaw_exprdirs = np.einsum("v,vdk->dk", regressor, model.exprdirs)
        self.posedirs = np.ascontiguousarray(model.posedirs[ids][:, :, _JAW_FEATURES])
        self.jaw_weight = model.weights[ids, JAW]
        self.weight_sum = model.weights[ids].sum(axis=1)  # 1 within the loader's tolerance; kept to match forward
        self.eyelids = None if model.eyelids is None else model.eyelids[:, ids]

    def shaped(self, shape: np.ndarray | None = None, expression: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Vertices before posing and the jaw joint, for identity `shape` and `expression`."""
        vertices, joint = self.template.copy(), self.jaw_template.copy()
        if shape is not None:
            shape = np.asarray(shape, dtype=np.float64)
            vertices += self.shapedirs[:, :, : len(shape)] @ shape
            joint += self.jaw_shapedirs[:, : len(shape)] @ shape
        if expression is not None:
            expression = np.asarray(expression, dtype=np.float64)
            vertices += self.exprdirs[:, :, : len(expression)] @ expression
            joint += self.jaw_exprdirs[:, : len(expression)] @ expression
        return vertices, joint

    def posed(self, shaped: np.ndarray, joint: np.ndarray, jaw: np.ndarray | None = None,
              eyelids: np.ndarray | None = None) -> np.ndarray:
        """The points (N, 3) with the jaw turned by axis-angle `jaw` and eyelids [left, right]."""
        return self._posed(shaped, joint, jaw, eyelids, jacobian=False)[0]

    def posed_with_jacobian(self, shaped: np.ndarray, joint: np.ndarray, jaw: np.ndarray,
                            eyelids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The points (N, 3) and their derivative (N, 3, 3) by the jaw's axis-angle (last axis)."""
        points, jacobian = self._posed(shaped, joint, jaw, eyelids, jacobian=True)
        assert jacobian is not None
        return points, jacobian

    def _posed(self, shaped: np.ndarray, joint: np.ndarray, jaw: np.ndarray | None, eyelids: np.ndarray | None,
               jacobian: bool) -> tuple[np.ndarray, np.ndarray | None]:
        rotation, derivatives = rotation_and_derivatives(np.zeros(3) if jaw is None else jaw)
        delta = rotation - np.eye(3)
        rest = shaped + self.posedirs @ delta.reshape(-1)
        if eyelids is not None and self.eyelids is not None:
            rest = rest + np.tensordot(np.clip(np.asarray(eyelids, dtype=np.float64), 0.0, 1.0), self.eyelids, axes=1)
        # Skinning with only the jaw rotated: v' = (sum_k W_k) v + W_jaw (R - I)(v - J_jaw).
        lever = rest - joint
        points = self.blend @ (self.weight_sum[:, None] * rest + self.jaw_weight[:, None] * (lever @ delta.T))
        if not jacobian:
            return points, None
        # (m, 3, a) throughout; matmul, not einsum, so that BLAS does the work.
        rest_derivative = self.posedirs @ derivatives.reshape(3, 9).T  # pose correctives move too
        turned = (lever @ derivatives.reshape(9, 3).T).reshape(-1, 3, 3).transpose(0, 2, 1) + delta @ rest_derivative
        vertex_derivative = (self.weight_sum[:, None, None] * rest_derivative
                             + self.jaw_weight[:, None, None] * turned)
        return points, (self.blend @ vertex_derivative.reshape(len(lever), 9)).reshape(-1, 3, 3)

    def evaluate(self, shape: np.ndarray | None = None, expression: np.ndarray | None = None,
                 jaw: np.ndarray | None = None, eyelids: np.ndarray | None = None) -> np.ndarray:
        return self.posed(*self.shaped(shape, expression), jaw, eyelids)

    def expression_parts(self) -> tuple[np.ndarray, np.ndarray]:
        """(P, Q), both (N, 3, K), such that the points' derivative by expression with the jaw turned
        by R is P + (R - I) Q: per vertex it is (sum_k W_k) E + W_jaw (R - I)(E - dJ_jaw/dexpression)."""
        fixed = np.einsum("nm,m,mdk->ndk", self.blend, self.weight_sum, self.exprdirs)
        turning = np.einsum("nm,m,mdk->ndk", self.blend, self.jaw_weight, self.exprdirs - self.jaw_exprdirs[None])
        return fixed, turning

    def expression_jacobian(self, jaw: np.ndarray | None = None) -> np.ndarray:
        """d points / d expression, (N, 3, K), with the jaw turned by axis-angle `jaw`."""
        fixed, turning = self.expression_parts()
        delta = rotation_and_derivatives(np.zeros(3) if jaw is None else jaw)[0] - np.eye(3)
        return fixed + np.einsum("ed,ndk->nek", delta, turning)


# --------------------------------------------------------------------------------------------
# Retargeting between FLAME-format models


@dataclass(frozen=True)
class RetargetResult:
    """Target parameters for one frame, ready for `forward.forward` or the Blender rig."""

    expression: np.ndarray  # (target n_expr,) solved
    pose: np.ndarray  # (5, 3) axis-angle: root, neck and eyes copied from the source, jaw solved (or copied)
    eyelids: np.ndarray  # (2,) [left, right]: copied when both models have eyelids, else 0
    residual: float  # RMS distance (metres) between the target's points and their goals
    displacement: float  # RMS of the (scaled) source displacement the target was asked to follow
    iterations: int


class Retargeter:
    """Solves a target FLAME-format model's expression (and jaw) to follow a source model's.

    The unknowns, target expression psi (K,) and jaw axis-angle theta (3,), minimise

        sum_p w_p |f_p(psi, theta) - g_p|^2  +  lambda_e s_e |psi|^2  +  lambda_j s_j |theta|^2

    where f_p are the target's corresponding points, g_p = target neutral + scale * (source posed -
    source neutral) at the same points, and s_e, s_j the mean squared point motion of one unit of
    expression / one radian of jaw, so that lambda_e and lambda_j are dimensionless. f is linear in
    psi for a fixed jaw, not in theta, and a turned jaw turns the expression basis with it, so no
    single factorisation serves every frame. What is precomputed instead: the points' expression
    Jacobian is exactly P + (R - I) Q, so its normal matrix is a fixed quadratic in the 9 entries
    of R - I over 19 precomputed K x K Gram blocks. Each Gauss-Newton iteration then costs an
    18-term sum, the jaw's three analytic columns, one (K+3)-square solve and a backtracking line
    search on the true cost (the jaw and the expression basis can nearly explain the same motion,
    where an undamped step would overshoot). With the jaw shut or copied the problem is linear and
    the first iteration is its exact solution. `jaw="copy"` sets the target's jaw to the source's
    instead of solving it.
    """

    def __init__(self, source: FaceModel, target: FaceModel, correspondence: Correspondence, *,
                 target_shape: np.ndarray | None = None, regularisation: float = 1e-3,
                 jaw_regularisation: float = 1e-3, jaw: Literal["solve", "copy"] = "solve",
                 map_eyelids: bool = True, scale: float | None = None,
                 point_weights: np.ndarray | None = None, max_iterations: int = 20,
                 tolerance: float = 1e-6) -> None:
        correspondence.source.check(source, "source")
        correspondence.target.check(target, "target")
        if jaw not in ("solve", "copy"):
            raise ValueError(f"jaw must be 'solve' or 'copy', not {jaw!r}")
        if not (regularisation > 0 and jaw_regularisation > 0):
            raise ValueError("the regularisation weights must be positive (they keep every system solvable)")
        self.source, self.target, self.correspondence = source, target, correspondence
        self.solve_jaw = jaw == "solve"
        self.map_eyelids = map_eyelids and source.eyelids is not None and target.eyelids is not None
        self.max_iterations, self.tolerance = max_iterations, tolerance
        self._source = PointModel(source, correspondence.source)
        self._target = PointModel(target, correspondence.target, shape=target_shape)
        self.target_neutral = self._target.evaluate()
        if scale is None:
            # Heads differ in size: carry displacements in proportion to the landmark clouds' spread.
            scale = _spread(self.target_neutral) / _spread(self._source.evaluate())
        self.scale = float(scale)
        n, k = len(correspondence), target.n_expr
        self.point_weights = np.ones(n) if point_weights is None else np.asarray(point_weights, dtype=np.float64)
        if self.point_weights.shape != (n,) or np.any(self.point_weights < 0):
            raise ValueError(f"point_weights must be {n} non-negative numbers")

        fixed, turning = self._target.expression_parts()
        self._fixed = fixed.reshape(3 * n, k)
        self._turning = turning
        weighted_fixed = self.point_weights[:, None, None] * fixed
        weighted_turning = self.point_weights[:, None, None] * turning
        # Gram blocks, flattened so that one matrix product combines them: [e, d] = P_e^T W Q_d, Q_e^T W Q_d.
        self._gram_fixed = self._fixed.T @ weighted_fixed.reshape(3 * n, k)
        self._gram_cross = np.einsum("nek,ndl->edkl", fixed, weighted_turning).reshape(9, k * k)
        self._gram_turning = np.einsum("nek,ndl->edkl", turning, weighted_turning).reshape(9, k * k)
        self.expression_ridge = regularisation * _mean_positive(np.diag(self._gram_fixed))
        jaw_columns = self._target.posed_with_jacobian(*self._target.shaped(), np.zeros(3))[1]
        self.jaw_ridge = jaw_regularisation * _mean_positive(
            np.einsum("n,nda,nda->a", self.point_weights, jaw_columns, jaw_columns))

    def goal(self, expression: np.ndarray | None = None, pose: np.ndarray | None = None,
             eyelids: np.ndarray | None = None, shape: np.ndarray | None = None) -> np.ndarray:
        """Where the target's points should be: its neutral plus the source's scaled displacement.
        Head rotation and gaze are left out (they are copied); the jaw and eyelids are in."""
        jaw = None if pose is None else np.asarray(pose, dtype=np.float64).reshape(5, 3)[JAW]
        shaped, joint = self._source.shaped(shape)
        neutral = self._source.posed(shaped, joint)
        if expression is not None:
            expression = np.asarray(expression, dtype=np.float64)
            shaped = shaped + self._source.exprdirs[:, :, : len(expression)] @ expression
            joint = joint + self._source.jaw_exprdirs[:, : len(expression)] @ expression
        return self.target_neutral + self.scale * (self._source.posed(shaped, joint, jaw, eyelids) - neutral)

    def _cost(self, psi: np.ndarray, jaw: np.ndarray, eyelids: np.ndarray, goal: np.ndarray) -> float:
        offsets = self._target.evaluate(expression=psi, jaw=jaw, eyelids=eyelids) - goal
        return float(self.point_weights @ np.sum(offsets**2, axis=1) + self.expression_ridge * psi @ psi
                     + (self.jaw_ridge * jaw @ jaw if self.solve_jaw else 0.0))

    def retarget(self, expression: np.ndarray | None = None, pose: np.ndarray | None = None,
                 eyelids: np.ndarray | None = None, shape: np.ndarray | None = None) -> RetargetResult:
        """Target parameters for the source's `expression`, `pose` (5, 3), `eyelids` (2,) and
        identity `shape` (the source's neutral is taken with the same identity)."""
        source_pose = np.zeros((5, 3)) if pose is None else np.asarray(pose, dtype=np.float64).reshape(5, 3)
        return self.fit(self.goal(expression, source_pose, eyelids, shape), source_pose, eyelids)

    def fit(self, goal: np.ndarray, pose: np.ndarray | None = None, eyelids: np.ndarray | None = None
            ) -> RetargetResult:
        """Target parameters whose points best reach `goal` (N, 3), in the target's frame. `pose`
        supplies the copied head rotation and gaze (and the jaw when it is copied); `eyelids` are
        applied to the target first when they are mapped. `retarget` is `fit(goal(...))`."""
        source_pose = np.zeros((5, 3)) if pose is None else np.asarray(pose, dtype=np.float64).reshape(5, 3)
        goal = np.asarray(goal, dtype=np.float64)
        if goal.shape != self.target_neutral.shape:
            raise ValueError(f"goal has shape {goal.shape}, expected {self.target_neutral.shape}")
        target_eyelids = np.zeros(2)
        if self.map_eyelids and eyelids is not None:
            target_eyelids = np.clip(np.asarray(eyelids, dtype=np.float64), 0.0, 1.0)
        k = self.target.n_expr
        weights = self.point_weights[:, None]
        psi = np.zeros(k)
        jaw = np.zeros(3) if self.solve_jaw else source_pose[JAW].copy()
        cost = self._cost(psi, jaw, target_eyelids, goal)
        iterations = 0
        while iterations < self.max_iterations:
            iterations += 1
            shaped, joint = self._target.shaped(expression=psi)
            if self.solve_jaw:
                points, jaw_columns = self._target.posed_with_jacobian(shaped, joint, jaw, target_eyelids)
            else:
                points = self._target.posed(shaped, joint, jaw, target_eyelids)
            residual = weights * (points - goal)
            delta = rotation_and_derivatives(jaw)[0] - np.eye(3)
            # Expression block of the normal matrix at this jaw: P^T W P + sym(sum Δ_ed P_e^T W Q_d) + ...
            cross = (delta.reshape(-1) @ self._gram_cross).reshape(k, k)
            block = (self._gram_fixed + cross + cross.T + ((delta.T @ delta).reshape(-1) @ self._gram_turning
                                                           ).reshape(k, k) + self.expression_ridge * np.eye(k))
            gradient = self._pull(residual, delta) + self.expression_ridge * psi
            if self.solve_jaw:
                weighted_columns = weights[..., None] * jaw_columns  # (N, 3, 3)
                mixed = self._pull(weighted_columns.transpose(2, 0, 1), delta).T  # (K, 3)
                flat_columns = jaw_columns.reshape(-1, 3)
                jaw_block = flat_columns.T @ weighted_columns.reshape(-1, 3) + self.jaw_ridge * np.eye(3)
                block = np.block([[block, mixed], [mixed.T, jaw_block]])
                gradient = np.concatenate([gradient, flat_columns.T @ residual.reshape(-1) + self.jaw_ridge * jaw])
            step = cholesky_solve(block, gradient)
            # Backtrack until the true cost drops: Gauss-Newton steps are descent directions.
            length = 1.0
            for _ in range(30):
                trial_psi = psi - length * step[:k]
                trial_jaw = jaw - length * step[k:] if self.solve_jaw else jaw
                trial_cost = self._cost(trial_psi, trial_jaw, target_eyelids, goal)
                if trial_cost <= cost:
                    break
                length /= 2
            else:
                break  # no step lowers the cost: at a minimum to rounding
            settled = cost - trial_cost <= self.tolerance * cost
            psi, jaw, cost = trial_psi, trial_jaw, trial_cost
            if not self.solve_jaw and length == 1.0:
                break  # linear least squares: the full Gauss-Newton step is its exact solution
            if settled or length * np.linalg.norm(step) <= self.tolerance * (1.0 + np.linalg.norm(psi)):
                break
        points = self._target.evaluate(expression=psi, jaw=jaw, eyelids=target_eyelids)
        result_pose = source_pose.copy()
        result_pose[JAW] = jaw
        return RetargetResult(
            expression=psi,
            pose=result_pose,
            eyelids=target_eyelids,
            residual=_rms(points - goal),
            displacement=_rms(goal - self.target_neutral),
            iterations=iterations,
        )

    def _pull(self, residuals: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """(P + Δ Q)^T r for r (..., N, 3): per point P_n^T r_n + Q_n^T Δ^T r_n, batched as 2-D products."""
        flat = residuals.reshape(-1, self._fixed.shape[0])
        turned = (residuals.reshape(-1, 3) @ delta).reshape(flat.shape)
        result = flat @ self._fixed + turned @ self._turning.reshape(flat.shape[1], -1)
        return result.reshape(residuals.shape[:-2] + (-1,))

    def target_points(self, result: RetargetResult) -> np.ndarray:
        """The target's corresponding points (N, 3) under `result` (head rotation and gaze left out)."""
        return self._target.evaluate(expression=result.expression, jaw=result.pose[JAW], eyelids=result.eyelids)


def cholesky_solve(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """x with matrix @ x = rhs for a symmetric positive definite matrix, by Cholesky and two
    substitutions. Not `numpy.linalg.solve`: its LU took 7.5 ms on a 103-square system on a busy
    2-core machine with multi-threaded OpenBLAS (0.06 ms on one thread), while the Cholesky
    factorisation stayed under 0.1 ms; numpy has no triangular solve (and Blender no scipy), so the
    substitutions are written out, row by row."""
    factor = np.linalg.cholesky(matrix)
    n = len(rhs)
    forward = np.empty(n)
    for i in range(n):
        forward[i] = (rhs[i] - factor[i, :i] @ forward[:i]) / factor[i, i]
    solution = np.empty(n)
    for i in range(n - 1, -1, -1):
        solution[i] = (forward[i] - factor[i + 1:, i] @ solution[i + 1:]) / factor[i, i]
    return solution


def _spread(points: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum((points - points.mean(axis=0)) ** 2, axis=1))))


def _rms(offsets: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum(offsets**2, axis=-1))))


def _mean_positive(values: np.ndarray) -> float:
    # A basis no point sees has zero energy; a floor keeps its coefficients pinned at 0.
    positive = values[values > 0]
    return float(positive.mean()) if positive.size else 1.0


# --------------------------------------------------------------------------------------------
# ARKit-named rigs

_SEPARATORS = re.compile(r"[ _.\-]")
# A side suffix: "Left"/"Right" with or without a separator (eyeBlinkLeft, eyeBlink_left), or a
# lone L/R after a separator (eyeBlink_L, eyeBlink.L). A bare trailing l/r (mouthFunnel) is not one.
_SIDE = re.compile(r"^(?P<base>.+?)(?:[ _.\-]?(?P<word>left|right)|[ _.\-](?P<letter>[lr]))$", re.IGNORECASE)
_SIDE_ONLY = re.compile(r"^(left|right|l|r)$", re.IGNORECASE)


def arkit_key(name: str) -> tuple[str, str] | None:
    """The (base, side) a shape-key name stands for, side in {"", "left", "right"}; None if empty.

    Accepted, and nothing else: an optional namespace before the last ':' and before the last '.'
    (`Face.`, `blendShape1.`, `head:`; a final `.L`/`.R` is a side, not a namespace) is dropped;
    a side suffix is `Left`/`Right` (any case, optionally after one of ` _.-`) or `L`/`R` after one
    of those separators; the rest is compared with separators removed and case folded. So
    `eyeBlinkLeft`, `EyeBlinkLeft`, `eye_blink_L`, `EYE-BLINK-LEFT`, `Face.eyeBlink.L` all give
    ("eyeblink", "left"). Side-first forms (`L_eyeBlink`), numbered copies (`jawOpen.001`) and
    abbreviations are not accepted."""
    core = name.strip().rsplit(":", 1)[-1]
    parts = core.split(".")
    if len(parts) >= 2 and _SIDE_ONLY.match(parts[-1]):
        core = f"{parts[-2]}_{parts[-1]}"
    else:
        core = parts[-1]
    side = ""
    match = _SIDE.match(core)
    if match:
        core = match.group("base")
        side = "left" if (match.group("word") or match.group("letter")).lower()[0] == "l" else "right"
    base = _SEPARATORS.sub("", core).casefold()
    return (base, side) if base else None


_ARKIT_BY_KEY = {arkit_key(name): name for name in ARKIT_NAMES}
assert len(_ARKIT_BY_KEY) == len(ARKIT_NAMES), "two ARKit names normalise alike"


@dataclass(frozen=True)
class ArkitMatch:
    """How a rig's shape-key names line up with the 52 ARKit units."""

    matched: dict[str, str]  # ARKit name -> shape-key name
    unmatched: tuple[str, ...]  # the rig's keys that name no ARKit unit (left alone)
    missing: tuple[str, ...]  # ARKit units the rig has no key for
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)  # units claimed by several keys


def match_arkit_report(shape_key_names: Sequence[str]) -> ArkitMatch:
    """Match shape-key names to ARKit units (see `arkit_key` for what is accepted). When several keys
    claim one unit, a key spelled exactly as ARKit spells it wins; otherwise the unit is reported as
    ambiguous and left out, never guessed."""
    claims: dict[str, list[str]] = {}
    unmatched = []
    for key_name in shape_key_names:
        unit = _ARKIT_BY_KEY.get(arkit_key(key_name))
        if unit is None:
            unmatched.append(key_name)
        else:
            claims.setdefault(unit, []).append(key_name)
    matched, ambiguous = {}, {}
    for unit in ARKIT_NAMES:
        names = claims.get(unit, [])
        if len(names) == 1:
            matched[unit] = names[0]
        elif unit in names:
            matched[unit] = unit
        elif names:
            ambiguous[unit] = tuple(names)
    missing = tuple(unit for unit in ARKIT_NAMES if unit not in claims)
    return ArkitMatch(matched, tuple(unmatched), missing, ambiguous)


def match_arkit_names(shape_key_names: Sequence[str]) -> dict[str, str]:
    """{ARKit name: shape-key name} for the keys of a rig that name ARKit units (see `arkit_key`)."""
    return match_arkit_report(shape_key_names).matched


def arkit_key_values(values: np.ndarray | Sequence[float] | HeadParams, matched: Mapping[str, str],
                     mapping: ArkitMapping | None = None) -> dict[str, float]:
    """{shape-key name: value} for an ARKit-named rig, from 52 ARKit weights (Apple's order) or from
    the open head's parameters (`mapping` then converts them to ARKit weights). Units the rig lacks
    are skipped; values are passed through unclamped (intensity may scale them past 1)."""
    if isinstance(values, HeadParams):
        if mapping is None:
            raise ValueError("head parameters need the head's ArkitMapping to become ARKit weights")
        weights = mapping.from_params(values)
    else:
        weights = np.asarray(values, dtype=np.float64).reshape(-1)
        if weights.shape != (len(ARKIT_NAMES),):
            raise ValueError(f"expected {len(ARKIT_NAMES)} ARKit weights, got {weights.shape[0]}")
    return {matched[unit]: float(weights[i]) for i, unit in enumerate(ARKIT_NAMES) if unit in matched}
