"""Head pose onto a rig (issue 13): the face's rotation in the camera as a bone's own rotation.

MediaPipe's facial transformation matrix (and so `Expression.head_pose`, its rotation as an
axis-angle) is in the camera's frame: +x to the image's right, +y up, +z toward the camera, the
canonical face looking down +z. A rig faces Blender's front view in its own space: Z up, the face
looking down -Y, so a face looking into the camera is a rig at rest and the camera frame maps onto
the armature's as (x, y, z) -> (x, -z, y) (FLAME's axes map the same way: `rig.FLAME_TO_BLENDER`).
A bone's rotation (its pose, relative to rest, in its own axes) that turns the head by R in the
armature is B^T R B, B the bone's rest rotation in armature space; as an axis-angle a, that is
B^T C a. The turn is read relative to the actor's rest when a neutral is set (`relative`), so a
neutral facing the camera is the rig's rest. Must not import bpy.
"""

from __future__ import annotations

import numpy as np

from ..head.forward import axis_angle, rodrigues
from ..head.rig import FLAME_TO_BLENDER
from .plan import ReconstructError

CAMERA_TO_ARMATURE = FLAME_TO_BLENDER  # camera (+y up, +z to the camera) -> armature (Z up, face down -Y)
HEAD_POSE_PROPERTY = "fields_head_pose"  # the bone-local axis-angle, on the target; its driver turns the bone
DEFAULT_BONES = ("neck", "Neck", "head", "Head")  # tried in order when the artist names no bone


def relative(head_pose: np.ndarray, rest: np.ndarray | None) -> np.ndarray:
    """The turn from the actor's `rest` (both camera-frame axis-angles): R(pose) R(rest)^T."""
    if rest is None:
        return np.asarray(head_pose, dtype=np.float64)
    return axis_angle(rodrigues(head_pose) @ rodrigues(rest).T)


def _rest_rotation(bone_rest: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(np.asarray(bone_rest, dtype=np.float64)[:3, :3])  # drop the bone's scale
    return u @ vt  # type: ignore[no-any-return]


def bone_rotation(head_pose: np.ndarray, bone_rest: np.ndarray) -> np.ndarray:
    """The bone-local axis-angle turning a bone whose rest rotation in armature space is
    `bone_rest` (3, 3; columns its X, Y, Z axes) by the camera-frame turn `head_pose`."""
    return _rest_rotation(bone_rest).T @ CAMERA_TO_ARMATURE @ np.asarray(head_pose, dtype=np.float64)  # type: ignore[no-any-return]


def camera_pose(bone_axis_angle: np.ndarray, bone_rest: np.ndarray) -> np.ndarray:
    """`bone_rotation`'s inverse: the camera-frame turn(s) (..., 3) of bone-local axis-angles
    (..., 3), as a keyed head's pose is exported (Live Link Face HeadYaw/Pitch/Roll)."""
    to_camera = CAMERA_TO_ARMATURE.T @ _rest_rotation(bone_rest)
    return np.asarray(bone_axis_angle, dtype=np.float64) @ to_camera.T  # type: ignore[no-any-return]


def choose_bone(target_name: str, bones: tuple[str, ...], wanted: str) -> str:
    """The bone taking the head pose: `wanted` when the artist named one (ReconstructError when the
    rig has no such bone), else the first of DEFAULT_BONES the rig has, else "" (skipped)."""
    if wanted:
        if wanted not in bones:
            where = f"whose armature has no bone '{wanted}'" if bones else "which has no armature"
            raise ReconstructError(f"Head pose cannot be keyed on '{target_name}', {where}: set Head bone to "
                                   "one of its bones, or clear it.")
        return wanted
    return next((bone for bone in DEFAULT_BONES if bone in bones), "")
