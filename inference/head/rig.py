"""The maths of the Blender FLAME rig, kept free of bpy so it can be tested without Blender.

The add-on's rig must evaluate to exactly what `forward.forward` computes. Three facts make that
possible with only shape keys, an Armature modifier and simple-expression drivers (no Python runs
per evaluation):

* Axes. Blender is Z-up with the face looking down -Y, FLAME is Y-up looking down +Z, so meshes are
  stored as C @ v_flame (+90 degrees about X). Each bone's rest frame, expressed in FLAME axes, is a
  signed permutation M_k: root and neck point up (+y), jaw and eyes point forward (+z), so an eye
  bone's Y axis is its gaze and a Damped Track constraint aims it. FLAME's rotation of joint k is
  R_k = M_k Rb_k M_k^T, with Rb_k the bone's own (local) rotation.
* Pose correctives. FLAME's 36 pose features are entries of (R_k - I); each is a quadratic form of
  the bone's quaternion, written as a driver expression on a `pose_NN` shape key.
* Moving joints. FLAME regresses joints from the shaped mesh, so identity and expression keys move
  the pivots, while a Blender bone's rest head is fixed. With rest heads at the template's joints
  J0 and an offset dJ = J(shape, expression) - J0, the rig is exact when a pivot bone (MCH-<joint>)
  between a joint's bone and its parent carries the location (I - Rb) dJ in bone-local axes (the
  pivot, not the bone itself, so a driver reading the bone's rotation makes no dependency cycle).
  dJ is linear in the shape-key values: drivers sum them into hidden custom properties, in chunks
  because a driver expression holds at most 255 characters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .face_model import JOINT_NAMES, PARENTS, FaceModel

# FLAME (x, y, z) -> Blender (x, -z, y): +90 degrees about X.
FLAME_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

_UP = np.eye(3)  # bone axes (x, y, z) = FLAME (x, y, z)
_FORWARD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # columns: x, z, -y
# Columns are each bone's local X, Y (along the bone), Z in FLAME axes.
BONE_AXES = {"root": _UP, "neck": _UP, "jaw": _FORWARD, "eye.L": _FORWARD, "eye.R": _FORWARD}
BONE_LENGTH = {"root": 0.10, "neck": 0.10, "jaw": 0.25, "eye.L": 0.05, "eye.R": 0.05}  # x head size

MAX_EXPRESSION = 255  # Blender's ChannelDriver.expression is a char[256]


def joint_offset_prop(component: int) -> str:
    """Custom property on the rig holding joint offset component 3k+axis (the leading '_' keeps it
    out of the Custom Properties panel)."""
    return f"_fields_joint_offset_{component:02d}"


def joint_offset_part_prop(part: int) -> str:
    return f"_fields_joint_offset_part_{part:03d}"


def pivot_name(joint: str) -> str:
    return f"MCH-{joint}"


def pose_key_name(feature: int) -> str:
    return f"pose_{feature:02d}"


@dataclass(frozen=True)
class BoneSpec:
    name: str
    parent: str | None
    head: np.ndarray  # Blender armature space
    tail: np.ndarray
    z_axis: np.ndarray  # for roll
    deform: bool


def bone_specs(model: FaceModel) -> list[BoneSpec]:
    """Rest bones in build order: each joint's pivot (MCH-) then the joint's own deform bone."""
    joints = model.rest_joints()
    size = model.size()
    specs = []
    for k, joint in enumerate(JOINT_NAMES):
        axes = FLAME_TO_BLENDER @ BONE_AXES[joint]
        head = FLAME_TO_BLENDER @ joints[k]
        tail = head + axes[:, 1] * BONE_LENGTH[joint] * size
        parent = JOINT_NAMES[PARENTS[k]] if PARENTS[k] >= 0 else None
        specs.append(BoneSpec(pivot_name(joint), parent, head, tail, axes[:, 2], deform=False))
        specs.append(BoneSpec(joint, pivot_name(joint), head, tail, axes[:, 2], deform=True))
    return specs


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a (w, x, y, z) quaternion, normalised as Blender does."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of a rotation matrix, w >= 0."""
    w = np.sqrt(max(0.0, 1.0 + m[0, 0] + m[1, 1] + m[2, 2])) / 2
    x = np.copysign(np.sqrt(max(0.0, 1.0 + m[0, 0] - m[1, 1] - m[2, 2])) / 2, m[2, 1] - m[1, 2])
    y = np.copysign(np.sqrt(max(0.0, 1.0 - m[0, 0] + m[1, 1] - m[2, 2])) / 2, m[0, 2] - m[2, 0])
    z = np.copysign(np.sqrt(max(0.0, 1.0 - m[0, 0] - m[1, 1] + m[2, 2])) / 2, m[1, 0] - m[0, 1])
    q = np.array([w, x, y, z])
    return q / np.linalg.norm(q)


def flame_pose_to_bone_quaternions(rotations: np.ndarray) -> dict[str, np.ndarray]:
    """Bone-local (w, x, y, z) for FLAME rotation matrices (5, 3, 3) [root, neck, jaw, eye.L, eye.R]."""
    return {
        joint: matrix_to_quaternion(BONE_AXES[joint].T @ rotations[k] @ BONE_AXES[joint])
        for k, joint in enumerate(JOINT_NAMES)
    }


# (R - I)[r][c] of a quaternion (w, x, y, z), divided by its squared norm as Blender normalises.
_R_MINUS_I = (
    ("-2*(y*y+z*z)", "2*(x*y-w*z)", "2*(x*z+w*y)"),
    ("2*(x*y+w*z)", "-2*(x*x+z*z)", "2*(y*z-w*x)"),
    ("2*(x*z-w*y)", "2*(y*z+w*x)", "-2*(x*x+y*y)"),
)
_NORM = "(w*w+x*x+y*y+z*z)"


def _signed_terms(terms: list[tuple[float, str]]) -> str:
    text = ""
    for coef, expr in terms:
        if coef == 1.0:
            text += f"+{expr}"
        elif coef == -1.0:
            text += f"-{expr}"
        else:
            text += f"+{coef!r}*{expr}"
    return text.lstrip("+") or "0"


def pose_feature_expression(joint: str, row: int, col: int) -> str:
    """Driver expression (variables w, x, y, z: the bone's quaternion) for FLAME's (R - I)[row][col]."""
    m = BONE_AXES[joint]
    terms = [
        (float(m[row, a] * m[col, b]), f"({_R_MINUS_I[a][b]})")
        for a in range(3) for b in range(3) if m[row, a] * m[col, b] != 0.0
    ]
    return f"({_signed_terms(terms)})/{_NORM}"


def pose_features_from_quaternions(quaternions: dict[str, np.ndarray]) -> np.ndarray:
    """Evaluate the 36 pose-feature expressions (as drivers would) for bone quaternions."""
    values = []
    for joint in JOINT_NAMES[1:]:
        w, x, y, z = quaternions[joint]
        for row in range(3):
            for col in range(3):
                values.append(eval(pose_feature_expression(joint, row, col),  # noqa: S307
                                   {"__builtins__": {}}, {"w": w, "x": x, "y": y, "z": z}))
    return np.array(values)


def pivot_location_expression(axis: int) -> str:
    """Driver expression for the pivot bone's location[axis]: ((I - Rb) d)[axis], with the bone's
    quaternion in w, x, y, z and its joint offset (bone-local) in d0, d1, d2."""
    terms = [f"({_R_MINUS_I[axis][c]})*d{c}" for c in range(3)]
    return f"-({'+'.join(terms)})/{_NORM}"


def joint_offset_basis(model: FaceModel, include_identity: bool) -> tuple[list[str], np.ndarray]:
    """Shape-key names that move joints, and (K, 15) coefficients: joint k's offset in its bone's
    local axes, 3 values per joint, per unit of each key."""
    names = list(model.expression_names)
    dirs = [model.exprdirs]
    if include_identity:
        names = list(model.shape_names) + names
        dirs.insert(0, model.shapedirs)
    basis = np.concatenate(dirs, axis=2) if dirs else np.zeros((model.n_verts, 3, 0))
    per_joint = np.einsum("jv,vdk->kjd", model.j_regressor, basis)  # (K, 5, 3) FLAME axes
    local = np.stack([per_joint[:, k] @ BONE_AXES[joint] for k, joint in enumerate(JOINT_NAMES)], axis=1)
    return names, local.reshape(len(names), -1)


def linear_sum_chunks(coefficients: np.ndarray, tolerance: float = 1e-12) -> list[tuple[str, list[int]]]:
    """Split sum_i c_i * v_i into driver expressions of at most MAX_EXPRESSION characters.

    Returns (expression, indices) pairs: variable `v{j}` of a chunk stands for input indices[j].
    Coefficients smaller than `tolerance` (in metres per unit) are dropped."""
    chunks: list[tuple[str, list[int]]] = []
    expression, indices = "", list[int]()
    for i, coef in enumerate(coefficients):
        if abs(coef) < tolerance:
            continue
        term = f"v{len(indices)}*{_fixed(coef)}"
        if len(expression) + len(term) + 1 > MAX_EXPRESSION:
            chunks.append((expression, indices))
            expression, indices = "", list[int]()
            term = f"v0*{_fixed(coef)}"
        expression = f"{expression}+{term}" if expression else term
        indices.append(i)
    if indices:
        chunks.append((expression, indices))
    return chunks


def _fixed(value: float) -> str:
    """A coefficient in fixed-point notation: 12 decimals are picometres per unit, far finer than
    Blender's float32 values, and the same length as exponent notation."""
    return f"{float(value):.12f}".rstrip("0").rstrip(".")
