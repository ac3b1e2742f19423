"""The Reconstruct panel's settings and last result: one PropertyGroup on the Scene.

Everything here is saved with the .blend (the artist's choices and what was read last); scratch
state such as model sessions lives in `sessions.py`, never here. Every property has a description,
which Blender shows as its tooltip.
"""

from __future__ import annotations

from typing import cast

import bpy


def _is_mesh(_self: bpy.types.PropertyGroup, obj: bpy.types.Object) -> bool:
    return obj.type == "MESH"


class FIELDS_PG_settings(bpy.types.PropertyGroup):
    target: bpy.props.PointerProperty(  # type: ignore[valid-type]
        name="Target",
        description="Mesh whose shape keys (and jaw/eye bones) take the expression; empty uses the active mesh",
        type=bpy.types.Object,
        poll=_is_mesh,
    )
    source: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Photo from",
        description="Where the photo comes from",
        items=(("FILE", "File", "A photo file on disk"),
               ("IMAGE", "Image", "An image already loaded in Blender")),
        default="FILE",
    )
    filepath: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Photo",
        description="Photo of a face (JPEG, PNG, TIFF, WebP, BMP)",
        subtype="FILE_PATH",
        default="",
    )
    image: bpy.props.PointerProperty(  # type: ignore[valid-type]
        name="Image",
        description="An image loaded in Blender (its file is read when it has one, else its pixels)",
        type=bpy.types.Image,
    )
    face: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Face",
        description="Which face to use when the photo holds several, 1 being the largest; 0 uses the only "
        "face and reports an error when there are several",
        default=0,
        min=0,
        soft_max=10,
    )
    apply_expression: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Expression", description="Set the expression shape keys", default=True)
    apply_jaw: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Jaw", description="Turn the jaw bone (jaw shape keys on ARKit-named rigs)", default=True)
    apply_eyelids: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Eyelids", description="Set the eyelid (blink) shape keys", default=True)
    apply_gaze: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Gaze", description="Turn the eye bones (eye-look shape keys on ARKit-named rigs)", default=True)
    insert_keyframes: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Insert keyframes",
        description="Key the predicted weights at the current frame (auto-keying does the same)",
        default=False,
    )
    key_predicted_intensity: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Predicted",
        description="Key Intensity sets the intensity to the one read from the photo before keying it, "
        "instead of keying the current value",
        default=False,
    )

    # The last result, shown in the panel (read-only there).
    result_emotion: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Emotion", description="Emotion read from the last photo", default="")
    result_confidence: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Confidence", description="Probability the encoder gave the emotion read", default=0.0,
        min=0.0, max=1.0, subtype="FACTOR")
    result_intensity: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Predicted intensity", description="Emotion intensity read from the last photo (0 to 1)",
        default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    result_providers: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Providers", description="ONNX Runtime execution providers the last reconstruction ran on",
        default="")
    result_seconds: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Time", description="Seconds the last reconstruction took", default=0.0, min=0.0, unit="TIME_ABSOLUTE")
    result_route: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Applied", description="How the last result was applied: direct, FLAME retargeting or ARKit names",
        default="")


def get(context: bpy.types.Context) -> FIELDS_PG_settings:
    return cast(FIELDS_PG_settings, context.scene.fields)  # type: ignore[attr-defined]


classes = (FIELDS_PG_settings,)
_register, _unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc, has-type]


def register() -> None:
    _register()  # type: ignore[has-type]
    bpy.types.Scene.fields = bpy.props.PointerProperty(  # type: ignore[attr-defined, func-returns-value]
        type=FIELDS_PG_settings, name="FIELDS", description="FIELDS: Reconstruct from photo settings")


def unregister() -> None:
    del bpy.types.Scene.fields  # type: ignore[attr-defined]
    _unregister()  # type: ignore[has-type]
