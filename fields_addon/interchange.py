"""Export to a Live Link Face CSV: the keyed head's action, or a sequence result.

`FIELDS_OT_export_livelink` writes either what the target's action shows (the `fields_w_*`
weights, or ARKit-named shape-key curves of any rig, times the keyed intensity, and the head pose
keyed on the rig's head bone as HeadYaw/Pitch/Roll, sampled at every scene frame of the keyed
range) or a sequence result (an `.npz` the command line wrote, or the
panel's current source when its reading is cached, processed with the panel's gap and smoothing
settings). The format and every conversion live in `inference.sequence.livelink`; this module only
reads Blender's curves. Errors are one report naming the file, and nothing is written. Must not
hold state.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import bpy

from . import apply, sessions, settings
from .common import GAPS, FieldsTargetMixin, failure, resolve_target, smoothing_settings

if TYPE_CHECKING:
    from bpy._typing.rna_enums import OperatorReturnItems

_WEIGHT = re.compile(r'^\["fields_w_(?P<name>.+)"\]$')
_SHAPE_KEY = re.compile(r'^key_blocks\["(?P<name>.+)"\]\.value$')


def action_take(target: bpy.types.Object, fps: float) -> Any:
    """The `Take` the target's action shows, one row per scene frame of its keyed range. Raises
    ValueError when nothing usable is keyed."""
    import numpy as np

    from ..inference.retarget.plan import INTENSITY_PROPERTY
    from ..inference.sequence.livelink import Take, units_from_channels

    curves: dict[str, dict[int, Any]] = {}
    intensity = None
    others: dict[tuple[str, int], Any] = {}  # the head pose's and the head strength's curves
    for fcurve in apply.action_fcurves(target):
        match = _WEIGHT.match(fcurve.data_path)
        if match:
            curves.setdefault(match["name"], {})[fcurve.array_index] = fcurve
        elif fcurve.data_path == f'["{INTENSITY_PROPERTY}"]':
            intensity = fcurve
        else:
            others[(fcurve.data_path, fcurve.array_index)] = fcurve
    shape_keys = getattr(target.data, "shape_keys", None)
    if not curves and shape_keys is not None:  # any rig keyed by other tools: its ARKit-named keys
        for fcurve in apply.action_fcurves(shape_keys):
            match = _SHAPE_KEY.match(fcurve.data_path)
            if match:
                curves[match["name"]] = {0: fcurve}
    if not curves:
        raise ValueError(f"'{target.name}' has no keyed FIELDS weights or shape keys: apply a sequence "
                         "(or key it) first")
    keyed = [p.co[0] for channel in curves.values() for fcurve in channel.values() for p in fcurve.keyframe_points]
    if not keyed:
        raise ValueError(f"'{target.name}' has animation curves but no keys")
    frames = np.arange(int(np.floor(min(keyed))), int(np.ceil(max(keyed))) + 1)
    scale = (np.array([intensity.evaluate(f) for f in frames]) if intensity is not None
             else np.full(len(frames), float(target.get(INTENSITY_PROPERTY, 1.0))))
    weights, rotations = {}, {}
    for name, channel in curves.items():
        values = np.array([[channel[i].evaluate(f) if i in channel else 0.0 for i in range(3)] for f in frames])
        if max(channel) > 0:
            rotations[name] = values * scale[:, None]
        else:
            weights[name] = values[:, 0] * scale
    described = apply.read_target(target)
    tables = sessions.head_tables(described.face_model_sha256)
    units = units_from_channels(weights, rotations, tables, described.eyelid_keys)
    count = len(frames)
    return Take(times=(frames - frames[0]) / fps, units=units, head=_head_angles(target, frames, others),
                eyes=np.zeros((count, 2, 3)), start=float(frames[0]) / fps)


def _head_angles(target: bpy.types.Object, frames: Any, curves: dict[tuple[str, int], Any]) -> Any:
    """(T, 3) head yaw, pitch, roll the rig shows at `frames`: the keyed `fields_head_pose` (else its
    value) times the head strength, taken from the head bone's axes back to the camera's (the
    inverse of how Apply to Sequence keys it); zeros when no bone takes the head pose."""
    import numpy as np

    from ..inference.retarget.head_pose import HEAD_POSE_PROPERTY, camera_pose
    from ..inference.retarget.regions import strength_property
    from ..inference.sequence.livelink import yaw_pitch_roll

    obj: Any = target
    bone = apply.head_pose_bone(target)
    if bone is None or HEAD_POSE_PROPERTY not in obj:
        return np.zeros((len(frames), 3))

    def sampled(prop: str, index: int, value: float) -> Any:
        fcurve = curves.get((f'["{prop}"]', index))
        return np.array([fcurve.evaluate(f) for f in frames]) if fcurve is not None else np.full(len(frames), value)

    held = list(obj[HEAD_POSE_PROPERTY])
    local = np.stack([sampled(HEAD_POSE_PROPERTY, i, float(held[i])) for i in range(3)], axis=1)
    strength = sampled(strength_property("head"), 0, float(obj.get(strength_property("head"), 1.0)))
    rest = np.array(bone.bone.matrix_local.to_3x3())
    return yaw_pitch_roll(camera_pose(local * strength[:, None], rest))


def _sequence_result(context: bpy.types.Context, path: str) -> Any:
    """The result to export: the .npz at `path` (a raw one processed with the panel's settings), or
    the panel's source when its reading is cached (or is a CSV), prepared as Apply to Sequence keys
    it (Min confidence, the target's neutral when Calibrate is on, gaps and smoothing)."""
    from ..inference.retarget.plan import ReconstructError
    from ..inference.sequence.pipeline import load_result
    from .sequence import SequenceRun

    if path:
        result = load_result(bpy.path.abspath(path))
        if result.processing is not None:
            return result
        options = settings.get(context)
        return result.processed(gaps=GAPS[options.seq_gaps], smoothing=smoothing_settings(options))
    run = SequenceRun(context)
    if not run.job.finished:
        run.cancel()
        raise ReconstructError(f"{run.name} has not been read yet: press Apply to Sequence first (the export "
                               "reads its cached result).")
    return run.prepared(run.job.result())[1]


class FIELDS_OT_export_livelink(FieldsTargetMixin, bpy.types.Operator):
    """Write a Live Link Face CSV (Unreal, iPhone app and other tools read it): what the target's
    action shows, or a sequence result"""

    bl_idname = "fields.export_livelink"
    bl_label = "Export Live Link CSV"
    bl_options = {"REGISTER"}

    filepath: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="File", description="The CSV file to write (replaced if it exists)", subtype="FILE_PATH", default="")
    filter_glob: bpy.props.StringProperty(  # type: ignore[valid-type]
        default="*.csv", options={"HIDDEN"}, description="Files shown in the file browser")
    source: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="From",
        description="What to write",
        items=(("ACTION", "Keyed head", "What the target's action shows at every frame of its keyed range "
                "(FIELDS weights times intensity, or ARKit-named shape-key curves; the keyed head pose as "
                "HeadYaw/Pitch/Roll)"),
               ("RESULT", "Sequence result", "A sequence result: the .npz file below, or when it is empty the "
                "panel's current source, read from its cache")),
        default="ACTION",
    )
    result_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Result file", description="A FIELDS sequence result (.npz, as `python -m inference VIDEO --out` "
        "writes it); empty uses the panel's source", subtype="FILE_PATH", default="")

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[OperatorReturnItems]:
        if not self.filepath:
            target = resolve_target(context)
            stem = bpy.path.clean_name(target.name if target is not None else "take")
            self.filepath = bpy.path.abspath(f"//{stem}.csv") if bpy.data.filepath else f"{stem}.csv"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        from ..inference.errors import FieldsError
        from ..inference.sequence.livelink import LiveLinkError, result_take, write_take

        options = settings.get(context)
        render = context.scene.render
        fps = render.fps / render.fps_base
        if not self.filepath:
            self.report({"ERROR"}, "No file to write: choose a .csv file.")
            return {"CANCELLED"}
        if not self.filepath.lower().endswith(".csv"):
            self.filepath += ".csv"
        try:
            if self.source == "ACTION":
                target = resolve_target(context)
                assert target is not None  # poll
                try:
                    take = action_take(target, fps)
                except ValueError as error:
                    raise LiveLinkError(self.filepath, f"was not written: {error}.") from None
            else:
                take = result_take(self.filepath, _sequence_result(context, self.result_path))
            write_take(bpy.path.abspath(self.filepath), take, options.seq_timecode_fps)
        except (FieldsError, ImportError) as error:  # ImportError: a runtime library missing from Blender
            self.report({"ERROR"}, failure(error))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Wrote {len(take.times)} frames to '{self.filepath}'.")
        return {"FINISHED"}


classes = (FIELDS_OT_export_livelink,)
# fake-bpy-module types the factory as returning None; it returns (register, unregister).
register, unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]
