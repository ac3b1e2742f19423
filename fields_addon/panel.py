"""The FIELDS sidebar tab in the 3D viewport (N panel)."""

from __future__ import annotations

import bpy

from . import preferences


class FIELDS_PT_reconstruct(bpy.types.Panel):
    bl_label = "Reconstruct from photo"
    bl_idname = "FIELDS_PT_reconstruct"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "FIELDS"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        column = layout.column(align=True)
        column.prop(preferences.get(context), "flame_path", text="FLAME")
        column.operator("fields.add_head", icon="MONKEY")


classes = (FIELDS_PT_reconstruct,)
# fake-bpy-module types the factory as returning None; it returns (register, unregister).
register, unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]
