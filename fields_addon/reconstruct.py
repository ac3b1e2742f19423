"""The Reconstruct operators: "Reconstruct" (photo -> expression on the target) and "Key Intensity".

Thin by design: poll (shared mixin), read the settings, run the bpy-free pipeline
(`inference.perception`, `inference.encoder`, `inference.reconstruct`, `inference.retarget`) with
sessions from `sessions.py`, then write through `apply.py`. Every failure is checked before the
first write, so a reported error leaves the scene exactly as it was. Heavy imports happen inside
execute. Must not hold state between calls other than through `sessions`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import bpy

from . import apply, preferences, sessions, settings, shape
from .common import (
    FieldsTargetMixin,
    failure,
    photo_source,
    planner,
    resolve_target,
    target_neutral,
)

if TYPE_CHECKING:
    from bpy._typing.rna_enums import OperatorReturnItems


class FIELDS_OT_reconstruct_photo(FieldsTargetMixin, bpy.types.Operator):
    """Read the face in the photo and put its expression on the target: shape keys (and jaw and eye
    bones), scaled by the target's emotion intensity; shows the emotion read"""

    bl_idname = "fields.reconstruct_photo"
    bl_label = "Reconstruct"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        from ..inference.errors import FieldsError
        from ..inference.retarget.plan import choose_face

        start = time.perf_counter()
        options = settings.get(context)
        target = resolve_target(context)
        assert target is not None  # poll
        parts = {part for part in ("expression", "jaw", "eyelids", "gaze") if getattr(options, f"apply_{part}")}
        if options.head_pose_photo:
            parts.add("head")
        try:
            source, photo = photo_source(context)
            encoder = sessions.encoder(bpy.path.abspath(preferences.get(context).encoder_path))
            found = sessions.perception().run(source)
            face = found.faces[choose_face(len(found.faces), options.face, photo)]
            expression = encoder.predict_face(face)
            neutral = target_neutral(context, target)
            if neutral is not None:
                expression = encoder.calibrated(expression, neutral)
            result = planner(context, encoder, target, parts)(expression)
            # Fitted before anything is written, so a failed fit leaves the scene as it was.
            fitted = shape.fit(context, target, result, face) if options.match_shape else None
        except (FieldsError, ImportError) as error:  # ImportError: a runtime library missing from Blender
            self.report({"ERROR"}, failure(error))
            return {"CANCELLED"}
        scene = context.scene
        keying = options.insert_keyframes or scene.tool_settings.use_keyframe_insert_auto
        apply.apply_plan(target, result, expression.intensity, scene.frame_current if keying else None)
        options.result_shape = ""
        if fitted is not None:
            model, fit = fitted
            shape.write(target, model, fit.identity)
            options.result_shape = (f"Face shape: landmarks {fit.before_mm['all']:.2f} -> "
                                    f"{fit.after_mm['all']:.2f} mm")
        providers = sorted(set(found.providers) | set(encoder.providers), key=lambda p: p != "CUDA")
        options.result_emotion = expression.emotion
        options.result_confidence = expression.emotion_probs[expression.emotion]
        options.result_intensity = min(max(expression.intensity, 0.0), 1.0)
        options.result_providers = ", ".join(providers)
        options.result_route = result.route
        options.result_seconds = time.perf_counter() - start
        for warning in [*result.notes, *sessions.take_warnings()]:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, f"{target.name}: {expression.emotion} "
                              f"({options.result_confidence:.0%}), intensity {expression.intensity:.2f}"
                              + (f"; {options.result_shape}" if options.result_shape else ""))
        return {"FINISHED"}


class FIELDS_OT_key_intensity(FieldsTargetMixin, bpy.types.Operator):
    """Insert a keyframe on the target's emotion intensity at the current frame (with "Predicted",
    first set it to the intensity read from the photo)"""

    bl_idname = "fields.key_intensity"
    bl_label = "Key Intensity"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        target = resolve_target(context)
        assert target is not None  # poll
        value = apply.key_intensity(target, context.scene.frame_current, settings.get(context).key_predicted_intensity)
        self.report({"INFO"}, f"Keyed intensity {value:.3f} on '{target.name}' at frame {context.scene.frame_current}")
        return {"FINISHED"}


classes = (FIELDS_OT_reconstruct_photo, FIELDS_OT_key_intensity)
# fake-bpy-module types the factory as returning None; it returns (register, unregister).
register, unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]
