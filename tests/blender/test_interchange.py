"""Live Link Face CSV in Blender (issue 14): a take keyed through Apply to Sequence (the video's
processing and planning), the keyed head and a sequence result exported, round trips exact to 1e-4,
and malformed files reported by file and line with the scene unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import scene_state
from test_apply_sequence import common, configure, frames_of, handlers, target_state

from inference.perception.blendshapes import ARKIT_NAMES
from inference.retarget.head_pose import HEAD_POSE_PROPERTY
from inference.retarget.plan import PREDICTED_INTENSITY_PROPERTY
from inference.sequence.livelink import HEADER, Take, read_take, write_take

bpy = pytest.importorskip("bpy")


def add_ict_head() -> Any:
    assert bpy.ops.fields.add_head(identity_keys=False) == {"FINISHED"}
    return bpy.context.active_object


def make_take(path: Path, count: int = 30, fps: float = 60.0, seed: int = 1) -> Take:
    rng = np.random.default_rng(seed)
    units = rng.uniform(0, 1, (count, 52))
    for side in ("Left", "Right"):  # opposite gaze units are never both on (the head's table needs that)
        units[:, ARKIT_NAMES.index(f"eyeLookDown{side}")] = 0.0
        units[:, ARKIT_NAMES.index(f"eyeLookOut{side}")] = 0.0
    units[:, ARKIT_NAMES.index("jawLeft")] = 0.0
    take = Take(times=np.arange(count) / fps, units=units, head=np.zeros((count, 3)), eyes=np.zeros((count, 2, 3)))
    write_take(path, take)
    return take


def use_csv(path: Path, **options: Any) -> Any:
    settings = configure(Path(""), "CSV", seq_smooth=False, **options)
    settings.seq_csv_path = str(path)
    return settings


def test_csv_take_is_keyed_at_the_scene_rate_and_round_trips(blender, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    head = add_ict_head()
    bpy.context.scene.render.fps = 24
    take = make_take(tmp_path / "take.csv", count=61, fps=60.0)  # one second at 60 fps
    use_csv(tmp_path / "take.csv", seq_target_start=5)
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    keys = frames_of(head, '["fields_w_mouthSmileLeft"]')
    assert keys[:, 0].tolist() == list(range(5, 30))  # 25 frames at 24 fps, from Start at
    rows = [int(np.argmin(np.abs(take.times - k / 24))) for k in range(25)]
    assert np.abs(keys[:, 1] - take.units[rows, ARKIT_NAMES.index("mouthSmileLeft")]).max() < 1e-5
    assert "25 frames keyed" in bpy.context.scene.fields.seq_result
    assert not (tmp_path / "cache").exists()  # a take is read, never cached
    # The keyed head back out: the units it shows, at every keyed frame.
    out = tmp_path / "out.csv"
    assert bpy.ops.fields.export_livelink(filepath=str(out), source="ACTION") == {"FINISHED"}
    back = read_take(out)
    assert len(back.times) == 25 and np.allclose(back.times, np.arange(25) / 24, atol=1e-5)
    assert np.abs(back.units - take.units[rows]).max() < 1e-4
    # The sequence result (the panel's CSV source, processed as Apply to Sequence does) out too.
    result_out = tmp_path / "result.csv"
    assert bpy.ops.fields.export_livelink(filepath=str(result_out), source="RESULT") == {"FINISHED"}
    assert np.abs(read_take(result_out).units - take.units[rows]).max() < 1e-4


def test_export_then_import_reproduces_the_keys(blender, monkeypatch, tmp_path) -> None:
    """Export the keyed head, clear it, import the export: the same keys within 1e-4, the head
    pose keyed on the neck included (Export Keyed Head writes it as HeadYaw/Pitch/Roll)."""
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    head = add_ict_head()
    bpy.context.scene.render.fps = 30
    take = make_take(tmp_path / "plain.csv", count=20, fps=30.0)
    take.head = np.random.default_rng(5).uniform(-0.5, 0.5, (20, 3))
    write_take(tmp_path / "take.csv", take)
    use_csv(tmp_path / "take.csv")
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    channels = [k for k in head.keys() if k.startswith("fields_w_") or k == HEAD_POSE_PROPERTY]
    assert HEAD_POSE_PROPERTY in channels
    before = {(k, i): frames_of(head, f'["{k}"]', i) for k in channels
              for i in range(len(head[k]) if hasattr(head[k], "__len__") else 1)}
    assert np.abs(before[(HEAD_POSE_PROPERTY, 0)][:, 1]).max() > 0.1  # the neck really turns
    assert bpy.ops.fields.export_livelink(filepath=str(tmp_path / "export.csv"), source="ACTION") == {"FINISHED"}
    assert np.abs(read_take(tmp_path / "export.csv").head - take.head).max() < 1e-5
    head.animation_data_clear()
    use_csv(tmp_path / "export.csv")
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    worst = max(float(np.abs(frames_of(head, f'["{k}"]', i) - keys).max()) for (k, i), keys in before.items())
    assert worst < 1e-4


def test_npz_result_exports(blender, monkeypatch, tmp_path) -> None:
    from inference.expression.encoder import ExpressionEncoder
    from inference.sequence.livelink import read_result
    from inference.sequence.pipeline import save_result

    add_ict_head()
    take = make_take(tmp_path / "take.csv", count=12, fps=30.0)
    save_result(read_result(tmp_path / "take.csv", ExpressionEncoder(), 30.0).processed(smoothing=None),
                tmp_path / "p.npz")
    out = tmp_path / "p.csv"
    assert bpy.ops.fields.export_livelink(filepath=str(out), source="RESULT",
                                          result_path=str(tmp_path / "p.npz")) == {"FINISHED"}
    assert np.abs(read_take(out).units - take.units).max() < 1e-4


@pytest.mark.parametrize(("lines", "message"), [
    (("Timecode,BlendShapeCount,JawOpen", "00:00:00:00.000,1,0.5"), "line 1 lacks 51 of the 52 ARKit"),
    ((",".join(HEADER), "00:00:00:00.000,61," + ",".join(["0.1"] * 59) + ",x,0"),
     "line 2, column RightEyePitch: 'x' is not a number"),
])
def test_malformed_csv_is_one_error_naming_file_and_line(blender, monkeypatch, tmp_path, lines, message) -> None:
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    head = add_ict_head()
    path = tmp_path / "bad take.csv"
    path.write_text("\n".join(lines) + "\n")
    use_csv(path)
    before, props, hooks = scene_state(), target_state(head), handlers()
    with pytest.raises(RuntimeError, match=message) as raised:
        bpy.ops.fields.apply_sequence()
    assert str(path) in str(raised.value) and str(raised.value).count("\n") <= 1
    assert scene_state() == before and target_state(head) == props and handlers() == hooks


def test_export_with_nothing_keyed_writes_nothing(blender, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    add_ict_head()
    out = tmp_path / "none.csv"
    with pytest.raises(RuntimeError, match="has no keyed FIELDS weights"):
        bpy.ops.fields.export_livelink(filepath=str(out), source="ACTION")
    configure(tmp_path / "never-read.avi", "VIDEO")
    with pytest.raises(RuntimeError, match="does not exist|cannot be opened"):
        bpy.ops.fields.export_livelink(filepath=str(out), source="RESULT")
    assert not out.exists() and PREDICTED_INTENSITY_PROPERTY not in bpy.context.active_object.keys()


# Issue 13's controls on a take (the merge of issues 13 and 14): the head's neutral, confidence,
# the mapping editor's rows and the head pose reach a CSV take exactly as they reach a video.

def test_csv_take_is_calibrated_by_the_heads_neutral(blender, monkeypatch, tmp_path) -> None:
    import json

    from inference.expression.calibration import NEUTRAL_PROPERTY, rescale
    from inference.sequence.plan import CONFIDENCE_PROPERTY

    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    head = add_ict_head()
    bpy.context.scene.render.fps = 30
    take = make_take(tmp_path / "take.csv", count=30, fps=30.0, seed=4)
    settings = use_csv(tmp_path / "take.csv")
    settings.neutral_from, settings.neutral_first, settings.neutral_last = "FRAMES", 1, 5
    assert bpy.ops.fields.set_neutral() == {"FINISHED"}
    assert json.loads(head[NEUTRAL_PROPERTY])["source"] == f"'{tmp_path / 'take.csv'}' frames 1-5"
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    expected = rescale(take.units, np.clip(np.median(take.units[:5], axis=0), 0, 1))
    for unit in ("mouthSmileLeft", "jawOpen", "browInnerUp"):
        keys = frames_of(head, f'["fields_w_{unit}"]')
        assert np.abs(keys[:, 1] - expected[:, ARKIT_NAMES.index(unit)]).max() < 1e-4, unit
    # A take has no face score: every row is confident, keyed at 1, and Min confidence drops none.
    assert (frames_of(head, f'["{CONFIDENCE_PROPERTY}"]')[:, 1] == 1.0).all()
    # Export Sequence writes what was keyed: the calibrated take.
    assert bpy.ops.fields.export_livelink(filepath=str(tmp_path / "out.csv"), source="RESULT") == {"FINISHED"}
    assert np.abs(read_take(tmp_path / "out.csv").units - expected).max() < 1e-4
    settings.use_neutral, settings.seq_min_confidence = False, 1.0
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    keys = frames_of(head, '["fields_w_mouthSmileLeft"]')
    assert len(keys) == 30 and np.abs(keys[:, 1] - take.units[:, ARKIT_NAMES.index("mouthSmileLeft")]).max() < 1e-4


def test_neutral_range_outside_a_take_is_one_error_and_changes_nothing(blender, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    head = add_ict_head()
    bpy.context.scene.render.fps = 30
    make_take(tmp_path / "take.csv", count=30, fps=30.0)
    settings = use_csv(tmp_path / "take.csv")
    settings.neutral_from, settings.neutral_first, settings.neutral_last = "FRAMES", 500, 510
    before, props, hooks = scene_state(), target_state(head), handlers()
    with pytest.raises(RuntimeError) as raised:
        bpy.ops.fields.set_neutral()
    assert str(raised.value).strip().splitlines()[-1].endswith(
        f"The neutral frames 500-510 are outside '{tmp_path / 'take.csv'}', whose frames read are 1-30.")
    assert scene_state() == before and target_state(head) == props and handlers() == hooks


def test_csv_take_drives_a_rig_through_its_mapping_rows(blender, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    bpy.ops.mesh.primitive_cube_add()
    rig = bpy.context.active_object
    rig.shape_key_add(name="Basis")
    for name in ("Grin", "jawOpen"):
        rig.shape_key_add(name=name).value = 0.0
    row = rig.fields_mapping.add()
    row.unit, row.target, row.gain = "mouthSmileLeft", "Grin", 0.5  # the mapping editor's row wins over names
    bpy.context.scene.render.fps = 30
    take = make_take(tmp_path / "take.csv", count=12, fps=30.0)
    use_csv(tmp_path / "take.csv")
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    grin = frames_of(rig, '["fields_w_Grin"]')
    assert np.abs(grin[:, 1] - 0.5 * take.units[:, ARKIT_NAMES.index("mouthSmileLeft")]).max() < 1e-4
    assert "fields_w_jawOpen" not in rig.keys()  # no row for it: not driven, though its name is a unit
    rig.fields_mapping.clear()  # without rows, names again
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    jaw = frames_of(rig, '["fields_w_jawOpen"]')[:, 1]
    assert np.abs(jaw - take.units[:, ARKIT_NAMES.index("jawOpen")]).max() < 1e-4


def test_head_angles_go_through_import_and_export(blender, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    add_ict_head()
    bpy.context.scene.render.fps = 30
    rng = np.random.default_rng(2)
    take = make_take(tmp_path / "plain.csv", count=20, fps=30.0)
    take.head = rng.uniform(-0.5, 0.5, (20, 3))
    write_take(tmp_path / "take.csv", take)
    use_csv(tmp_path / "take.csv")
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    out = tmp_path / "out.csv"
    assert bpy.ops.fields.export_livelink(filepath=str(out), source="RESULT") == {"FINISHED"}
    assert np.abs(read_take(out).head - take.head).max() < 1e-5


def test_csv_head_yaw_turns_the_head_bone_as_a_videos_head_pose(blender, monkeypatch, tmp_path) -> None:
    """A take's HeadYaw keys the neck turned by that yaw about the armature's up axis (Sequence
    head-pose toggle on, the default), relative to the head's neutral when calibrated, on the Head
    bone when one is named, scaled by the Head strength; with the toggle off the neck stays."""
    from mathutils import Matrix
    from test_head_pose import angle_deg, keyed_turn

    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    head = add_ict_head()
    rig = head.parent
    scene = bpy.context.scene
    scene.render.fps = 30
    take = make_take(tmp_path / "plain.csv", count=30, fps=30.0)
    take.head[:, 0] = 0.3
    take.head[:5, 0] = 0.1  # the actor's rest, turned a little: frames 1-5
    write_take(tmp_path / "take.csv", take)
    settings = use_csv(tmp_path / "take.csv")
    assert settings.seq_head_pose
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    for frame, yaw in ((1, 0.1), (20, 0.3)):
        scene.frame_set(frame)
        assert angle_deg(keyed_turn(rig, "neck"), np.array(Matrix.Rotation(yaw, 3, "Z"))) < 1e-3, frame
    # Calibrated against the first five frames: the turn from the rest.
    settings.neutral_from, settings.neutral_first, settings.neutral_last = "FRAMES", 1, 5
    assert bpy.ops.fields.set_neutral() == {"FINISHED"}
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    scene.frame_set(20)
    assert angle_deg(keyed_turn(rig, "neck"), np.array(Matrix.Rotation(0.2, 3, "Z"))) < 1e-3
    head["fields_strength_head"] = 0.5
    head.update_tag()
    assert angle_deg(keyed_turn(rig, "neck"), np.array(Matrix.Rotation(0.1, 3, "Z"))) < 1e-3
    # Head bone: the root turns instead, the neck goes back to rest.
    head["fields_strength_head"] = 1.0
    settings.use_neutral, settings.head_bone = False, "root"
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    scene.frame_set(20)
    assert angle_deg(keyed_turn(rig, "root"), np.array(Matrix.Rotation(0.3, 3, "Z"))) < 1e-3
    assert angle_deg(keyed_turn(rig, "neck"), np.eye(3)) < 1e-4
    # The toggle off: a fresh head keys no head pose.
    settings.head_bone, settings.seq_head_pose = "", False
    other = add_ict_head()
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    assert HEAD_POSE_PROPERTY not in other
