"""The FIELDS sidebar tab in the 3D viewport (N panel): "Reconstruct from photo".

Draws only: settings from `settings.FIELDS_PG_settings`, the operators, the last result and the
target's intensity. Must not compute anything beyond reading properties.
"""

from __future__ import annotations

import bpy

from ..inference.retarget.plan import INTENSITY_PROPERTY
from . import preferences, settings
from .common import resolve_target


class FieldsSidebar(bpy.types.Panel):
    """Where every FIELDS panel lives: the 3D viewport's sidebar, tab FIELDS (never registered itself)."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "FIELDS"


class FIELDS_PT_reconstruct(FieldsSidebar):
    bl_label = "Reconstruct from photo"
    bl_idname = "FIELDS_PT_reconstruct"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        options = settings.get(context)
        layout.use_property_split = True
        layout.use_property_decorate = False

        head = layout.column(align=True)
        head.prop(preferences.get(context), "flame_path", text="FLAME")
        head.operator("fields.add_head", icon="MONKEY")

        column = layout.column()
        target = resolve_target(context)
        column.prop(options, "target", placeholder=target.name if target is not None else "Active mesh")
        column.row().prop(options, "source", expand=True)
        if options.source == "IMAGE":
            column.template_ID(options, "image", open="image.open")
        else:
            column.prop(options, "filepath")
        column.prop(options, "face")
        apply_row = column.row(heading="Apply", align=True)
        for part in ("expression", "jaw", "eyelids", "gaze"):
            apply_row.prop(options, f"apply_{part}", toggle=True)
        column.prop(options, "match_shape")
        column.prop(options, "insert_keyframes")
        layout.operator("fields.reconstruct_photo", icon="IMPORT")

        if options.result_emotion:
            box = layout.box().column(align=True)
            box.label(text=f"{options.result_emotion.capitalize()}  {options.result_confidence:.0%}", icon="INFO")
            box.label(text=f"Intensity read: {options.result_intensity:.2f}")
            box.label(text=f"Applied: {options.result_route}  ·  {options.result_providers}  ·  "
                           f"{options.result_seconds * 1000:.0f} ms")
            if options.result_shape:
                box.label(text=options.result_shape)

        if target is not None and INTENSITY_PROPERTY in target.keys():
            column = layout.column()
            column.prop(target, f'["{INTENSITY_PROPERTY}"]', text="Intensity", slider=True)
            row = column.row(align=True)
            row.operator("fields.key_intensity", icon="KEY_HLT")
            row.prop(options, "key_predicted_intensity", toggle=True)


class FIELDS_PT_apply_sequence(FieldsSidebar):
    bl_label = "Apply to sequence"
    bl_idname = "FIELDS_PT_apply_sequence"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        options = settings.get(context)
        layout.use_property_split = True
        layout.use_property_decorate = False

        column = layout.column()
        column.row().prop(options, "seq_source", expand=True)
        if options.seq_source == "VIDEO":
            column.prop(options, "seq_filepath")
        elif options.seq_source == "FOLDER":
            column.prop(options, "seq_directory")
        elif options.seq_source == "CLIP":
            column.template_ID(options, "seq_clip", open="clip.open")
        elif options.seq_source == "CSV":
            column.prop(options, "seq_csv_path")
            column.prop(options, "seq_timecode_fps")
        else:
            column.template_ID(options, "seq_image", open="image.open")
        frames = column.column(align=True)
        frames.prop(options, "seq_frame_first", text="Source frames")
        frames.prop(options, "seq_frame_last", text="Last")
        frames.prop(options, "seq_frame_step")
        column.prop(options, "seq_target_start")
        column.prop(options, "seq_face")
        apply_row = column.row(heading="Apply", align=True)
        for part in ("expression", "jaw", "eyelids", "gaze"):
            apply_row.prop(options, f"apply_{part}", toggle=True)
        column.prop(options, "seq_key_intensity")
        column.prop(options, "seq_gaps")
        column.prop(options, "seq_smooth")
        smooth = column.column(align=True)
        smooth.active = options.seq_smooth
        smooth.prop(options, "seq_smooth_steadiness")
        smooth.prop(options, "seq_smooth_responsiveness")
        smooth.prop(options, "seq_smooth_speed_cutoff")
        layout.operator("fields.apply_sequence", icon="SEQUENCE")
        if options.seq_result:
            layout.label(text=options.seq_result, icon="INFO")
        export = layout.row(align=True)
        export.operator("fields.export_livelink", text="Export Keyed Head", icon="EXPORT").source = "ACTION"
        export.operator("fields.export_livelink", text="Export Sequence", icon="EXPORT").source = "RESULT"


class FIELDS_PT_live(FieldsSidebar):
    bl_label = "Live capture"
    bl_idname = "FIELDS_PT_live"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        options = settings.get(context)
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(options, "live_camera")
        layout.prop(options, "live_record", icon="REC")
        layout.operator("fields.live_capture", icon="OUTLINER_OB_CAMERA")
        layout.label(text="Apply, gaps and smoothing: as in Apply to sequence", icon="INFO")


classes = (FIELDS_PT_reconstruct, FIELDS_PT_apply_sequence, FIELDS_PT_live)
# fake-bpy-module types the factory as returning None; it returns (register, unregister).
register, unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]
