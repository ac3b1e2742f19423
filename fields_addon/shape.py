"""The small bpy layer of "Match face shape": read what the target shows, fit, write identity keys.

The fit itself is `inference.head.shape_fit.match_shape` (numpy only). This module reads the
target's face model (found by checksum, `common.head_file`), its landmark embedding (the shipped
ICT head's own, or the one set in the preferences for a FLAME file), and the expression the head
will show once Reconstruct's plan is applied (plan x intensity; keys and bones the plan leaves
alone at their current values), so the expression read from the photo is held fixed while the
identity is solved. `fit` raises ReconstructError before anything is written; `write` sets the
identity shape keys, which Add Head creates and the rig's joint-offset drivers already follow, so
Blender's evaluated mesh stays the numpy forward model. Must not report to the UI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from . import apply, preferences, sessions
from .common import head_file


def _embedding(context: bpy.types.Context, target: bpy.types.Object, path: str) -> str:
    from ..inference.head.ict import SHIPPED_EMBEDDINGS
    from ..inference.retarget.plan import ReconstructError

    shipped = SHIPPED_EMBEDDINGS.get(Path(path).name)
    if shipped is not None and Path(path).resolve().parent == shipped.resolve().parent:
        return str(shipped)
    prefs = preferences.get(context)
    if prefs.embedding_path and os.path.samefile(path, bpy.path.abspath(prefs.flame_path)):
        return bpy.path.abspath(prefs.embedding_path)
    raise ReconstructError(f"'{target.name}' has no MediaPipe landmark embedding, so its face shape cannot be "
                           "matched: set the landmark embedding of its FLAME file in the add-on's preferences, "
                           "or untick Match face shape.")


def _axis_angle(quaternion: Any) -> np.ndarray:
    w, vector = float(quaternion[0]), np.array(quaternion[1:], dtype=np.float64)
    sine = float(np.linalg.norm(vector))
    return np.zeros(3) if sine < 1e-12 else vector / sine * 2.0 * np.arctan2(sine, w)


def fit(context: bpy.types.Context, target: bpy.types.Object, plan: Any, face: Any) -> tuple[Any, Any]:
    """(face model, ShapeFit) for `target` showing `plan`, fitted to the perceived `face`."""
    from ..inference.errors import FieldsError
    from ..inference.expression.features import pose_normalised
    from ..inference.head.face_model import JOINT_NAMES
    from ..inference.head.rig import BONE_AXES
    from ..inference.head.shape_fit import LandmarkEmbedding, ShapeFitError, match_shape
    from ..inference.retarget.plan import INTENSITY_PROPERTY, ReconstructError

    path = head_file(context, target)
    if not path:
        raise ReconstructError(f"Match face shape needs a head made by Add Head: '{target.name}' was not built "
                               "from the shipped head or from the FLAME file set in the add-on's preferences.")
    model = sessions.face_model(path)
    keys = target.data.shape_keys.key_blocks if target.data.shape_keys is not None else {}
    if model.n_shape == 0 or any(name not in keys for name in model.shape_names):
        raise ReconstructError(f"'{target.name}' has no identity shape keys to match the face shape with: add "
                               "the head again with Identity shape keys ticked.")
    embedding_path = _embedding(context, target, path)
    try:
        embedding, ids = sessions.cached_value(f"embedding:{embedding_path}", (path, embedding_path),
                                               lambda: LandmarkEmbedding.load(embedding_path, model))
    except FieldsError as error:
        raise ReconstructError(str(error)) from None
    intensity = float(target.get(INTENSITY_PROPERTY, 1.0))

    def shown(name: str) -> float:
        return plan.weights[name] * intensity if name in plan.weights else float(keys[name].value)

    expression = np.array([shown(n) if n in keys else 0.0 for n in model.expression_names])
    eyelids = np.array([shown(n) if n in keys else 0.0 for n in model.eyelid_names]) if model.eyelids is not None \
        else None
    pose = np.zeros((len(JOINT_NAMES), 3))
    rig = apply.armature_of(target)
    for k, bone in enumerate(JOINT_NAMES):
        if bone in plan.rotations:
            local = np.asarray(plan.rotations[bone]) * intensity
        elif rig is not None and bone in rig.pose.bones:
            local = _axis_angle(rig.pose.bones[bone].rotation_quaternion)
        else:
            continue
        pose[k] = BONE_AXES[bone] @ local
    observed = pose_normalised(face.metric_landmarks, face.matrix) / 100.0  # centimetres -> metres
    try:
        return model, match_shape(model, embedding, observed, expression, pose, eyelids, ids)
    except ShapeFitError as error:
        raise ReconstructError(str(error)) from None


def write(target: bpy.types.Object, model: Any, identity: np.ndarray) -> None:
    keys = target.data.shape_keys.key_blocks
    for name, value in zip(model.shape_names, identity, strict=True):
        keys[name].value = float(value)
