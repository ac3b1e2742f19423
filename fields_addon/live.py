"""Live capture: a webcam (or a camera URL) driving the target in the viewport, and Record keying
the performance at the scene's frame rate.

`LiveSession` does the work without the operator, so tests drive it headless with a video file
standing in for the camera: settings read once, the target checked with an all-zero frame (the
photo's planner), then the camera opened and `inference.sequence.live.LiveCapture`'s camera and
tracking threads started; every error is raised before the scene changes. `tick()` (one per
timer event) puts the newest expression on the target through the photo path (calibrated against
the head's stored neutral when Calibrate is on, frames below Min confidence skipped, then `plan`
with the target's mapping rows and `apply.apply_plan`) and follows the Record toggle; a finished recording is keyed by
`sequence.SequenceRun` with the recording in place of a file, so it goes through exactly the gap
filling, smoothing, planning and keying of Apply to Sequence. `stop()` ends the threads and
releases the camera. The operator adds the timer and status text and removes them on every way
out. Stopping (Esc, right-click) keys a recording in progress: unlike a video, a performance
cannot be read again. Must not hold state beyond a session, except `_live_timers` and `_active`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import bpy

from . import apply, preferences, sessions, settings
from .common import (
    FieldsTargetMixin,
    failure,
    find_object,
    planner,
    resolve_target,
    sentence,
    sequence_parts,
    target_neutral,
)

if TYPE_CHECKING:
    from bpy._typing.rna_enums import OperatorReturnItems

TICK_S = 0.01  # the timer: the head is updated at most this long after a frame is ready
CANCEL_EVENTS = frozenset({"ESC", "RIGHTMOUSE"})
_live_timers: set[int] = set()  # timer ids still registered (tests check every way out removes its timer)
_active: list[LiveSession] = []  # the running session, so a second start is refused and unregister stops it


class LiveSession:
    def __init__(self, context: bpy.types.Context, camera: str | None = None, pace: bool | None = None) -> None:
        from ..inference.sequence.live import LiveCapture
        from ..inference.sequence.plan import neutral_expression

        options = settings.get(context)
        target = resolve_target(context)
        assert target is not None  # poll
        self.target_name, self.target_uid = target.name, target.session_uid
        self.camera = options.live_camera if camera is None else camera
        # The parts Apply to Sequence applies, the head's turn included when the Sequence head-pose
        # toggle is on, so the preview shows what the recording will key.
        parts = sequence_parts(options)
        encoder_path = bpy.path.abspath(preferences.get(context).encoder_path)
        pipeline = sessions.sequence_pipeline(options.seq_face - 1, encoder_path)
        self.plan_frame = planner(context, pipeline.encoder, target, parts)
        self.plan_frame(neutral_expression(list(pipeline.encoder.expression_names)))  # the target takes it
        # Issue 13's controls, as Reconstruct and Apply to Sequence use them: the head's stored
        # neutral (Calibrate) and Min confidence. A damaged or foreign neutral fails here, before the camera opens.
        self.encoder = pipeline.encoder
        self.neutral = target_neutral(context, target)
        if self.neutral is not None:
            emotions = list(self.encoder.emotions)
            self.neutral.calibrate_probs([1.0 / len(emotions)] * len(emotions), emotions)
        self.min_confidence = options.seq_min_confidence
        self.capture = LiveCapture(self.camera, pipeline.perception, pipeline.encoder, face=options.seq_face - 1,
                                   pace=pace).start()
        self._muted: list[Any] = []
        self._mute_keys(target)
        self.last_number = -1
        self.applied = 0
        self.latencies_ms: list[float] = []  # camera to head, per applied frame
        self.record_start = 0
        self.reports: list[tuple[str, str]] = []

    def _mute_keys(self, target: bpy.types.Object) -> None:
        """Keyed FIELDS channels would hold the head at their keyed values (animation wins over a
        property set from Python), so they are muted while the preview runs and unmuted by `stop()`."""
        for fcurve in apply.action_fcurves(target):
            if fcurve.data_path.startswith('["fields_') and not fcurve.mute:
                fcurve.mute = True
                self._muted.append(fcurve)

    def target(self) -> bpy.types.Object | None:
        return find_object(self.target_uid)

    def tick(self, context: bpy.types.Context) -> bool:
        """Show the newest frame on the target and follow the Record toggle; True when a new frame
        was applied. Raises a `FieldsError` when the camera or the target went away."""
        from ..inference.retarget.plan import ReconstructError
        from ..inference.sequence.live import CameraError

        if self.capture.error:
            raise CameraError(str(self.camera), f"stopped: {self.capture.error}")
        target = self.target()
        if target is None:
            raise ReconstructError(f"The target '{self.target_name}' was deleted during live capture.")
        options = settings.get(context)
        if options.live_record and not self.capture.recording:
            self.record_start = context.scene.frame_current
            self.capture.start_recording()
        elif not options.live_record and self.capture.recording:
            self.key_recording(context)
        frame = self.capture.latest()
        if frame is None or frame.number == self.last_number or frame.expression is None:
            return False
        self.last_number = frame.number
        if self.min_confidence > 0 and not frame.score >= self.min_confidence:
            return False  # a weak face: the head holds the last confident frame, as a gap would
        expression = frame.expression
        if self.neutral is not None:
            expression = self.encoder.calibrated(expression, self.neutral)
        apply.apply_plan(target, self.plan_frame(expression), expression.intensity, None)
        self.applied += 1
        self.latencies_ms.append((time.perf_counter() - frame.captured) * 1000)
        return True

    def key_recording(self, context: bpy.types.Context) -> None:
        """Key what was recorded, from the scene frame where Record was turned on, through Apply to
        Sequence's processing (`SequenceRun.finish`)."""
        from .sequence import SequenceRun

        render = context.scene.render
        raw = self.capture.stop_recording(render.fps / render.fps_base)
        if raw is None or not raw.found.any():
            self.reports.append(("WARNING", "Nothing was keyed: no face was seen while recording."))
            return
        run = SequenceRun(context, recorded=raw, recorded_name=f"camera {self.camera}")
        run.target_start = self.record_start
        self.reports += run.finish(context)
        target = self.target()
        if target is not None:  # the new keys' curves too, while the preview goes on
            self._mute_keys(target)

    def status(self) -> str:
        stats = self.capture.stats()
        head = sorted(self.latencies_ms[-30:])
        latency = f", {head[len(head) // 2]:.0f} ms camera to head" if head else ""
        record = ", recording" if self.capture.recording else ""
        return f"FIELDS live: camera {self.camera}, {stats['fps']:.0f} frames/s{latency}{record} (Esc to stop)"

    def stop(self, context: bpy.types.Context | None = None, keep: bool = True) -> None:
        """End capture and release the camera; a recording in progress is keyed when `keep`."""
        try:
            if keep and context is not None and self.capture.recording:
                self.key_recording(context)
        finally:
            self.capture.stop()
            for fcurve in self._muted:
                try:
                    fcurve.mute = False
                except ReferenceError:  # its action was deleted meanwhile
                    pass
            self._muted = []
            if context is not None:
                settings.get(context).live_record = False


class FIELDS_OT_live_capture(FieldsTargetMixin, bpy.types.Operator):
    """Drive the target live from a camera (an index such as 0, or a URL); tick Record to key the
    performance at the scene's frame rate. Esc or right-click stops and releases the camera"""

    bl_idname = "fields.live_capture"
    bl_label = "Live Capture"
    bl_options = {"REGISTER", "UNDO"}

    _session: LiveSession | None = None
    _timer: Any = None

    def _begin(self, context: bpy.types.Context) -> LiveSession | None:
        from ..inference.errors import FieldsError

        if _active:
            self.report({"ERROR"}, "Live capture is already running: press Esc in the viewport to stop it.")
            return None
        try:
            return LiveSession(context)
        except (FieldsError, ImportError) as error:  # ImportError: a runtime library missing from Blender
            self.report({"ERROR"}, failure(error))
        return None

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[OperatorReturnItems]:
        session = self._begin(context)
        if session is None:
            return {"CANCELLED"}
        self._session = session
        _active.append(session)
        wm = context.window_manager
        self._timer = wm.event_timer_add(TICK_S, window=context.window)
        _live_timers.add(id(self._timer))
        wm.modal_handler_add(self)
        self._show(context, session.status())
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        """Live capture needs the viewport's event loop: only INVOKE runs it."""
        self.report({"ERROR"}, "Live Capture runs interactively: press the button in the FIELDS panel.")
        return {"CANCELLED"}

    def _show(self, context: bpy.types.Context, text: str | None) -> None:
        if context.workspace is not None:
            context.workspace.status_text_set(text)
        if context.area is not None:
            context.area.header_text_set(text)

    def _end(self, context: bpy.types.Context, keep: bool) -> None:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            _live_timers.discard(id(self._timer))
            self._timer = None
        self._show(context, None)
        session, self._session = self._session, None
        if session is not None:
            if session in _active:
                _active.remove(session)
            session.stop(context, keep=keep)
            for level, message in session.reports:
                self.report({level}, message)  # type: ignore[arg-type]

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[OperatorReturnItems]:
        from ..inference.errors import FieldsError

        assert self._session is not None
        if event.type in CANCEL_EVENTS and event.value == "PRESS":
            try:
                self._end(context, keep=True)
            except FieldsError as error:
                self.report({"ERROR"}, sentence(str(error)))
                return {"CANCELLED"}
            self.report({"INFO"}, "Live capture stopped; the camera is released.")
            return {"FINISHED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            if self._session.tick(context):
                for area in context.screen.areas if context.screen is not None else ():
                    if area.type == "VIEW_3D":
                        area.tag_redraw()
            self._show(context, self._session.status())
        except FieldsError as error:
            self._end(context, keep=False)
            self.report({"ERROR"}, sentence(str(error)))
            return {"CANCELLED"}
        return {"RUNNING_MODAL"}

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the operator itself (file loaded, window closed): release the camera, key nothing."""
        self._end(context, keep=False)


classes = (FIELDS_OT_live_capture,)
_register, _unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc, has-type]


def register() -> None:
    _register()  # type: ignore[has-type]


def unregister() -> None:
    while _active:  # never leave a camera open behind a disabled add-on
        _active.pop().capture.stop()
    _unregister()  # type: ignore[has-type]
