"""What the FIELDS operators share: the target they act on, their poll, how an error becomes one
report line, and the planner that turns an encoder's prediction into a `Plan` for the target.

Operators import from here, never from one another. Must not hold state, and must not import the
heavy runtime (ONNX Runtime, OpenCV) at module level: this is imported when the add-on is enabled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
    face_model = encoder.face_model
    chosen = set(parts)
    retarget = sessions.flame_retargeting(
        face_model.file, target.name, str(target.get("fields_face_model_sha256", "")),
        bpy.path.abspath(prefs.flame_path), bpy.path.abspath(prefs.embedding_path) if prefs.embedding_path else "",
        face_model.embedding)
    return lambda expression: plan(expression, face_model, described, chosen,
                                   arkit=lambda: sessions.arkit_mapping(face_model.file), retarget=retarget,
                                   head_tables=lambda described: sessions.head_tables(described.face_model_sha256))


def target_neutral(context: bpy.types.Context, target: bpy.types.Object) -> Any:
    """The neutral reference stored on `target` (an `inference.expression.calibration.Neutral`), or
    None when there is none or Calibrate is off. Raises NeutralError when the stored one is damaged."""
    from ..inference.expression.calibration import NEUTRAL_PROPERTY, Neutral

    obj: Any = target
    if not settings.get(context).use_neutral or NEUTRAL_PROPERTY not in obj:
        return None
    return Neutral.from_json(str(obj[NEUTRAL_PROPERTY]), where=f"The neutral reference stored on '{target.name}'")
