"""The FLAME route's solver: a source model's parameters carried onto another FLAME-format model.

The encoder predicts parameters of one FLAME-format model (the source, e.g. the open head); the
artist's head may be another (a real FLAME head, a re-parameterised basis). `Retargeter` solves the
target's expression coefficients and jaw rotation that best reproduce the source's landmark
displacement (source posed minus source neutral, both through the forward model) at corresponding
surface points (`correspondence`), by ridge-regularised least squares (Gauss-Newton for the jaw)
over Gram blocks precomputed once, so a video frame costs a few small matrix products. Head
rotation, gaze and (when both models have them) eyelids are copied, not solved. Pure numpy: it
must not import bpy, nor scipy (Blender has none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..head.face_model import JOINT_NAMES, FaceModel
from .correspondence import Correspondence, SurfacePoints

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
