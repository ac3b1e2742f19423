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

from ..inference.retarget.plan import (
    INTENSITY_PROPERTY,
    KEY_EXPRESSION,
    PREDICTED_INTENSITY_PROPERTY,
    REGION_KEY_EXPRESSION,
    Plan,
    Target,
    bone_quaternion_expressions,
    weight_property,
)
from ..inference.retarget.regions import DESCRIPTIONS, REGIONS, strength_property
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
        mapping=_mapping(obj),
    )


def _mapping(obj: Any) -> Any:
    from .artist import object_mapping

    return object_mapping(obj)


def ensure_intensity(target: bpy.types.Object) -> None:
    obj: Any = target  # ID-property access, which fake-bpy-module does not type
    if INTENSITY_PROPERTY in obj:
        return  # the artist's value (or its animation) stays
    obj[INTENSITY_PROPERTY] = 1.0
    obj.id_properties_ui(INTENSITY_PROPERTY).update(
        min=0.0, max=2.0, soft_min=0.0, soft_max=2.0, default=1.0, step=1, precision=3,
        description="Emotion intensity: scales every expression FIELDS applied (0 neutral, 1 as read "
        "from the photo, 2 exaggerated). Keyframe it to shape the expression over time")


def ensure_strengths(target: bpy.types.Object) -> None:
    """The per-region multipliers (issue 13), 1 by default, keyable; the artist's values stay."""
    obj: Any = target
    for region in REGIONS:
        prop = strength_property(region)
        if prop in obj:
            continue
        obj[prop] = 1.0
        obj.id_properties_ui(prop).update(
            min=0.0, max=2.0, soft_min=0.0, soft_max=2.0, default=1.0, step=1, precision=3,
            description=f"FIELDS {region} strength: multiplies {DESCRIPTIONS[region]} on top of Intensity and the "
            "mapping's gains (0 off, 1 as read, 2 doubled). Keyframe it to shape that region over time")


def ensure_confidence(target: bpy.types.Object) -> None:
    """The per-frame face score property that Apply to Sequence keys (issue 13)."""
    from ..inference.sequence.plan import CONFIDENCE_PROPERTY

    obj: Any = target
    if CONFIDENCE_PROPERTY in obj:
        return
    obj[CONFIDENCE_PROPERTY] = 0.0
    obj.id_properties_ui(CONFIDENCE_PROPERTY).update(
        min=0.0, max=1.0, soft_min=0.0, soft_max=1.0, precision=3,
        description="FIELDS: the face detector's (or tracker's) score in each frame, keyed by Apply to Sequence; "
        "frames below Min confidence were treated as frames without a face")


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
    ensure_strengths(obj)
    obj[PREDICTED_INTENSITY_PROPERTY] = float(predicted_intensity)
    written = []
    key = obj.data.shape_keys
    for name, value in plan.weights.items():
        prop = weight_property(name)
        _set_weight(obj, prop, float(value), f"weight of shape key '{name}'")
        block = key.key_blocks[name]
        targets = [("w", obj, _prop_path(prop)), ("i", obj, _prop_path(INTENSITY_PROPERTY))]
        region = plan.regions.get(name, "")
        if region:  # weight x intensity x the region's strength
            targets.append(("s", obj, _prop_path(strength_property(region))))
        _ensure_driver(block, "value", -1, key, f'key_blocks["{bpy.utils.escape_identifier(name)}"].value',
                       REGION_KEY_EXPRESSION if region else KEY_EXPRESSION, targets)
        written.append(prop)
    rig = armature_of(obj)
    if plan.rotations and rig is not None:
        for bone, axis_angle in plan.rotations.items():
            prop = weight_property(bone)
            _set_weight(obj, prop, [float(v) for v in axis_angle], f"axis-angle of bone '{bone}' (bone axes)")
            targets = [(c, obj, f"{_prop_path(prop)}[{k}]") for k, c in enumerate("xyz")]
            targets.append(("i", obj, _prop_path(INTENSITY_PROPERTY)))
            region = plan.regions.get(bone, "")
            if region:
                targets.append(("s", obj, _prop_path(strength_property(region))))
            _drive_bone(rig, bone, bone_quaternion_expressions("i*s" if region else "i"), targets)
            written.append(prop)
    if plan.head is not None and rig is not None:
        written.append(_apply_head(obj, rig, *plan.head))
    if frame is not None:
        for prop in written:
            obj.keyframe_insert(_prop_path(prop), frame=frame, group=KEYING_GROUP)
    obj.update_tag()
    return written


def _drive_bone(rig: Any, bone: str, expressions: tuple[str, ...], targets: list[tuple[str, Any, str]]) -> None:
    rig.pose.bones[bone].rotation_mode = "QUATERNION"
    path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"].rotation_quaternion'
    for index, expression in enumerate(expressions):
        _ensure_driver(rig, path, index, rig, path, expression, targets)


def _apply_head(obj: Any, rig: Any, bone: str, axis_angle: Any) -> str:
    """The head pose on `bone`: the bone-local axis-angle in `fields_head_pose`, turned by a driver
    scaled by the head strength (not by Intensity: a turn is not an emotion). A head-pose driver
    left on another bone (Head bone changed) is removed and that bone put back at rest."""
    from ..inference.retarget.head_pose import HEAD_POSE_PROPERTY

    new = HEAD_POSE_PROPERTY not in obj
    obj[HEAD_POSE_PROPERTY] = [float(v) for v in axis_angle]
    if new:
        obj.id_properties_ui(HEAD_POSE_PROPERTY).update(
            soft_min=-1.0, soft_max=1.0, precision=4, subtype="NONE",
            description="FIELDS: the head's turn read from the face (axis-angle in the head bone's axes, radians), "
            "scaled by fields_strength_head through a driver")
    for fcurve in _head_pose_drivers(rig):
        if fcurve.data_path != f'pose.bones["{bpy.utils.escape_identifier(bone)}"].rotation_quaternion':
            old = rig.path_resolve(fcurve.data_path.rpartition(".")[0])
            rig.driver_remove(fcurve.data_path, fcurve.array_index)
            old.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
    source = _prop_path(HEAD_POSE_PROPERTY)
    targets = [(c, obj, f"{source}[{k}]") for k, c in enumerate("xyz")]
    targets.append(("s", obj, _prop_path(strength_property("head"))))
    _drive_bone(rig, bone, bone_quaternion_expressions("s"), targets)
    return HEAD_POSE_PROPERTY


def _head_pose_drivers(rig: Any) -> list[Any]:
    """The rig's bone-rotation drivers that read the head pose (`_apply_head`'s)."""
    from ..inference.retarget.head_pose import HEAD_POSE_PROPERTY

    animation = rig.animation_data
    wanted = f"{_prop_path(HEAD_POSE_PROPERTY)}[0]"
    return [fcurve for fcurve in (list(animation.drivers) if animation is not None else [])
            if fcurve.data_path.endswith("rotation_quaternion")
            and wanted in [v.targets[0].data_path for v in fcurve.driver.variables]]


def head_pose_bone(obj: bpy.types.Object) -> Any:
    """The pose bone of `obj`'s armature that the head pose turns, or None."""
    rig = armature_of(obj)
    drivers = _head_pose_drivers(rig) if rig is not None else []
    return rig.path_resolve(drivers[0].data_path.rpartition(".")[0]) if drivers else None  # type: ignore[union-attr]


def key_intensity(target: bpy.types.Object, frame: int, use_predicted: bool) -> float:
    obj: Any = target
    ensure_intensity(obj)
    if use_predicted and PREDICTED_INTENSITY_PROPERTY in obj:
        obj[INTENSITY_PROPERTY] = float(obj[PREDICTED_INTENSITY_PROPERTY])
    obj.keyframe_insert(_prop_path(INTENSITY_PROPERTY), frame=frame, group=KEYING_GROUP)
    obj.update_tag()
    return float(obj[INTENSITY_PROPERTY])


# Sequences: the same properties, keyed in bulk.

def _ensure_channelbag(obj: Any) -> Any:
    """The channelbag of `obj`'s action slot, creating the action, slot, layer and strip as needed.
    Blender 4.4+ actions are slotted on 4.5 and 5.x alike; 5.0 has the helper, 4.5 the same steps."""
    from bpy_extras import anim_utils

    animation = obj.animation_data or obj.animation_data_create()
    action = animation.action
    if action is None:
        action = bpy.data.actions.new(f"{obj.name}Action")
        animation.action = action
    slot = animation.action_slot
    if slot is None:
        slot = action.slots.new(id_type="OBJECT", name=obj.name)
        animation.action_slot = slot
    ensure = getattr(anim_utils, "action_ensure_channelbag_for_slot", None)
    if ensure is not None:
        return ensure(action, slot)
    layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
    strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
    return strip.channelbag(slot, ensure=True)


def _write_keys(fcurve: Any, keys: Any, first: float, last: float) -> None:
    """Replace `fcurve`'s keys between `first` and `last` (inclusive) by `keys` (an
    `inference.sequence.keyframes.FCurveKeys`); keys outside stay with their interpolation and
    handles (`keyframes.merge_keys`). One clear, one add, a few foreach_set and one update."""
    import numpy as np

    from ..inference.sequence.keyframes import KEY_ATTRIBUTES, merge_keys

    points = fcurve.keyframe_points
    n = len(points)
    old = {name: np.empty(n * width, dtype=dtype) for name, width, dtype in KEY_ATTRIBUTES}
    if n:
        for name, array in old.items():
            points.foreach_get(name, array)
        points.clear()
    merged = merge_keys(old, keys, first, last)
    points.add(len(merged["interpolation"]))
    for name, _, _ in KEY_ATTRIBUTES:
        points.foreach_set(name, merged[name])
    fcurve.update()


def key_channels(obj: bpy.types.Object, columns: list[tuple[str, int]], keys: list[Any],
                 first: float, last: float) -> int:
    """Key each `(property, index)` channel of `obj` with its `FCurveKeys`, replacing what was keyed
    on it between scene frames `first` and `last`. Returns the number of keys written."""
    channelbag = _ensure_channelbag(obj)
    group = channelbag.groups.get(KEYING_GROUP) or channelbag.groups.new(KEYING_GROUP)
    written = 0
    for (prop, index), curve_keys in zip(columns, keys, strict=True):
        path = _prop_path(prop)
        fcurve = channelbag.fcurves.find(path, index=index)
        if fcurve is None:
            fcurve = channelbag.fcurves.new(path, index=index)
            fcurve.group = group
        _write_keys(fcurve, curve_keys, first, last)
        written += curve_keys.count
    obj.update_tag()
    return written


def action_fcurves(owner: Any) -> list[Any]:
    """The F-curves of `owner`'s action (its slot's channelbag; Blender 5.0 removed Action.fcurves), or []."""
    from bpy_extras import anim_utils

    animation = getattr(owner, "animation_data", None)
    if animation is None or animation.action is None:
        return []
    channelbag = anim_utils.action_get_channelbag_for_slot(  # type: ignore[func-returns-value]
        animation.action, animation.action_slot)
    return list(channelbag.fcurves) if channelbag is not None else []
