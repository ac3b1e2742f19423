"""What the FIELDS operators share: the target they act on, their poll, how an error becomes one
report line, and the planner that turns an encoder's prediction into a `Plan` for the target.

Operators import from here, never from one another. Must not hold state, and must not import the
heavy runtime (ONNX Runtime, OpenCV) at module level: this is imported when the add-on is enabled.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import bpy

from . import apply, preferences, sessions, settings


def resolve_target(context: bpy.types.Context) -> bpy.types.Object | None:
    """The panel's target, else the active object when it is a mesh."""
    chosen = settings.get(context).target
    if chosen is not None:
        return chosen  # type: ignore[no-any-return]
    active = context.active_object
    return active if active is not None and active.type == "MESH" else None


class FieldsTargetMixin:
    """Shared poll: object mode and a mesh target."""

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if context.mode != "OBJECT":
            return False
        if resolve_target(context) is None:
            cls.poll_message_set("Pick a target mesh in the panel, or make a mesh active")  # type: ignore[attr-defined]
            return False
        return True


def sentence(message: str) -> str:
    """Blender's report is one line; the errors' messages are sentences, some without the full stop."""
    message = " ".join(message.split())
    return message if message.endswith((".", "!", "?")) else message + "."


def missing_runtime(error: ImportError) -> str:
    """The report for a runtime library (onnxruntime, cv2) missing from this Blender's Python."""
    return (f"FIELDS cannot run: the Python module '{error.name}' is missing from Blender; reinstall the "
            "add-on's zip for this platform.")


def failure(error: Exception) -> str:
    """The one-line report for an operator's expected failure: a `FieldsError`'s sentence, or
    `missing_runtime` for an ImportError."""
    return missing_runtime(error) if isinstance(error, ImportError) else sentence(str(error))


GAPS = {"INTERPOLATE": "interpolate", "HOLD": "hold", "LEAVE": "leave"}  # the panel's No face choice


def find_object(session_uid: int) -> bpy.types.Object | None:
    """An object found again by its session id (a name can be reused, a pointer can dangle)."""
    for obj in bpy.data.objects:
        if obj.session_uid == session_uid:
            return obj
    return None


def sequence_parts(options: Any) -> set[str]:
    """The parts a sequence, a live preview or a recording applies: the Apply toggles, and "head"
    when the Sequence head-pose toggle is on."""
    from ..inference.retarget.plan import PARTS

    parts = {part for part in PARTS if getattr(options, f"apply_{part}")}
    return parts | {"head"} if options.seq_head_pose else parts


def smoothing_settings(options: Any) -> Any:
    """The panel's One-Euro settings (`inference.sequence.smoothing.OneEuroSettings`), None when Smooth is off."""
    from ..inference.sequence.smoothing import OneEuroSettings

    if not options.seq_smooth:
        return None
    return OneEuroSettings(options.seq_smooth_steadiness, options.seq_smooth_responsiveness,
                           options.seq_smooth_speed_cutoff)


def cache_dir() -> Path:
    """`//fields_cache/` beside a saved .blend, else the extension's user folder (never the add-on's own)."""
    if bpy.data.filepath:
        return Path(bpy.path.abspath("//fields_cache"))
    return Path(bpy.utils.extension_path_user(preferences.ADDON_ID, path="sequence_cache", create=True))


def photo_source(context: bpy.types.Context) -> tuple[Any, str]:
    """The panel's photo: (source for Perception, how to name it in messages)."""
    import numpy as np

    from ..inference.retarget.plan import ReconstructError

    options = settings.get(context)
    if options.source == "IMAGE":
        image = options.image
        if image is None:
            raise ReconstructError("No image is chosen: pick one in the panel, or switch Photo to File.")
        path = bpy.path.abspath(image.filepath) if image.source == "FILE" else ""
        if path and image.packed_file is None and not image.is_dirty and os.path.isfile(path):
            return path, f"'{path}'"  # the file itself: full quality, EXIF orientation respected
        width, height = image.size
        if width == 0 or height == 0 or not image.has_data and not image.pixels:
            raise ReconstructError(f"Image '{image.name}' has no pixels (is its file missing?).")
        pixels = np.empty(width * height * image.channels, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        # Blender stores rows bottom-up.
        return pixels.reshape(height, width, image.channels)[::-1, :, :min(3, image.channels)], f"image '{image.name}'"
    if not options.filepath:
        raise ReconstructError("No photo is chosen: pick a photo file in the panel.")
    path = bpy.path.abspath(options.filepath)
    return path, f"'{path}'"


def sequence_path(options: Any) -> str:
    """The file or folder to read for the chosen sequence source; raises ReconstructError when none is set."""
    from ..inference.retarget.plan import ReconstructError

    kind = options.seq_source
    if kind == "CSV":
        if not options.seq_csv_path:
            raise ReconstructError("No Live Link Face CSV is chosen: pick a .csv file in Apply to Sequence.")
        return bpy.path.abspath(options.seq_csv_path)
    if kind == "VIDEO":
        if not options.seq_filepath:
            raise ReconstructError("No video is chosen: pick a video file in Apply to Sequence.")
        return bpy.path.abspath(options.seq_filepath)
    if kind == "FOLDER":
        if not options.seq_directory:
            raise ReconstructError("No image folder is chosen: pick a folder in Apply to Sequence.")
        return bpy.path.abspath(options.seq_directory)
    owner = options.seq_clip if kind == "CLIP" else options.seq_image
    what = "movie clip" if kind == "CLIP" else "image"
    if owner is None:
        raise ReconstructError(f"No {what} is chosen: pick one in Apply to Sequence.")
    path = bpy.path.abspath(owner.filepath, library=owner.library)
    if owner.source in ("MOVIE", "SEQUENCE"):
        return path  # a sequence: one of its files, whose numbered siblings are read (SequenceRun)
    raise ReconstructError(f"The {what} '{owner.name}' is a single image, not a movie or image sequence: "
                           "use Reconstruct for a photo.")


def head_file(context: bpy.types.Context, target: bpy.types.Object) -> str:
    """The face-model file a FIELDS head was built from, found by its sha256 among the shipped heads
    and the preferences' FLAME file; "" when it is not a FIELDS head or the file is not found."""
    import os

    from ..inference.head.default_head import HEAD_FILE
    from ..inference.head.ict import ICT_HEAD_FILE

    wanted = str(target.get("fields_face_model_sha256", ""))
    flame = bpy.path.abspath(preferences.get(context).flame_path)
    for path in (str(ICT_HEAD_FILE), flame, str(HEAD_FILE)):
        if wanted and path and os.path.isfile(path) and sessions.digest(path) == wanted:
            return path
    return ""


def planner(context: bpy.types.Context, encoder: Any, target: bpy.types.Object,
            parts: Iterable[str]) -> Callable[[Any], Any]:
    """`expression -> Plan` for `target` with `encoder`'s face model: the photo's and every
    sequence frame's one way onto the target (direct, FLAME retargeting or ARKit names)."""
    from ..inference.retarget.plan import plan

    prefs = preferences.get(context)
    described = apply.read_target(target)
    if "head" in parts:
        described = _with_head_bone(context, target, described)
    face_model = encoder.face_model
    chosen = set(parts)
    retarget = sessions.flame_retargeting(
        face_model.file, target.name, str(target.get("fields_face_model_sha256", "")),
        bpy.path.abspath(prefs.flame_path), bpy.path.abspath(prefs.embedding_path) if prefs.embedding_path else "",
        face_model.embedding)
    return lambda expression: plan(expression, face_model, described, chosen,
                                   arkit=lambda: sessions.arkit_mapping(face_model.file), retarget=retarget,
                                   head_tables=lambda described: sessions.head_tables(described.face_model_sha256))


def _with_head_bone(context: bpy.types.Context, target: bpy.types.Object, described: Any) -> Any:
    """`described` with the bone that takes the head pose and its rest rotation; ReconstructError
    when the artist's Head bone is not on the target's armature (before anything is written)."""
    from dataclasses import replace

    import numpy as np

    from ..inference.retarget.head_pose import choose_bone

    bone = choose_bone(target.name, described.bones, settings.get(context).head_bone.strip())
    if not bone:
        return described
    rig: Any = apply.armature_of(target)
    rest = np.array(rig.data.bones[bone].matrix_local.to_3x3())
    return replace(described, head_bone=bone, head_bone_rest=rest)


def target_neutral(context: bpy.types.Context, target: bpy.types.Object) -> Any:
    """The neutral reference stored on `target` (an `inference.expression.calibration.Neutral`), or
    None when there is none or Calibrate is off. Raises NeutralError when the stored one is damaged."""
    from ..inference.expression.calibration import NEUTRAL_PROPERTY, Neutral

    obj: Any = target
    if not settings.get(context).use_neutral or NEUTRAL_PROPERTY not in obj:
        return None
    return Neutral.from_json(str(obj[NEUTRAL_PROPERTY]), where=f"The neutral reference stored on '{target.name}'")
