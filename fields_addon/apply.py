"""The small bpy layer of Reconstruct: read a target into an `inference.reconstruct.Target`, and
write a `Plan` onto it.

Each predicted weight is a keyable custom property on the target (`fields_w_<key or bone>`);
each driven shape key's value is weight x `fields_intensity` and each driven bone's quaternion is
the rotation by its stored axis-angle x intensity, all through simple-expression drivers, so no
Python runs when Blender evaluates them and the intensity can be keyed and shaped in the Graph
Editor. Drivers are created once per key or bone; later reconstructions only change property
values. Must not run inference or report to the UI (the operator does both).
"""

from __future__ import annotations

from typing import Any

import bpy

from ..inference.reconstruct import (
    INTENSITY_PROPERTY,
    KEY_EXPRESSION,
    PREDICTED_INTENSITY_PROPERTY,
    Plan,
    Target,
    bone_quaternion_expressions,
    weight_property,
)
from .drivers import add_driver, add_variables

KEYING_GROUP = "FIELDS"


def _prop_path(name: str) -> str:
    return f'["{bpy.utils.escape_identifier(name)}"]'


def armature_of(obj: bpy.types.Object) -> bpy.types.Object | None:
    for modifier in obj.modifiers:
        if modifier.type == "ARMATURE" and getattr(modifier, "object", None) is not None:
            return modifier.object  # type: ignore[attr-defined, no-any-return]
    return None


def read_target(obj: bpy.types.Object) -> Target:
    keys = obj.data.shape_keys if obj.type == "MESH" else None
    names = tuple(block.name for block in keys.key_blocks[1:]) if keys is not None else ()
    rig = armature_of(obj)
    return Target(
        name=obj.name,
        shape_keys=names,
        bones=tuple(bone.name for bone in rig.pose.bones) if rig is not None else (),
        face_model=str(obj.get("fields_face_model", "")),
        face_model_sha256=str(obj.get("fields_face_model_sha256", "")),
        eyelid_keys=tuple(str(obj.get("fields_eyelid_keys", "")).split()),
    )


def ensure_intensity(target: bpy.types.Object) -> None:
    obj: Any = target  # ID-property access, which fake-bpy-module does not type
    if INTENSITY_PROPERTY in obj:
        return  # the artist's value (or its animation) stays
    obj[INTENSITY_PROPERTY] = 1.0
    obj.id_properties_ui(INTENSITY_PROPERTY).update(
        min=0.0, max=2.0, soft_min=0.0, soft_max=2.0, default=1.0, step=1, precision=3,
        description="Emotion intensity: scales every expression FIELDS applied (0 neutral, 1 as read "
        "from the photo, 2 exaggerated). Keyframe it to shape the expression over time")


def _set_weight(obj: Any, prop: str, value: Any, what: str) -> None:
    new = prop not in obj
    obj[prop] = value
    if new:
        obj.id_properties_ui(prop).update(
            soft_min=-1.0, soft_max=1.0, precision=4,
            description=f"FIELDS: predicted {what} at intensity 1, scaled by {INTENSITY_PROPERTY} through a driver")


def _is_ours(fcurve: Any, expression: str, paths: list[str]) -> bool:
    driver = fcurve.driver
    return (driver.type == "SCRIPTED" and driver.expression == expression
            and [v.targets[0].data_path for v in driver.variables] == paths)


def _ensure_driver(owner: Any, path: str, index: int, anim_owner: Any, full_path: str, expression: str,
                   targets: list[tuple[str, Any, str]]) -> None:
    """A driver on `owner.path[index]` (found on `anim_owner` as `full_path`), unless ours is there."""
    animation = anim_owner.animation_data
    existing = animation.drivers.find(full_path, index=max(index, 0)) if animation is not None else None
    if existing is not None:
        if _is_ours(existing, expression, [t[2] for t in targets]):
            return
        owner.driver_remove(path, index)  # someone else's driver on this channel: ours replaces it
    driver = add_driver(owner, path, index)
    add_variables(driver, targets)
    driver.expression = expression


def apply_plan(obj: bpy.types.Object, plan: Plan, predicted_intensity: float, frame: int | None) -> list[str]:
    """Write `plan` onto `obj` (and its armature); key the weights at `frame` when given. Returns
    the properties written."""
    ensure_intensity(obj)
    obj[PREDICTED_INTENSITY_PROPERTY] = float(predicted_intensity)
    written = []
    key = obj.data.shape_keys
    for name, value in plan.weights.items():
        prop = weight_property(name)
        _set_weight(obj, prop, float(value), f"weight of shape key '{name}'")
        block = key.key_blocks[name]
        _ensure_driver(block, "value", -1, key, f'key_blocks["{bpy.utils.escape_identifier(name)}"].value',
                       KEY_EXPRESSION,
                       [("w", obj, _prop_path(prop)), ("i", obj, _prop_path(INTENSITY_PROPERTY))])
        written.append(prop)
    rig = armature_of(obj)
    if plan.rotations and rig is not None:
        for bone, axis_angle in plan.rotations.items():
            prop = weight_property(bone)
            _set_weight(obj, prop, [float(v) for v in axis_angle], f"axis-angle of bone '{bone}' (bone axes)")
            pose_bone = rig.pose.bones[bone]
            pose_bone.rotation_mode = "QUATERNION"
            targets = [(c, obj, f"{_prop_path(prop)}[{k}]") for k, c in enumerate("xyz")]
            targets.append(("i", obj, _prop_path(INTENSITY_PROPERTY)))
            path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"].rotation_quaternion'
            for index, expression in enumerate(bone_quaternion_expressions()):
                _ensure_driver(rig, path, index, rig, path, expression, targets)
            written.append(prop)
    if frame is not None:
        for prop in written:
            obj.keyframe_insert(_prop_path(prop), frame=frame, group=KEYING_GROUP)
    obj.update_tag()
    return written


def key_intensity(target: bpy.types.Object, frame: int, use_predicted: bool) -> float:
    obj: Any = target
    ensure_intensity(obj)
    if use_predicted and PREDICTED_INTENSITY_PROPERTY in obj:
        obj[INTENSITY_PROPERTY] = float(obj[PREDICTED_INTENSITY_PROPERTY])
    obj.keyframe_insert(_prop_path(INTENSITY_PROPERTY), frame=frame, group=KEYING_GROUP)
    obj.update_tag()
    return float(obj[INTENSITY_PROPERTY])
