"""Add-on preferences: the user's own FLAME file and its landmark embedding (FLAME cannot be shipped),
and an optional encoder of their own."""

from __future__ import annotations

import bpy

# The extension's package (e.g. "bl_ext.user_default.fields"), which preferences are keyed by.
ADDON_ID = __package__.rpartition(".")[0]


class FIELDS_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    flame_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="FLAME model file",
        description=(
            "FLAME 2020/2023 model (generic_model.pkl, flame2023.pkl) or a FLAME-format .npz, "
            "downloaded by you after accepting FLAME's licence. Eyelid shapes (l_eyelid.npy, "
            "r_eyelid.npy) beside it are used too. Empty: the open FIELDS head, built from "
            "MediaPipe's canonical face with ARKit-named shape keys"
        ),
        subtype="FILE_PATH",
        default="",
    )

    embedding_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Landmark embedding",
        description=(
            "FLAME's mediapipe_landmark_embedding.npz (it comes with FLAME's downloads): where MediaPipe's "
            "landmarks sit on a FLAME head, needed to retarget the encoder's expressions onto FLAME heads"
        ),
        subtype="FILE_PATH",
        default="",
    )
    encoder_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Encoder",
        description=(
            "A FIELDS encoder .onnx (its .json beside it), e.g. one you trained with `python -m training`. "
            "Empty: the encoder shipped with the add-on"
        ),
        subtype="FILE_PATH",
        default="",
    )

    def draw(self, context: bpy.types.Context) -> None:
        for name in ("flame_path", "embedding_path", "encoder_path"):
            self.layout.prop(self, name)


def get(context: bpy.types.Context) -> FIELDS_AddonPreferences:
    return context.preferences.addons[ADDON_ID].preferences  # type: ignore[return-value]


classes = (FIELDS_AddonPreferences,)
# fake-bpy-module types the factory as returning None; it returns (register, unregister).
register, unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]
