"""The numpy FLAME forward model: the reference every other part is checked against.

Identity and expression blendshapes, joints regressed from the shaped mesh, pose correctives from
the joints' rotations, eyelid blendshapes, then linear blend skinning over FLAME's five joints
(root, neck, jaw, left eye, right eye). Single face, float64, no batching: training has its own
PyTorch twin, tested against this one. Must not import bpy.

One documented departure from SMIRK/metrical-tracker: eyelid offsets are added before skinning
(after the joints are regressed), so they turn with the head. With the head unrotated this is the
same as adding them after skinning; it is also what Blender does with a shape key under an
Armature modifier, which keeps the add-on's rig exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .face_model import FaceModel


def rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from axis-angle vectors (..., 3)."""
    axis_angle = np.asarray(axis_angle, dtype=np.float64)
    angle = np.linalg.norm(axis_angle, axis=-1, keepdims=True)
    axis = axis_angle / np.where(angle > 1e-12, angle, 1.0)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(axis.shape[:-1] + (3, 3))
    s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)


def pose_features(rotations: np.ndarray) -> np.ndarray:
    """FLAME's pose-corrective input: (R_k - I) of joints 1..4, row-major, (36,)."""
    return (rotations[1:] - np.eye(3)).reshape(-1)


def axis_angle(rotation: np.ndarray) -> np.ndarray:
    """(3,) axis-angle of a rotation matrix (3, 3): the inverse of `rodrigues` for angles below pi."""
    angle = float(np.arccos(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0)))
    axis = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    norm = float(np.linalg.norm(axis))
    return axis / norm * angle if norm > 1e-9 else np.zeros(3)


def joint_transforms(parents: np.ndarray, rotations: np.ndarray,
                     joints_rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(world, skinning), each (5, 4, 4): the chained joint transforms G_k = G_parent [R_k | J_k -
    J_parent], and G_k [I | -J_k], the transform each joint applies to a rest-pose vertex."""
    world = np.zeros((5, 4, 4))
    for k, parent in enumerate(parents):
        local = np.eye(4)
        local[:3, :3] = rotations[k]
        local[:3, 3] = joints_rest[k] - (joints_rest[parent] if parent >= 0 else 0.0)
        world[k] = local if parent < 0 else world[parent] @ local
    skinning = world.copy()
    skinning[:, :3, 3] -= np.einsum("kij,kj->ki", world[:, :3, :3], joints_rest)
    return world, skinning


@dataclass(frozen=True)
class FlameOutput:
    vertices: np.ndarray  # (V, 3) posed
    joints: np.ndarray  # (5, 3) posed joint positions
    shaped: np.ndarray  # (V, 3) before pose correctives and skinning
    rest_joints: np.ndarray  # (5, 3) regressed from `shaped`


def forward(
    model: FaceModel,
    shape: np.ndarray | None = None,
    expression: np.ndarray | None = None,
    pose: np.ndarray | None = None,
    eyelids: np.ndarray | None = None,
    translation: np.ndarray | None = None,
) -> FlameOutput:
    """Evaluate the model. `pose` is (5, 3) axis-angle [root, neck, jaw, eye.L, eye.R]; missing
    coefficients are zero; `eyelids` is [left, right] clamped to [0, 1] (SMIRK's convention)."""
    shaped = model.v_template.copy()
    if shape is not None:
        shape = np.asarray(shape, dtype=np.float64)
        shaped += model.shapedirs[:, :, : len(shape)] @ shape
    if expression is not None:
        expression = np.asarray(expression, dtype=np.float64)
        shaped += model.exprdirs[:, :, : len(expression)] @ expression
    joints_rest = model.j_regressor @ shaped

    rotations = rodrigues(np.zeros((5, 3)) if pose is None else np.asarray(pose, dtype=np.float64).reshape(5, 3))
    posed_rest = shaped + model.posedirs @ pose_features(rotations)
    if eyelids is not None and model.eyelids is not None:
        weights = np.clip(np.asarray(eyelids, dtype=np.float64), 0.0, 1.0)
        posed_rest += np.tensordot(weights, model.eyelids, axes=1)

    world, skinning = joint_transforms(model.parents, rotations, joints_rest)
    blended = np.einsum("vk,kij->vij", model.weights, skinning)
    vertices = np.einsum("vij,vj->vi", blended[:, :3, :3], posed_rest) + blended[:, :3, 3]
    joints = world[:, :3, 3].copy()
    if translation is not None:
        vertices += translation
        joints += translation
    return FlameOutput(vertices=vertices, joints=joints, shaped=shaped, rest_joints=joints_rest)
