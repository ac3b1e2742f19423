"""Add-on preferences: the user's own FLAME file (FLAME cannot be shipped), optionally their own
landmark embedding of it (otherwise computed on first use), and an optional encoder of their own."""

from __future__ import annotations

import bpy

# The extension's package (e.g. "bl_ext.user_default.fields"), which preferences are keyed by.
ADDON_ID = __package__.rpartition(".")[0]


class FIELDS_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    flame_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="FLAME model file",
        description=(
            "FLAME 2020/2023/2023 Open model (generic_model.pkl, flame2023.pkl, flame2023_Open.pkl) or a "
            "FLAME-format .npz, "
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
            "Optional: a MediaPipe landmark embedding of the FLAME file (e.g. FLAME's "
            "mediapipe_landmark_embedding.npz), where MediaPipe's landmarks sit on it. Empty: the add-on "
            "computes one on first use (renders the head, under 10 s) and caches it by the file's sha256"
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
