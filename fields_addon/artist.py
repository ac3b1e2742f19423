"""Artist controls (issue 13): the neutral reference of a head, its mapping editor, and their panel.

"Set Neutral" reads the actor's resting face from the Reconstruct photo, from a frame range of the
Apply to Sequence source, or from its calmest stretch, and stores it on the target as the custom
property `fields_neutral` (JSON, `inference.expression.calibration.Neutral`), so it is saved with
the head in the .blend; Reconstruct and Apply to Sequence then read expressions relative to it
(Calibrate). The mapping editor keeps rows (ARKit unit -> shape key or bone axis, gain) on the
object (`Object.fields_mapping`, saved with it); when a target has rows, they drive it instead of
the automatic routes (`inference.retarget.mapping`). Presets are JSON files in the extension's user
folder (`mapping_presets/`), written atomically. Everything that can fail runs before the first
write. Must not hold state beyond the preset menu's item list, which Blender requires be kept alive.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import bpy

from . import common, preferences, sessions, settings
from .common import FieldsTargetMixin, failure, photo_source, resolve_target, sentence, sequence_path

if TYPE_CHECKING:
    from bpy._typing.rna_enums import OperatorReturnItems


def _photo_neutral(context: bpy.types.Context, encoder: Any) -> Any:
    import numpy as np

    from ..inference.expression.calibration import Neutral
    from ..inference.perception.blendshapes import ARKIT_NAMES
    from ..inference.retarget.plan import choose_face

    source, photo = photo_source(context)
    found = sessions.perception().run(source)
    face = found.faces[choose_face(len(found.faces), settings.get(context).face, photo)]
    read = encoder.predict_face(face)
    return Neutral.from_rows(np.array([read.units[u] for u in ARKIT_NAMES]),
                             np.array([read.emotion_probs[e] for e in encoder.emotions]),
                             np.array([read.intensity]), encoder.emotions, source=photo,
                             head_pose=read.head_pose)


def _sequence_neutral(context: bpy.types.Context, automatic: bool) -> Any:
    from ..inference.expression.calibration import NeutralSpec
    from ..inference.payloads import sequence_neutral
    from ..inference.retarget.plan import ReconstructError
    from ..inference.sequence.frames import IMAGE_SUFFIXES, FolderSource, open_source

    options = settings.get(context)
    path = sequence_path(options)
    if automatic:
        first = options.seq_frame_first - 1
        last = options.seq_frame_last - 1 if options.seq_frame_last else None
    else:
        first, last = options.neutral_first - 1, options.neutral_last - 1
        if last < first:
            raise ReconstructError(f"The neutral frames {options.neutral_first}-{options.neutral_last} are empty: "
                                   "Last must be at least First.")
    pipeline = sessions.sequence_pipeline(options.seq_face - 1, bpy.path.abspath(preferences.get(context).encoder_path))
    if options.seq_source == "CSV":  # a Live Link Face take, at the scene's rate as Apply to Sequence reads it
        from ..inference.payloads import read_livelink

        render = context.scene.render
        # A range is looked for in the whole take (reading one is cheap), so a range outside it is
        # reported as the neutral's, naming the frames the take has.
        raw = read_livelink(path, render.fps / render.fps_base, options.seq_timecode_fps,
                            *((first, last) if automatic else (0, None)), encoder=pipeline.encoder)
    else:
        if os.path.isfile(path) and os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES:
            source: Any = FolderSource(os.path.dirname(path), first, last, 1, like=os.path.basename(path))
        else:
            source = open_source(path, first, last, 1)
        raw = pipeline.run(source, cache_dir=common.cache_dir())
    spec = NeutralSpec("auto") if automatic else NeutralSpec("frames", start=first, end=int(last or 0))
    return sequence_neutral(spec, raw, f"'{path}'", first_number=1)  # the panel counts frames from 1


class FIELDS_OT_set_neutral(FieldsTargetMixin, bpy.types.Operator):
    """Read the actor's resting face (from the photo, a frame range of the sequence, or its calmest
    stretch) and store it on the target: expressions are then read relative to it"""

    bl_idname = "fields.set_neutral"
    bl_label = "Set Neutral"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        from ..inference.errors import FieldsError
        from ..inference.expression.calibration import NEUTRAL_PROPERTY

        target = resolve_target(context)
        assert target is not None  # poll
        options = settings.get(context)
        try:
            if options.neutral_from == "PHOTO":
                encoder = sessions.encoder(bpy.path.abspath(preferences.get(context).encoder_path))
                neutral = _photo_neutral(context, encoder)
            else:
                neutral = _sequence_neutral(context, automatic=options.neutral_from == "AUTO")
        except (FieldsError, ImportError) as error:  # ImportError: a runtime library missing from Blender
            self.report({"ERROR"}, failure(error))
            return {"CANCELLED"}
        obj: Any = target
        obj[NEUTRAL_PROPERTY] = neutral.to_json()
        obj.id_properties_ui(NEUTRAL_PROPERTY).update(
            description="FIELDS: the actor's resting face (Set Neutral); expressions are read relative to it")
        self.report({"INFO"}, f"Neutral of '{target.name}' set from {neutral.source}.")
        return {"FINISHED"}


class FIELDS_OT_clear_neutral(FieldsTargetMixin, bpy.types.Operator):
    """Remove the neutral reference stored on the target: expressions are read as they are"""

    bl_idname = "fields.clear_neutral"
    bl_label = "Clear Neutral"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        from ..inference.expression.calibration import NEUTRAL_PROPERTY

        target: Any = resolve_target(context)
        if NEUTRAL_PROPERTY in target:
            del target[NEUTRAL_PROPERTY]
        return {"FINISHED"}


def neutral_label(target: Any) -> str:
    """What the panel says about the target's neutral reference."""
    import json

    from ..inference.expression.calibration import NEUTRAL_PROPERTY

    if target is None or NEUTRAL_PROPERTY not in target:
        return "No neutral set"
    try:
        return f"Neutral: {json.loads(str(target[NEUTRAL_PROPERTY])).get('source', '') or 'set'}"
    except (ValueError, AttributeError):
        return "Neutral: damaged (set it again)"


class FIELDS_PT_artist(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "FIELDS"
    bl_label = "Artist controls"
    bl_idname = "FIELDS_PT_artist"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        options = settings.get(context)
        layout.use_property_split = True
        layout.use_property_decorate = False
        target = resolve_target(context)
        box = layout.box().column()
        box.label(text=neutral_label(target), icon="USER")
        box.row().prop(options, "neutral_from", expand=True)
        if options.neutral_from == "FRAMES":
            frames = box.column(align=True)
            frames.prop(options, "neutral_first", text="Frames")
            frames.prop(options, "neutral_last")
        row = box.row(align=True)
        row.operator("fields.set_neutral", icon="EYEDROPPER")
        row.operator("fields.clear_neutral", text="", icon="X")
        box.prop(options, "use_neutral")
        layout.prop(options, "seq_min_confidence")
        pose = layout.box().column()
        row = pose.row(heading="Head pose", align=True)
        row.prop(options, "head_pose_photo", toggle=True)
        row.prop(options, "seq_head_pose", toggle=True)
        rig: Any = target.parent if target is not None and target.parent is not None else None
        if rig is not None and rig.type == "ARMATURE":
            pose.prop_search(options, "head_bone", rig.data, "bones")
        else:
            pose.prop(options, "head_bone")
        draw_strengths(layout, target)


def draw_strengths(layout: Any, target: Any) -> None:
    """The per-region multipliers, once Reconstruct or Apply to Sequence has made them."""
    from ..inference.retarget.regions import REGIONS, strength_property

    if target is None or strength_property(REGIONS[0]) not in target:
        return
    column = layout.column(align=True, heading="Strength")
    for region in REGIONS:
        column.prop(target, f'["{strength_property(region)}"]', text=region.capitalize(), slider=True)


# The mapping editor.

def _unit_items() -> list[tuple[str, str, str]]:
    from ..inference.perception.blendshapes import ARKIT_NAMES

    return [(unit, unit, f"ARKit unit {unit}") for unit in ARKIT_NAMES]


class FIELDS_PG_mapping_row(bpy.types.PropertyGroup):
    unit: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Unit", description="The ARKit unit (what the encoder reads) this row passes on", items=_unit_items())
    kind: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Drives", description="What the unit drives",
        items=(("KEY", "Key", "A shape key of the target: weight = gain x unit"),
               ("BONE", "Bone", "A bone of the target's armature turned about one of its own axes: "
                                "radians = gain x unit")), default="KEY")
    target: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Target", description="The shape key's or the bone's name on the target", default="")
    axis: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Axis", description="The bone's own axis it turns about",
        items=(("X", "X", "The bone's X axis"), ("Y", "Y", "The bone's Y axis"), ("Z", "Z", "The bone's Z axis")),
        default="X")
    gain: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Gain", description="Multiplier: key weight per unit, or radians per unit for a bone",
        default=1.0, soft_min=-2.0, soft_max=2.0)


def object_mapping(obj: Any) -> Any:
    """The object's mapping rows as an `inference.retarget.mapping.Mapping`, or None without rows."""
    from ..inference.retarget.mapping import Mapping, Row

    rows = getattr(obj, "fields_mapping", None)
    if not rows:
        return None
    return Mapping(tuple(Row(r.unit, r.target, "key" if r.kind == "KEY" else "bone", "XYZ".index(r.axis), r.gain)
                         for r in rows))


def _set_rows(obj: Any, mapping: Any) -> None:
    obj.fields_mapping.clear()
    for row in mapping.rows:
        item = obj.fields_mapping.add()
        item.unit, item.target, item.gain = row.unit, row.target, row.gain
        item.kind, item.axis = ("KEY" if row.kind == "key" else "BONE"), "XYZ"[row.axis]
    obj.fields_mapping_index = 0


def presets_folder() -> Any:
    from pathlib import Path

    return Path(bpy.utils.extension_path_user(preferences.ADDON_ID, path="mapping_presets", create=True))


_preset_items: list[tuple[str, str, str]] = []  # Blender needs enum items kept alive by Python


def _presets(_self: Any, _context: Any) -> list[tuple[str, str, str]]:
    _preset_items[:] = [(p.stem, p.stem, f"Mapping preset {p.name}") for p in sorted(presets_folder().glob("*.json"))]
    return _preset_items or [("", "(no presets)", "Save a mapping as a preset first")]


class FIELDS_OT_mapping_fill(FieldsTargetMixin, bpy.types.Operator):
    """Fill the target's mapping from its shape-key names (ARKit spellings, CC4 Extended, Daz
    Genesis FACS), replacing its rows"""

    bl_idname = "fields.mapping_fill"
    bl_label = "From Names"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        from ..inference.retarget.mapping import auto_mapping
        from .apply import read_target

        target: Any = resolve_target(context)
        mapping = auto_mapping(read_target(target).shape_keys)
        _set_rows(target, mapping)
        self.report({"INFO"}, f"{len(mapping.rows)} rows; {len(mapping.unmapped())} units unmapped.")
        return {"FINISHED"}


class FIELDS_OT_mapping_add(FieldsTargetMixin, bpy.types.Operator):
    """Add a row to the target's mapping"""

    bl_idname = "fields.mapping_add"
    bl_label = "Add Row"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        target: Any = resolve_target(context)
        target.fields_mapping.add()
        target.fields_mapping_index = len(target.fields_mapping) - 1
        return {"FINISHED"}


class FIELDS_OT_mapping_remove(FieldsTargetMixin, bpy.types.Operator):
    """Remove the selected row of the target's mapping (with no rows left, the target is driven by name again)"""

    bl_idname = "fields.mapping_remove"
    bl_label = "Remove Row"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        target: Any = resolve_target(context)
        index = target.fields_mapping_index
        if 0 <= index < len(target.fields_mapping):
            target.fields_mapping.remove(index)
            target.fields_mapping_index = max(0, index - 1)
        return {"FINISHED"}


class FIELDS_OT_mapping_save_preset(FieldsTargetMixin, bpy.types.Operator):
    """Save the target's mapping as a JSON preset in the add-on's user folder"""

    bl_idname = "fields.mapping_save_preset"
    bl_label = "Save Preset"

    name: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Name", description="The preset's name (its file is <name>.json in the add-on's user folder)",
        default="My rig")

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[OperatorReturnItems]:
        return context.window_manager.invoke_props_dialog(self)  # type: ignore[no-any-return]

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        import re

        from ..inference.files import write_atomic

        target: Any = resolve_target(context)
        mapping = object_mapping(target)
        stem = re.sub(r"[^A-Za-z0-9 ._-]+", "_", self.name).strip(" .")
        if mapping is None or not stem:
            self.report({"ERROR"}, "Nothing to save: the target has no mapping rows, or the name is empty.")
            return {"CANCELLED"}
        path = presets_folder() / f"{stem}.json"
        try:
            write_atomic(path, mapping.to_json().encode())
        except OSError as error:
            self.report({"ERROR"}, f"The preset '{path}' cannot be written ({error.strerror or error}).")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved the mapping as '{path}'.")
        return {"FINISHED"}


class FIELDS_OT_mapping_load_preset(FieldsTargetMixin, bpy.types.Operator):
    """Replace the target's mapping by a saved preset (checked against the target's keys and bones first)"""

    bl_idname = "fields.mapping_load_preset"
    bl_label = "Load Preset"
    bl_options = {"REGISTER", "UNDO"}

    preset: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Preset", description="A mapping preset saved in the add-on's user folder", items=_presets)

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        from ..inference.errors import FieldsError
        from ..inference.retarget.mapping import Mapping
        from .apply import read_target

        target: Any = resolve_target(context)
        path = presets_folder() / f"{self.preset}.json"
        try:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise ValueError(f"The mapping preset '{path}' cannot be read ({error}).") from None
            mapping = Mapping.from_json(text, f"'{path}'")
            described = read_target(target)
            mapping.check(target.name, described.shape_keys, described.bones)
        except (FieldsError, ValueError) as error:
            self.report({"ERROR"}, sentence(str(error)))
            return {"CANCELLED"}
        _set_rows(target, mapping)
        self.report({"INFO"}, f"Loaded '{path.name}': {len(mapping.rows)} rows.")
        return {"FINISHED"}


class FIELDS_UL_mapping(bpy.types.UIList):
    def draw_item(self, context: Any, layout: Any, data: Any, item: Any, icon: Any, active_data: Any,
                  active_property: Any, index: Any = 0, flt_flag: Any = 0) -> None:
        row = layout.row(align=True)
        row.prop(item, "unit", text="")
        row.prop(item, "kind", text="")
        keys = data.data.shape_keys if data.type == "MESH" else None
        if item.kind == "KEY" and keys is not None:
            row.prop_search(item, "target", keys, "key_blocks", text="")
        else:
            row.prop(item, "target", text="")
        if item.kind == "BONE":
            row.prop(item, "axis", text="")
        row.prop(item, "gain", text="")


def unmapped_text(target: Any) -> str:
    from ..inference.retarget.mapping import Mapping, auto_mapping
    from .apply import read_target

    mapping = object_mapping(target) or (auto_mapping(read_target(target).shape_keys) if target is not None
                                         else Mapping(()))
    missing = mapping.unmapped()
    return f"Unmapped ({len(missing)}): " + (", ".join(missing) if missing else "none")


class FIELDS_PT_mapping(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "FIELDS"
    bl_label = "Mapping"
    bl_idname = "FIELDS_PT_mapping"
    bl_parent_id = "FIELDS_PT_artist"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        import textwrap

        layout = self.layout
        target: Any = resolve_target(context)
        if target is None:
            layout.label(text="Pick a target mesh")
            return
        layout.label(text="Custom mapping" if len(target.fields_mapping) else "Automatic: by name (fill to edit)")
        row = layout.row()
        row.template_list("FIELDS_UL_mapping", "", target, "fields_mapping", target, "fields_mapping_index", rows=4)
        buttons = row.column(align=True)
        buttons.operator("fields.mapping_add", text="", icon="ADD")
        buttons.operator("fields.mapping_remove", text="", icon="REMOVE")
        row = layout.row(align=True)
        row.operator("fields.mapping_fill", icon="SORTALPHA")
        row.operator_menu_enum("fields.mapping_load_preset", "preset", text="Load", icon="IMPORT")
        row.operator("fields.mapping_save_preset", text="Save", icon="EXPORT")
        column = layout.column(align=True)
        for line in textwrap.wrap(unmapped_text(target), 48):
            column.label(text=line)


classes = (FIELDS_OT_set_neutral, FIELDS_OT_clear_neutral, FIELDS_PG_mapping_row, FIELDS_OT_mapping_fill,
           FIELDS_OT_mapping_add, FIELDS_OT_mapping_remove, FIELDS_OT_mapping_save_preset,
           FIELDS_OT_mapping_load_preset, FIELDS_UL_mapping, FIELDS_PT_artist, FIELDS_PT_mapping)
# fake-bpy-module types the factory as returning None; it returns (register, unregister).
_register, _unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc, has-type]


def register() -> None:
    _register()  # type: ignore[has-type]
    bpy.types.Object.fields_mapping = bpy.props.CollectionProperty(  # type: ignore[attr-defined, func-returns-value]
        type=FIELDS_PG_mapping_row, name="FIELDS mapping",
        description="FIELDS: which shape key or bone axis each ARKit unit drives on this object (empty: by name)")
    bpy.types.Object.fields_mapping_index = bpy.props.IntProperty(  # type: ignore[attr-defined, func-returns-value]
        name="Row", description="The selected row of the FIELDS mapping", default=0, min=0)


def unregister() -> None:
    del bpy.types.Object.fields_mapping_index  # type: ignore[attr-defined]
    del bpy.types.Object.fields_mapping  # type: ignore[attr-defined]
    _unregister()  # type: ignore[has-type]
