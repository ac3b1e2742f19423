"""Build a FLAME-rigged head in Blender from a loaded `FaceModel`, and the "Add Head" operator.

The rig's maths lives in `inference.rig` (bpy-free, tested without Blender); this module only
turns it into datablocks: a mesh with shape keys, an armature with FLAME's joints, vertex-group
skinning, and simple-expression drivers for pose correctives and moving joints. Coordinates and
values are written in bulk with `foreach_set` on float32 arrays.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

import bpy
import numpy as np

from ..inference.errors import FieldsError
from ..inference.head.face_model import (
    JOINT_NAMES,
    N_POSE_FEATURES,
    FaceModel,
    face_uvs,
    file_sha256,
    load_face_model,
)
from ..inference.head.ict import ICT_HEAD_FILE
from ..inference.head.rig import (
    FLAME_TO_BLENDER,
    bone_specs,
    joint_offset_basis,
    joint_offset_part_prop,
    joint_offset_prop,
    linear_sum_chunks,
    pivot_location_expression,
    pivot_name,
    pose_feature_expression,
    pose_key_name,
)
from . import preferences
from .drivers import Target
from .drivers import add_driver as _driver
from .drivers import add_variables as _add_variables

if TYPE_CHECKING:
    from bpy._typing.rna_enums import OperatorReturnItems

SLIDER_RANGE = 10.0  # Blender's hard limit; keys are clamped to their slider range even when driven


def _to_blender(points: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(points @ FLAME_TO_BLENDER.T, dtype=np.float32)


def _quaternion_targets(rig: bpy.types.Object, joint: str) -> list[Target]:
    return [(n, rig, f'pose.bones["{joint}"].rotation_quaternion[{i}]') for i, n in enumerate("wxyz")]


def _build_mesh(model: FaceModel, name: str) -> bpy.types.Mesh:
    mesh = bpy.data.meshes.new(name)
    faces = model.faces.astype(np.int32)
    mesh.vertices.add(model.n_verts)
    mesh.vertices.foreach_set("co", _to_blender(model.v_template).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
    uvs = face_uvs(model)
    if uvs is not None:
        mesh.uv_layers.new(name="UVMap").data.foreach_set("uv", uvs.astype(np.float32).ravel())
    if "face_parts" in model.extras:
        _add_part_materials(mesh, model)
    return mesh


def _add_part_materials(mesh: bpy.types.Mesh, model: FaceModel) -> None:
    """One material per part, coloured for the viewport; the eyes' front gets the iris material,
    since the head has no iris of its own, and see-through layers (lashes, tear film) are hidden
    until an artist gives them alpha-textured shaders."""
    from ..inference.head.appearance import IRIS_DEG, PART_COLOURS, eye_cone

    names = [str(name) for name in model.extras["part_names"]]
    for name in names:
        material = bpy.data.materials.new(name)
        material.diffuse_color = PART_COLOURS.get(name, PART_COLOURS["skin"])
        mesh.materials.append(material)
    parts = model.extras["face_parts"].astype(np.int32)
    if "eyes" in names and "iris" in names:
        eyes = parts == names.index("eyes")
        front = np.zeros(model.n_verts, bool)
        front[eye_cone(model, np.unique(model.faces[eyes]), IRIS_DEG)] = True
        parts = np.where(eyes & front[model.faces].all(axis=1), names.index("iris"), parts)
    mesh.polygons.foreach_set("material_index", parts)


def _add_part_groups(obj: bpy.types.Object, model: FaceModel) -> None:
    """One vertex group per part (skin, eyes, teeth...), so an artist can select or mask each."""
    if "face_parts" not in model.extras:
        return
    parts = model.extras["face_parts"]
    for index, name in enumerate(model.extras["part_names"]):
        vertices = np.unique(model.faces[parts == index])
        obj.vertex_groups.new(name=str(name)).add(vertices.tolist(), 1.0, "REPLACE")


def _pose_features_used(model: FaceModel) -> list[int]:
    """Pose-corrective features with a non-zero shape: a key and driver for an all-zero one is waste."""
    return [m for m in range(N_POSE_FEATURES) if np.any(model.posedirs[:, :, m])]


def _add_shape_keys(obj: bpy.types.Object, model: FaceModel, identity_keys: bool) -> None:
    basis = model.v_template
    obj.shape_key_add(name="Basis", from_mix=False)
    keys: list[tuple[str, np.ndarray, float, float]] = []
    if identity_keys:
        keys += [(n, model.shapedirs[:, :, i], -SLIDER_RANGE, SLIDER_RANGE) for i, n in enumerate(model.shape_names)]
    keys += [(n, model.exprdirs[:, :, i], -SLIDER_RANGE, SLIDER_RANGE) for i, n in enumerate(model.expression_names)]
    if model.eyelids is not None:
        keys += [(name, model.eyelids[side], 0.0, 1.0) for side, name in enumerate(model.eyelid_names)]
    keys += [(pose_key_name(m), model.posedirs[:, :, m], -2.0, 2.0) for m in _pose_features_used(model)]
    for key_name, delta, low, high in keys:
        block = obj.shape_key_add(name=key_name, from_mix=False)
        block.points.foreach_set("co", _to_blender(basis + delta).ravel())
        block.slider_min, block.slider_max = low, high
        block.value = 0.0  # Blender 5 creates new keys at 1.0


def _build_armature(context: bpy.types.Context, model: FaceModel, name: str) -> bpy.types.Object:
    armature = bpy.data.armatures.new(name)
    rig = bpy.data.objects.new(name, armature)
    context.collection.objects.link(rig)
    view_layer = context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        face = armature.collections.new("Face")
        mechanism = armature.collections.new("Mechanism")
        mechanism.is_visible = False
        for spec in bone_specs(model):
            bone = armature.edit_bones.new(spec.name)
            bone.head, bone.tail = spec.head, spec.tail
            bone.align_roll(spec.z_axis)
            bone.use_deform = spec.deform
            bone.use_connect = False
            bone.parent = armature.edit_bones[spec.parent] if spec.parent else None
            (face if spec.deform else mechanism).assign(bone)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous
    for pose_bone in rig.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
        if pose_bone.name in JOINT_NAMES[1:]:
            pose_bone.lock_location = (True, True, True)  # FLAME joints only rotate
    return rig


def _skin(obj: bpy.types.Object, rig: bpy.types.Object, model: FaceModel) -> None:
    for k, joint in enumerate(JOINT_NAMES):
        group = obj.vertex_groups.new(name=joint)
        weights = model.weights[:, k]
        for value in np.unique(weights[weights > 0]):
            group.add(np.flatnonzero(weights == value).tolist(), float(value), "REPLACE")
    modifier = cast(bpy.types.ArmatureModifier, obj.modifiers.new("FLAME skinning", "ARMATURE"))
    modifier.object = rig
    modifier.use_vertex_groups = True
    modifier.use_bone_envelopes = False
    modifier.use_deform_preserve_volume = False
    obj.parent = rig


def _add_drivers(obj: bpy.types.Object, rig: bpy.types.Object, model: FaceModel, identity_keys: bool) -> None:
    key = obj.data.shape_keys
    # Pose correctives: each pose_NN key is an entry of (R - I) of its joint.
    for feature in _pose_features_used(model):
        joint, (row, col) = JOINT_NAMES[1 + feature // 9], divmod(feature % 9, 3)
        driver = _driver(key.key_blocks[pose_key_name(feature)], "value")
        _add_variables(driver, _quaternion_targets(rig, joint))
        driver.expression = pose_feature_expression(joint, row, col)

    # Joint offsets: linear in the identity/expression key values, summed in chunks.
    names, coefficients = joint_offset_basis(model, identity_keys)
    parts = [(component, expression, [names[i] for i in indices])
             for component in range(coefficients.shape[1])
             for expression, indices in linear_sum_chunks(coefficients[:, component])]
    for p, (_, expression, key_names) in enumerate(parts):
        rig[joint_offset_part_prop(p)] = 0.0
        driver = _driver(rig, f'["{joint_offset_part_prop(p)}"]')
        _add_variables(driver, [(f"v{i}", key, f'key_blocks["{n}"].value') for i, n in enumerate(key_names)])
        driver.expression = expression
    moving = sorted({component for component, _, _ in parts})
    for component in range(coefficients.shape[1]):
        rig[joint_offset_prop(component)] = 0.0
    for component in moving:
        driver = _driver(rig, f'["{joint_offset_prop(component)}"]', kind="SUM")
        _add_variables(driver, [(f"p{p}", rig, f'["{joint_offset_part_prop(p)}"]')
                                for p, (c, _, _) in enumerate(parts) if c == component])
    # Pivot bones carry (I - Rb) dJ so that each joint turns about its moved position.
    for k, joint in enumerate(JOINT_NAMES):
        if not any(3 * k <= c < 3 * k + 3 for c in moving):
            continue
        pivot = rig.pose.bones[pivot_name(joint)]
        offsets = [(f"d{i}", rig, f'["{joint_offset_prop(3 * k + i)}"]') for i in range(3)]
        for axis in range(3):
            driver = _driver(pivot, "location", axis)
            _add_variables(driver, _quaternion_targets(rig, joint) + offsets)
            driver.expression = pivot_location_expression(axis)


def build_head(context: bpy.types.Context, model: FaceModel, name: str = "FLAME head",
               identity_keys: bool = False) -> tuple[bpy.types.Object, bpy.types.Object]:
    """Create the head mesh and its rig in the active collection; on failure remove what was made."""
    created: list[Any] = []
    try:
        mesh = _build_mesh(model, name)
        created.append(mesh)
        obj = bpy.data.objects.new(name, mesh)
        created.append(obj)
        context.collection.objects.link(obj)
        rig = _build_armature(context, model, f"{name} rig")
        created += [rig, rig.data]
        _add_shape_keys(obj, model, identity_keys)
        _skin(obj, rig, model)
        _add_part_groups(obj, model)
        _add_drivers(obj, rig, model, identity_keys)
    except Exception:
        # Objects first: removing an armature's data would take its object with it.
        for ident in sorted(created, key=lambda ident: not isinstance(ident, bpy.types.Object)):
            collection: Any = {bpy.types.Object: bpy.data.objects, bpy.types.Mesh: bpy.data.meshes,
                               bpy.types.Armature: bpy.data.armatures}[type(ident)]
            if isinstance(ident, bpy.types.Mesh):
                for material in [m for m in ident.materials if m is not None]:  # the part materials are ours too
                    bpy.data.materials.remove(material)
            collection.remove(ident)
        raise
    # What the head was built from, so Reconstruct can tell whether the encoder's weights were
    # trained for this very model (name and file checksum) and apply its parameters directly.
    obj["fields_face_model"] = model.name
    obj["fields_face_model_sha256"] = file_sha256(model.source) if model.source and os.path.isfile(model.source) else ""
    obj["fields_eyelid_keys"] = " ".join(model.eyelid_names) if model.eyelids is not None else ""
    return obj, rig


class FIELDS_OT_add_head(bpy.types.Operator):
    """Add a FLAME-rigged head: a mesh with expression and pose-corrective shape keys, skinned to
    FLAME's joints (root, neck, jaw, eyes), from the FLAME file set in the add-on's preferences, or
    the full ICT head (ARKit-named shape keys, teeth, eyes, identity keys) when none is set"""

    bl_idname = "fields.add_head"
    bl_label = "Add Head"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="FLAME file",
        description="Face-model file to build from; empty uses the one in the add-on's preferences, "
        "or the ICT head shipped with the add-on when none is set there either",
        subtype="FILE_PATH",
        options={"SKIP_SAVE"},
    )
    identity_keys: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Identity shape keys",
        description="Also add the head's identity components as shape keys (identity000... on the ICT "
        "head, shape_000... on FLAME), so the face itself can be reshaped; Match face shape sets them",
        default=True,
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.mode == "OBJECT"

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        # No file anywhere: the shipped ICT head, so the add-on works the moment it is installed.
        path = self.filepath or preferences.get(context).flame_path or str(ICT_HEAD_FILE)
        try:
            model = load_face_model(bpy.path.abspath(path))
        except FieldsError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        for selected in context.selected_objects:
            selected.select_set(False)
        name = model.name if model.name.lower().endswith("head") else f"{model.name} head"
        obj, _rig = build_head(context, model, name=name, identity_keys=self.identity_keys)
        obj.select_set(True)
        context.view_layer.objects.active = obj
        return {"FINISHED"}


classes = (FIELDS_OT_add_head,)
# fake-bpy-module types the factory as returning None; it returns (register, unregister).
register, unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]
