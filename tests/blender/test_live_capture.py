"""Live capture in Blender (issue 14), headless, a video file standing in for the camera: the head
follows the newest frame, Record keys through Apply to Sequence's path at the scene's rate,
stopping releases the camera, and no camera is one error with the scene unchanged."""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MODULE, scene_state
from sequence_fixtures import moving_frame, write_video
from test_apply_sequence import common, configure, frames_of, handlers, target_state
from test_reconstruct import fcurves

from inference.retarget.head_pose import HEAD_POSE_PROPERTY
from inference.retarget.plan import PREDICTED_INTENSITY_PROPERTY

bpy = pytest.importorskip("bpy")
N = 16


def live() -> Any:
    return importlib.import_module(MODULE + ".fields_addon.live")


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("camera") / "webcam.avi", (moving_frame(i, N) for i in range(N)),
                       fps=25.0)


def add_ict_head() -> Any:
    assert bpy.ops.fields.add_head(identity_keys=False) == {"FINISHED"}
    return bpy.context.active_object


def run_to_end(session: Any, limit_s: float = 60.0) -> int:
    """Tick as the modal timer would until the file is used up; the number of frames applied."""
    began = time.perf_counter()
    while session.capture.running:
        session.tick(bpy.context)
        assert time.perf_counter() - began < limit_s
        time.sleep(0.005)
    session.tick(bpy.context)
    return int(session.applied)


def test_head_follows_the_camera_and_record_keys_the_take(blender, camera_file, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    head = add_ict_head()
    bpy.context.scene.render.fps = 25
    bpy.context.scene.frame_current = 7
    configure(Path(""), "VIDEO", seq_smooth=False)
    bpy.context.scene.fields.live_record = True
    session = live().LiveSession(bpy.context, camera=str(camera_file), pace=False)
    try:
        applied = run_to_end(session)
        assert applied >= 1 and session.latencies_ms
        # The head shows the newest frame, as Reconstruct would show it.
        newest = session.capture.latest()
        plan = session.plan_frame(newest.expression)
        for name, value in plan.weights.items():
            assert head[f"fields_w_{name}"] == pytest.approx(value, abs=1e-6)
        # The Sequence head-pose toggle (on by default) turns the neck in the preview too.
        assert plan.head is not None and plan.head[0] == "neck"
        assert np.allclose(head[HEAD_POSE_PROPERTY], plan.head[1], atol=1e-6)
        assert "FIELDS live: camera" in session.status()
        assert session.capture.recording
        bpy.context.scene.fields.live_record = False  # Record off: the take is keyed
        session.tick(bpy.context)
        # While the preview goes on, the new keys are muted (animation would freeze the head)...
        curves = [fc for fc in fcurves(head) if fc.data_path.startswith('["fields_')]
        assert curves and all(fc.mute for fc in curves)
    finally:
        session.stop(bpy.context)
    assert not any(fc.mute for fc in fcurves(head))  # ... and unmuted when it stops
    assert not session.capture.running and session.capture._capture is None
    keys = frames_of(head, f'["{PREDICTED_INTENSITY_PROPERTY}"]')
    recorded = session.capture.stats()["read"]
    assert keys[0, 0] == 7 and len(keys) >= 2 and len(keys) <= recorded  # from the frame Record began
    assert np.all(np.diff(keys[:, 0]) == 1)  # one key per scene frame at 25 fps
    assert any("frames keyed on" in message for _, message in session.reports)
    for index in range(3):  # the recording keys the head pose as Apply to Sequence does
        assert len(frames_of(head, f'["{HEAD_POSE_PROPERTY}"]', index)) == len(keys)


def test_stopping_keys_a_recording_in_progress_and_cancel_keeps_nothing(blender, camera_file, monkeypatch,
                                                                        tmp_path) -> None:
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    head = add_ict_head()
    configure(Path(""), "VIDEO")
    bpy.context.scene.fields.live_record = True
    session = live().LiveSession(bpy.context, camera=str(camera_file), pace=False)
    run_to_end(session)
    session.stop(bpy.context, keep=True)  # Esc: stop, key, release
    assert frames_of(head, f'["{PREDICTED_INTENSITY_PROPERTY}"]').shape[0] >= 2
    assert bpy.context.scene.fields.live_record is False
    head.animation_data_clear()
    del head[HEAD_POSE_PROPERTY]
    bpy.context.scene.fields.live_record = True
    bpy.context.scene.fields.seq_head_pose = False  # the toggle off: neither preview nor recording turns the head
    session = live().LiveSession(bpy.context, camera=str(camera_file), pace=False)
    assert run_to_end(session) >= 1
    session.stop(bpy.context, keep=False)  # Blender cancelling the operator: nothing keyed
    assert head.animation_data is None and session.capture._capture is None
    assert HEAD_POSE_PROPERTY not in head


@pytest.mark.parametrize(("camera", "message"), [
    ("97", "Camera '97' is not connected or is in use by another program"),
    ("not a camera", "is neither a camera number"),
])
def test_no_camera_is_one_error_and_changes_nothing(blender, camera, message) -> None:
    head = add_ict_head()
    before, props, hooks = scene_state(), target_state(head), handlers()
    with pytest.raises(Exception, match=message) as raised:  # the extension's own CameraError class
        live().LiveSession(bpy.context, camera=camera)
    assert type(raised.value).__name__ == "CameraError"
    assert scene_state() == before and target_state(head) == props and handlers() == hooks
    assert not live()._live_timers and not live()._active
    # The operator outside the viewport's event loop refuses with one sentence.
    with pytest.raises(RuntimeError, match="runs interactively"):
        bpy.ops.fields.live_capture()


def test_target_without_keys_is_refused_before_the_camera_opens(blender, camera_file) -> None:
    bpy.ops.mesh.primitive_cube_add()
    with pytest.raises(Exception, match="has no shape keys"):
        live().LiveSession(bpy.context, camera=str(camera_file))


def test_live_preview_and_recording_are_calibrated_by_the_heads_neutral(blender, camera_file, monkeypatch,
                                                                         tmp_path) -> None:
    """Issue 13's neutral on live capture: each previewed frame and the keyed recording are read
    relative to the head's stored neutral, exactly as Apply to Sequence reads the same clip."""
    from inference.expression.calibration import NEUTRAL_PROPERTY, Neutral
    from inference.expression.encoder import ExpressionEncoder
    from inference.perception.blendshapes import ARKIT_NAMES
    from inference.perception.pipeline import Perception
    from inference.sequence.frames import open_source
    from inference.sequence.pipeline import SequencePipeline

    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    encoder = ExpressionEncoder()
    emotions = list(encoder.emotions)
    neutral = Neutral.from_rows(np.full((1, 52), 0.2), np.full((1, len(emotions)), 1 / len(emotions)),
                                np.array([0.3]), emotions, source="test rest")
    head = add_ict_head()
    head[NEUTRAL_PROPERTY] = neutral.to_json()
    bpy.context.scene.render.fps = 25
    bpy.context.scene.frame_current = 1
    configure(Path(""), "VIDEO", seq_smooth=False)
    bpy.context.scene.fields.live_record = True
    session = live().LiveSession(bpy.context, camera=str(camera_file), pace=False)
    try:
        assert run_to_end(session) >= 1
        newest = session.capture.latest()
        plan = session.plan_frame(encoder.calibrated(newest.expression, neutral))
        for name, value in plan.weights.items():
            assert head[f"fields_w_{name}"] == pytest.approx(value, abs=1e-5)
    finally:
        session.stop(bpy.context)
    reference = SequencePipeline(perception=Perception(max_faces=1), encoder=encoder).run(open_source(camera_file))
    expected = reference.calibrated(neutral, encoder).processed(smoothing=None).units()
    for unit in ("jawOpen", "mouthSmileLeft"):
        keys = frames_of(head, f'["fields_w_{unit}"]')
        # Record starts on the first tick, by which the worker may have handled a frame or two:
        # unpaced, the recording is then the clip's last frames, every one of them.
        assert 2 <= len(keys) <= N
        assert np.abs(keys[:, 1] - expected[N - len(keys):, ARKIT_NAMES.index(unit)]).max() < 1e-4, unit


def test_live_preview_skips_frames_below_min_confidence(blender, camera_file) -> None:
    add_ict_head()
    configure(Path(""), "VIDEO", seq_min_confidence=1.0)  # no tracked face scores a full 1
    session = live().LiveSession(bpy.context, camera=str(camera_file), pace=False)
    try:
        assert run_to_end(session) == 0 and session.capture.latest().expression is not None
    finally:
        session.stop(bpy.context)
