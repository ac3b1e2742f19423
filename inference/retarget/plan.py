"""What "Reconstruct from photo" sets on a target, decided without Blender.

The add-on describes its target as a `Target` (shape-key names, bone names, the face model a
FIELDS head was built from); `plan` turns one encoder `Expression` into a `Plan`: per-shape-key
weights and per-bone axis-angles at intensity 1, which the add-on stores as keyable properties and
scales by the emotion intensity through simple-expression drivers. Three routes, tried in order:
direct (the head was built from the encoder's own face model: its parameters are applied as they
are), FLAME (a FIELDS-built head of another FLAME-format model: `retarget.Retargeter` solves its
expression and jaw through landmark correspondences) and ARKit names (any rig whose keys name
ARKit units: the encoder's 52 units by name). The encoder's head is the ICT head: its shape keys are
the units themselves and its bones follow from them through its ARKit table, so the direct route
is the identity. Also here: choosing the face when a photo holds several, and the driver expressions.
Must not import bpy, and must not touch any file except through the loaders it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import FieldsError
from ..expression.encoder import Expression, FaceModelContract
from ..head.default_head import ARKIT_TO_PARAMS, EYE_L, EYE_R, JAW, ArkitMapping, HeadParams
from ..head.rig import BONE_AXES

PARTS = ("expression", "jaw", "eyelids", "gaze")
INTENSITY_PROPERTY = "fields_intensity"
PREDICTED_INTENSITY_PROPERTY = "fields_predicted_intensity"
WEIGHT_PREFIX = "fields_w_"
MAX_PROPERTY_NAME = 63  # Blender's ID-property names hold 63 characters
EYE_BONES = {"eye.L": EYE_L, "eye.R": EYE_R}


class ReconstructError(FieldsError):
    """The photo or the target cannot be used; the message is one sentence for the artist."""


@dataclass(frozen=True)
class Target:
    """What the add-on's target offers, read from Blender."""

    name: str
    shape_keys: tuple[str, ...]  # every key but the reference (Basis)
    bones: tuple[str, ...] = ()  # of the armature deforming it, if any
    face_model: str = ""  # the face model a FIELDS head was built from ("" for other rigs)
    face_model_sha256: str = ""
    eyelid_keys: tuple[str, ...] = ()
    mapping: Any = None  # the artist's own `mapping.Mapping` (the panel's mapping editor), if any


@dataclass
class Plan:
    """Values at intensity 1; the add-on multiplies them by the target's intensity."""

    route: str  # "direct", "flame" or "arkit"
    weights: dict[str, float]  # shape-key name -> weight
    rotations: dict[str, np.ndarray] = field(default_factory=dict)  # bone -> (3,) axis-angle, bone-local


def weight_property(name: str) -> str:
    """The custom property holding the predicted weight of a shape key or bone."""
    return (WEIGHT_PREFIX + name)[:MAX_PROPERTY_NAME]


def choose_face(n_faces: int, number: int, photo: str) -> int:
    """Index of the face to use: `number` 0 means "the only one", 1.. picks largest-first."""
    if n_faces == 0:
        raise ReconstructError(f"No face was found in {photo}.")
    if number == 0:
        if n_faces > 1:
            raise ReconstructError(f"{photo} holds {n_faces} faces: set Face to 1-{n_faces} to choose one "
                                   "(1 is the largest).")
        return 0
    if number > n_faces:
        raise ReconstructError(f"{photo} holds {n_faces} face{'s' if n_faces > 1 else ''}, so there is no "
                               f"face {number}: set Face to 1-{n_faces}.")
    return number - 1


def source_parameters(expression: Expression, names: Iterable[str]) -> HeadParams:
    """The prediction as parameters of the encoder's face model (FLAME's pose layout)."""
    pose = np.zeros((5, 3))
    pose[JAW] = expression.jaw
    pose[EYE_L], pose[EYE_R] = expression.gaze[0], expression.gaze[1]
    return HeadParams(expression=np.array([expression.expression[n] for n in names], dtype=np.float64),
                      pose=pose, eyelids=np.asarray(expression.eyelids, dtype=np.float64))


def bone_axis_angle(bone: str, flame_axis_angle: np.ndarray) -> np.ndarray:
    """A FLAME joint's axis-angle in its Blender bone's local axes (exact: the bone's rest frame is
    a rotation M of FLAME's, and M^T exp([a]) M = exp([M^T a]))."""
    return BONE_AXES[bone].T @ np.asarray(flame_axis_angle, dtype=np.float64)


def _bones_plan(parts: set[str], pose: np.ndarray, target: Target) -> dict[str, np.ndarray]:
    rotations = {}
    if "jaw" in parts and "jaw" in target.bones:
        rotations["jaw"] = bone_axis_angle("jaw", pose[JAW])
    if "gaze" in parts:
        rotations.update({bone: bone_axis_angle(bone, pose[joint]) for bone, joint in EYE_BONES.items()
                          if bone in target.bones})
    return rotations


def _flame_weights(parts: set[str], names: Iterable[str], expression: np.ndarray, eyelids: np.ndarray,
                   target: Target) -> dict[str, float]:
    weights: dict[str, float] = {}
    if "expression" in parts:
        weights.update(zip(names, map(float, expression), strict=True))
    if "eyelids" in parts and len(target.eyelid_keys) == 2:
        weights.update(zip(target.eyelid_keys, map(float, eyelids), strict=True))
    return weights


def arkit_part(unit: str) -> str:
    """Which of PARTS an ARKit unit belongs to (the parameter it drives on a FLAME-format head)."""
    kind = ARKIT_TO_PARAMS[unit]
    if kind[0] == "pose":
        return "jaw" if kind[1] == JAW else "gaze"
    return "eyelids" if kind[0] == "eyelid" else "expression"


def plan(expression: Expression, face_model: FaceModelContract, target: Target, parts: Iterable[str], *,
         arkit: Callable[[], ArkitMapping] | None = None,
         retarget: Callable[[HeadParams], tuple[dict[str, float], np.ndarray, np.ndarray]] | None = None,
         head_tables: Callable[[Target], tuple[tuple[str, ...], ArkitMapping] | None] | None = None) -> Plan:
    """The plan for `target`. `face_model` is the encoder's (`ExpressionEncoder.face_model`).
    `arkit` gives the encoder model's ARKit table (only the open head has one); `retarget` maps
    source parameters to a FLAME target's ({key name: expression value}, pose (5, 3), eyelids) and is needed only
    for the FLAME route: the caller builds it from the files the artist set. `head_tables` gives a
    FIELDS head's own shape-key names and ARKit table when its file carries one (the ICT head, the
    old open head): the units then drive it through its own table, which for the encoder's head is
    the identity. Raises ReconstructError when nothing of the target can be driven."""
    from ..perception.blendshapes import ARKIT_NAMES
    from .mapping import auto_mapping

    chosen = set(parts) & set(PARTS)
    if not chosen:
        raise ReconstructError("Nothing to apply: tick at least one of Expression, Jaw, Eyelids or Gaze.")
    names = list(face_model.expression_names)
    params = source_parameters(expression, names)

    def units() -> dict[str, float]:
        # The encoder's output is the 52 ARKit units; `arkit` reads older predictions that carry only
        # a head's parameters back into units.
        if expression.units:
            return dict(expression.units)
        return dict(zip(ARKIT_NAMES, map(float, arkit().from_params(params)), strict=True))  # type: ignore[misc]

    if target.mapping is not None:  # the artist's own mapping wins over every automatic route
        target.mapping.check(target.name, target.shape_keys, target.bones)
        weights, rotations = target.mapping.evaluate(units(), chosen)
        return Plan("mapping", weights, rotations)
    keys = set(target.shape_keys)
    same_model = (target.face_model == face_model.name
                  and (not target.face_model_sha256 or target.face_model_sha256 == face_model.sha256))
    if same_model and set(names) <= keys:
        return Plan("direct", _flame_weights(chosen, names, params.expression, params.eyelids, target),
                    _bones_plan(chosen, params.pose, target))
    tables = head_tables(target) if (head_tables is not None and target.face_model and expression.units) else None
    if tables is not None and set(tables[0]) <= keys:
        own = tables[1].to_params(np.array([expression.units[u] for u in ARKIT_NAMES]))
        return Plan("direct", _flame_weights(chosen, tables[0], own.expression, own.eyelids, target),
                    _bones_plan(chosen, own.pose, target))
    if target.face_model and not same_model:
        if retarget is None:
            raise ReconstructError(f"'{target.name}' was built from the face model '{target.face_model}', "
                                   "which needs retargeting: set its file and landmark embedding in the "
                                   "add-on's preferences.")
        solved, pose, eyelids = retarget(params)
        present = [n for n in solved if n in keys]
        return Plan("flame", _flame_weights(chosen, present, np.array([solved[n] for n in present]), eyelids,
                                            target), _bones_plan(chosen, pose, target))
    if not target.shape_keys:
        raise ReconstructError(f"'{target.name}' has no shape keys to drive: use Add Head, or pick a rig "
                               "with ARKit-named shape keys.")
    mapping = auto_mapping(target.shape_keys)
    if (arkit is None and not expression.units) or not mapping.rows:
        raise ReconstructError(f"None of the {len(target.shape_keys)} shape keys of '{target.name}' is named "
                               "after an ARKit unit (e.g. jawOpen, eyeBlinkLeft) or the encoder's face model.")
    return Plan("arkit", mapping.evaluate(units(), chosen)[0])


# Driver expressions: Blender's simple-expression evaluator runs them without Python.
KEY_EXPRESSION = "w*i"


def bone_quaternion_expressions() -> tuple[str, str, str, str]:
    """(w, x, y, z) of the rotation by axis-angle (x, y, z) x intensity i. The sine over the angle
    is guarded by max(..., 1e-9): at angle 0 the vector part is 0 either way."""
    norm = "sqrt(x*x+y*y+z*z)"
    half_sine = f"sin(0.5*i*{norm})/max(i*{norm},1e-9)"
    return (f"cos(0.5*i*{norm})", f"x*i*{half_sine}", f"y*i*{half_sine}", f"z*i*{half_sine}")
