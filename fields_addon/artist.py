"""Artist controls (issue 13): the neutral reference of a head, and their panel.

"Set Neutral" reads the actor's resting face from the Reconstruct photo, from a frame range of the
Apply to Sequence source, or from its calmest stretch, and stores it on the target as the custom
property `fields_neutral` (JSON, `inference.expression.calibration.Neutral`), so it is saved with
the head in the .blend; Reconstruct and Apply to Sequence then read expressions relative to it
(Calibrate). Everything that can fail runs before the property is written. Must not hold state.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import bpy

from . import preferences, sessions, settings
from .common import FieldsTargetMixin, missing_runtime, resolve_target, sentence

if TYPE_CHECKING:
    from bpy._typing.rna_enums import OperatorReturnItems


def _photo_neutral(context: bpy.types.Context, encoder: Any) -> Any:
    import numpy as np

    from ..inference.expression.calibration import Neutral
    from ..inference.perception.blendshapes import ARKIT_NAMES
    from ..inference.retarget.plan import choose_face
    from .reconstruct import _photo

    source, photo = _photo(context)
    found = sessions.perception().run(source)
    face = found.faces[choose_face(len(found.faces), settings.get(context).face, photo)]
    read = encoder.predict_face(face)
    return Neutral.from_rows(np.array([read.units[u] for u in ARKIT_NAMES]),
                             np.array([read.emotion_probs[e] for e in encoder.emotions]),
                             np.array([read.intensity]), encoder.emotions, source=photo)


def _sequence_neutral(context: bpy.types.Context, automatic: bool) -> Any:
    from ..inference.expression.calibration import NeutralSpec
    from ..inference.payloads import sequence_neutral
    from ..inference.retarget.plan import ReconstructError
    from ..inference.sequence.frames import IMAGE_SUFFIXES, FolderSource, open_source
    from .sequence import _sequence_path, cache_dir

    options = settings.get(context)
    path = _sequence_path(options)
    if automatic:
        first = options.seq_frame_first - 1
        last = options.seq_frame_last - 1 if options.seq_frame_last else None
    else:
        first, last = options.neutral_first - 1, options.neutral_last - 1
        if last < first:
            raise ReconstructError(f"The neutral frames {options.neutral_first}-{options.neutral_last} are empty: "
                                   "Last must be at least First.")
    if os.path.isfile(path) and os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES:
        source: Any = FolderSource(os.path.dirname(path), first, last, 1, like=os.path.basename(path))
    else:
        source = open_source(path, first, last, 1)
    pipeline = sessions.sequence_pipeline(options.seq_face - 1, bpy.path.abspath(preferences.get(context).encoder_path))
    raw = pipeline.run(source, cache_dir=cache_dir())
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
        except FieldsError as error:
            self.report({"ERROR"}, sentence(str(error)))
            return {"CANCELLED"}
        except ImportError as error:
            self.report({"ERROR"}, missing_runtime(error))
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


classes = (FIELDS_OT_set_neutral, FIELDS_OT_clear_neutral, FIELDS_PT_artist)
# fake-bpy-module types the factory as returning None; it returns (register, unregister).
register, unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]
