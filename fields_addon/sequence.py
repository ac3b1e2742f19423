"""The "Apply to sequence" operator: a video, an image folder, a clip or image sequence loaded in
Blender, or a Live Link Face CSV take, read frame by frame and keyed on the target in one go.

Three small parts. `SequenceRun` reads the settings once, opens the source and starts a bpy-free
`inference.sequence` job (a cache hit is already finished), and at the end plans every frame as a
photo (`inference.sequence_plan`) and keys it in bulk (`apply.key_channels`). `ModalApply` is the
modal bookkeeping: a window-manager timer, Blender's progress indicator and the status-bar text,
all removed on every way out. The operator forwards to them, so tests drive the same code headless
(where Blender refuses INVOKE). Cancel policy: keep nothing. Keys are written only after the last
frame, so a cancelled, failed or interrupted run leaves the scene and the cache as they were, and
a finished one is one undo step. Must not hold state beyond a run, except `_live_timers`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import bpy

from . import apply, common, preferences, sessions, settings
from .common import (
    GAPS,
    FieldsTargetMixin,
    failure,
    find_object,
    planner,
    resolve_target,
    sentence,
    sequence_parts,
    sequence_path,
    smoothing_settings,
    target_neutral,
)

if TYPE_CHECKING:
    from bpy._typing.rna_enums import OperatorReturnItems

TICK_S = 0.02  # timer interval; each tick works for STEP_BUDGET_S, so the UI redraws between slices
STEP_BUDGET_S = 0.03
PROGRESS_STEPS = 1000
CANCEL_EVENTS = frozenset({"ESC", "RIGHTMOUSE"})
# Ids of our window-manager timers still registered: Blender offers no way to list them, so the
# tests read this to check that every way out removed its timer.
_live_timers: set[int] = set()


class ReadyJob:
    """A finished job holding a raw result already in hand (a Live Link Face take, a live
    recording), so it is keyed exactly as a cache hit is."""

    finished = True
    from_cache = False
    fps = 0.0
    eta_s = None

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.total = self.done = len(raw.frames)

    def step(self, budget_s: float | None = None) -> bool:
        return True

    def cancel(self) -> None:
        pass

    def result(self) -> Any:
        return self._raw


class SequenceRun:
    """One apply: settings read once, the source opened and the job started in __init__ (every
    error about the source or the target is raised there, before any work); `step()` advances;
    `finish()` writes everything; `cancel()` drops the job."""

    def __init__(self, context: bpy.types.Context, recorded: Any = None, recorded_name: str = "") -> None:
        """`recorded`: a raw `SequenceResult` already in hand (live capture's recording) keyed in
        place of the panel's source, through the same processing and planning."""
        from ..inference.sequence.frames import IMAGE_SUFFIXES, FolderSource, open_source
        from ..inference.sequence.plan import neutral_expression

        options = settings.get(context)
        target = resolve_target(context)
        assert target is not None  # poll
        self.target_name, self.target_uid = target.name, target.session_uid
        self.parts = sequence_parts(options)
        self.gaps = GAPS[options.seq_gaps]
        self.smoothing = smoothing_settings(options)
        self.key_intensity = options.seq_key_intensity
        self.min_confidence = options.seq_min_confidence
        self.neutral = target_neutral(context, target)  # a damaged one fails now, before any work
        self.target_start = options.seq_target_start
        render = context.scene.render
        self.scene_fps = render.fps / render.fps_base
        path = sequence_path(options) if recorded is None else recorded_name
        last = options.seq_frame_last - 1 if options.seq_frame_last else None
        if last is not None and last < options.seq_frame_first - 1:
            from ..inference.retarget.plan import ReconstructError

            raise ReconstructError(f"The frame range {options.seq_frame_first}-{options.seq_frame_last} is "
                                   "empty: Last must be 0 (to the end) or at least First.")
        first = options.seq_frame_first - 1
        self.source: Any = None
        if recorded is not None or options.seq_source == "CSV":
            pass  # no frames to read: a take, resampled at the scene's rate
        elif os.path.isfile(path) and os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES:  # an image sequence
            self.source = FolderSource(os.path.dirname(path), first, last, options.seq_frame_step,
                                       like=os.path.basename(path))
        else:
            self.source = open_source(path, first, last, options.seq_frame_step)
        if isinstance(self.source, FolderSource):
            self.source.fps = self.scene_fps  # a folder has no rate: one image per scene frame
        self.name = f"'{path}'"
        encoder_path = bpy.path.abspath(preferences.get(context).encoder_path)
        self.pipeline = sessions.sequence_pipeline(options.seq_face - 1, encoder_path)
        # The target must take this encoder's output: checked now, not after minutes of video.
        self._plan_for(context, target)(neutral_expression(list(self.pipeline.encoder.expression_names)))
        if recorded is not None:
            self.job: Any = ReadyJob(recorded)
        elif self.source is None:
            from ..inference.payloads import read_livelink

            self.job = ReadyJob(read_livelink(path, self.scene_fps, options.seq_timecode_fps, first, last,
                                              options.seq_frame_step, encoder=self.pipeline.encoder))
        else:
            self.job = self.pipeline.start(self.source, cache_dir=common.cache_dir())

    def _plan_for(self, context: bpy.types.Context, target: bpy.types.Object) -> Any:
        return planner(context, self.pipeline.encoder, target, self.parts)

    def target(self) -> bpy.types.Object | None:
        """The target, found again by its session id (a name can be reused, a pointer can dangle)."""
        return find_object(self.target_uid)

    def check_target(self) -> bpy.types.Object:
        from ..inference.retarget.plan import ReconstructError

        target = self.target()
        if target is None:
            raise ReconstructError(f"The target '{self.target_name}' was deleted while the sequence was read: "
                                   "nothing was keyed.")
        return target

    def step(self, budget_s: float | None) -> bool:
        self.check_target()
        return bool(self.job.step(budget_s))

    def status(self) -> str:
        job = self.job
        total = f"/{job.total}" if job.total else ""
        eta = f", {job.eta_s:.0f} s left" if job.eta_s is not None else ""
        return f"FIELDS: frame {job.done}{total}, {job.fps:.0f} frames/s{eta} (Esc to cancel)"

    def fraction(self) -> float:
        return min(self.job.done / self.job.total, 1.0) if self.job.total else 0.0

    def cancel(self) -> None:
        self.job.cancel()

    def prepared(self, raw: Any) -> tuple[Any, Any]:
        """(the raw result with Min confidence and the head's neutral applied, that processed with
        the gap and smoothing settings): what is keyed, and what Export Sequence writes."""
        used = raw.confident(self.min_confidence) if self.min_confidence > 0 else raw
        if self.neutral is not None:
            used = used.calibrated(self.neutral, self.pipeline.encoder)
        return used, used.processed(gaps=self.gaps, smoothing=self.smoothing)

    def finish(self, context: bpy.types.Context) -> list[tuple[str, str]]:
        """Plan and key every frame; returns the reports, (level, sentence)."""
        import numpy as np

        from ..inference.sequence.keyframes import fcurve_keys, scene_frames
        from ..inference.sequence.plan import CONFIDENCE_PROPERTY, sequence_channels

        target = self.check_target()
        raw = self.job.result()
        used, result = self.prepared(raw)
        channels = sequence_channels(result, self._plan_for(context, target), key_intensity=self.key_intensity,
                                     name=self.name)
        # The face score as read, per frame (no key where no face was seen), beside the weights.
        channels.columns.append((CONFIDENCE_PROPERTY, 0))
        channels.values = np.concatenate([channels.values, raw.score[:, None].astype(np.float32)], axis=1)
        frames = scene_frames(result.frames, result.fps, self.target_start, self.scene_fps)
        keys = fcurve_keys(frames, channels.values, [f"{p}[{i}]" for p, i in channels.columns])
        # Properties and drivers, created once as for a photo; then the keys.
        apply.apply_plan(target, channels.first_plan, float(result.intensity[channels.first_row]), None)
        apply.ensure_confidence(target)
        written = apply.key_channels(target, channels.columns, keys, float(frames[0]), float(frames[-1]))
        context.scene.frame_set(context.scene.frame_current)  # show the keyed values now
        missing = int((~used.found & ~raw.unreadable).sum())
        unreadable = int(raw.unreadable.sum())
        summary = (f"{len(result.frames)} frames keyed on '{target.name}' at frames {frames[0]:g}-{frames[-1]:g} "
                   f"({len(channels.columns)} channels, {written} keys{', from the cache' if raw.from_cache else ''}"
                   f"{f', {missing} without a face' if missing else ''}"
                   f"{f', {unreadable} unreadable skipped' if unreadable else ''})")
        settings.get(context).seq_result = summary
        reports = [("INFO", summary + ".")]
        if missing:
            reports.append(("WARNING", f"No face was found in {missing} of {len(result.frames)} frames "
                                       f"({self.gaps} applied there)."))
        if unreadable:
            reports.append(("WARNING", f"{unreadable} frame{'s' if unreadable > 1 else ''} could not be decoded "
                                       f"and {'were' if unreadable > 1 else 'was'} skipped ({raw.problems[0]})"))
        reports += [("WARNING", sentence(w)) for w in [*channels.first_plan.notes, *raw.warnings,
                                                        *sessions.take_warnings()]]
        return reports


class ModalApply:
    """The modal side of a run: timer, progress indicator and status text, attached together and
    removed together on every way out (finish, cancel, error)."""

    def __init__(self, run: SequenceRun) -> None:
        self.run = run
        self.timer: Any = None
        self._wm: Any = None
        self._workspace: Any = None
        self._area: Any = None

    def attach(self, context: bpy.types.Context) -> None:
        self._wm = context.window_manager
        self.timer = self._wm.event_timer_add(TICK_S, window=context.window)
        _live_timers.add(id(self.timer))
        self._wm.progress_begin(0, PROGRESS_STEPS)
        self._workspace, self._area = context.workspace, context.area
        self._show(self.run.status())

    def _show(self, text: str | None) -> None:
        for owner in (self._workspace, self._area):
            try:
                if owner is not None:
                    (owner.status_text_set if owner is self._workspace else owner.header_text_set)(text)
            except ReferenceError:  # the area was closed meanwhile
                pass

    def tick(self) -> bool:
        """One slice of work; True when the job is done. An error detaches first, then propagates."""
        try:
            done = self.run.step(STEP_BUDGET_S)
        except BaseException:
            self.detach()
            raise
        if done:
            self.detach()
        else:
            self._wm.progress_update(int(self.run.fraction() * PROGRESS_STEPS))
            self._show(self.run.status())
        return done

    def cancel(self) -> None:
        self.detach()
        self.run.cancel()

    def detach(self) -> None:
        if self.timer is None:
            return
        self._wm.event_timer_remove(self.timer)
        _live_timers.discard(id(self.timer))
        self.timer = None
        self._wm.progress_end()
        self._show(None)


class FIELDS_OT_apply_sequence(FieldsTargetMixin, bpy.types.Operator):
    """Read the face in every frame of a video or image sequence and key its expression (and
    intensity) on the target, one key per frame; Esc or right-click cancels and keys nothing"""

    bl_idname = "fields.apply_sequence"
    bl_label = "Apply to Sequence"
    bl_options = {"REGISTER", "UNDO"}

    _modal: ModalApply | None = None

    def _start(self, context: bpy.types.Context) -> SequenceRun | None:
        from ..inference.errors import FieldsError

        try:
            return SequenceRun(context)
        except (FieldsError, ImportError) as error:  # ImportError: a runtime library missing from Blender
            self.report({"ERROR"}, failure(error))
        return None

    def _finish(self, context: bpy.types.Context, run: SequenceRun) -> set[OperatorReturnItems]:
        from ..inference.errors import FieldsError

        try:
            reports = run.finish(context)
        except FieldsError as error:
            self.report({"ERROR"}, sentence(str(error)))
            return {"CANCELLED"}
        for level, message in reports:
            self.report({level}, message)  # type: ignore[arg-type]
        return {"FINISHED"}

    def _failed(self, error: Exception) -> set[OperatorReturnItems]:
        self.report({"ERROR"}, sentence(str(error)))
        return {"CANCELLED"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        """The whole run at once (scripts, background mode, a cache hit)."""
        from ..inference.errors import FieldsError

        run = self._start(context)
        if run is None:
            return {"CANCELLED"}
        try:
            while not run.step(None if run.job.total is None else 0.25):
                pass
        except FieldsError as error:
            run.cancel()
            return self._failed(error)
        return self._finish(context, run)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[OperatorReturnItems]:
        run = self._start(context)
        if run is None:
            return {"CANCELLED"}
        if run.job.finished:  # a cache hit: nothing to wait for
            return self._finish(context, run)
        self._modal = ModalApply(run)
        self._modal.attach(context)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[OperatorReturnItems]:
        from ..inference.errors import FieldsError

        assert self._modal is not None
        if event.type in CANCEL_EVENTS and event.value == "PRESS":
            self._modal.cancel()
            self.report({"INFO"}, "Apply to Sequence cancelled: nothing was keyed.")
            return {"CANCELLED"}
        if event.type != "TIMER":  # Event does not say which timer: any tick may advance the job
            return {"PASS_THROUGH"}
        try:
            done = self._modal.tick()
        except FieldsError as error:
            self._modal.run.cancel()
            return self._failed(error)
        return self._finish(context, self._modal.run) if done else {"RUNNING_MODAL"}

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the operator itself (another file opened, the window closed)."""
        if self._modal is not None:
            self._modal.cancel()


classes = (FIELDS_OT_apply_sequence,)
# fake-bpy-module types the factory as returning None; it returns (register, unregister).
register, unregister = bpy.utils.register_classes_factory(classes)  # type: ignore[func-returns-value, misc]
