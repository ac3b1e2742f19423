"""Artist controls in real Blender (issue 13): the neutral reference set from a photo and from a
sequence's frames, stored on the head and saved with the .blend, calibrating Reconstruct and Apply
to Sequence; per-frame confidence keyed and turned into gaps; and the failures (a neutral range
outside the clip, a damaged stored neutral) leaving the scene unchanged. Real ONNX Runtime, real
photos and generated clips; nothing is mocked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sequence_fixtures import blank_frame, moving_frame, write_video
from test_reconstruct import ASTRONAUT, evaluate, keyed, make_arkit_rig, reconstruct, snapshot

from inference.expression.calibration import NEUTRAL_PROPERTY
from inference.head.ict import ICT_HEAD_FILE
from inference.perception.blendshapes import ARKIT_NAMES
from inference.retarget.plan import weight_property
from inference.sequence.plan import CONFIDENCE_PROPERTY

bpy = pytest.importorskip("bpy")


def add_ict_head() -> Any:
    assert bpy.ops.fields.add_head(filepath=str(ICT_HEAD_FILE), identity_keys=False) == {"FINISHED"}
    return bpy.context.active_object


def unit_weights(head: Any) -> dict[str, float]:
    return {u: float(head[weight_property(u)]) for u in ARKIT_NAMES if weight_property(u) in head}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = [moving_frame(i, 14) for i in range(14)]
    frames[6:8] = [blank_frame()] * 2
    return write_video(tmp_path_factory.mktemp("artist") / "take.avi", frames)


def test_neutral_from_the_photo_calibrates_reconstruct_and_is_saved(blender, tmp_path: Path) -> None:
    head = add_ict_head()
    assert reconstruct() == {"FINISHED"}
    plain = unit_weights(head)
    assert max(plain.values()) > 0.3  # the astronaut smiles
    settings = bpy.context.scene.fields
    settings.neutral_from = "PHOTO"
    assert bpy.ops.fields.set_neutral() == {"FINISHED"}
    stored = json.loads(head[NEUTRAL_PROPERTY])
    assert stored["source"] == f"'{ASTRONAUT}'" and set(stored["units"]) == set(ARKIT_NAMES)
    assert reconstruct() == {"FINISHED"}
    calibrated = unit_weights(head)
    assert max(calibrated.values()) <= 0.05  # the same face, as its own rest, reads as rest
    evaluate()
    assert max(block.value for block in head.data.shape_keys.key_blocks[1:]) <= 0.05
    path, name = tmp_path / "calibrated.blend", head.name
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    head = bpy.data.objects[name]
    assert json.loads(head[NEUTRAL_PROPERTY]) == stored
    bpy.context.scene.fields.use_neutral = False
    bpy.context.view_layer.objects.active = head
    assert reconstruct() == {"FINISHED"}
    assert unit_weights(head) == pytest.approx(plain, abs=1e-5)
    assert bpy.ops.fields.clear_neutral() == {"FINISHED"}
    assert NEUTRAL_PROPERTY not in head


def test_neutral_from_frames_calibrates_the_sequence_and_confidence_is_keyed(blender, clip: Path) -> None:
    head = add_ict_head()
    settings = bpy.context.scene.fields
    settings.seq_source, settings.seq_filepath = "VIDEO", str(clip)
    settings.neutral_from, settings.neutral_first, settings.neutral_last = "FRAMES", 1, 4
    assert bpy.ops.fields.set_neutral() == {"FINISHED"}
    assert json.loads(head[NEUTRAL_PROPERTY])["source"] == f"'{clip}' frames 1-4"
    settings.seq_smooth = False
    bpy.context.scene.render.fps = 25  # the clip's rate: one key per scene frame
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    keys = keyed(head)
    smile = np.array([v for _, v in keys[f'["{weight_property("mouthSmileLeft")}"]']])
    assert len(smile) == 14 and smile[:4].max() <= 0.05
    confidence = keys[f'["{CONFIDENCE_PROPERTY}"]']
    assert [f for f, _ in confidence] == [float(f) for f in range(1, 15) if f not in (7, 8)]  # no face, no key
    assert all(0.5 <= v <= 1.0 for _, v in confidence)
    # A threshold above every score but the best turns those frames into gaps, filled across.
    scores = {int(f): v for f, v in confidence}
    settings.seq_min_confidence = float(np.nextafter(np.float32(max(scores.values())), np.float32(0)))
    settings.use_neutral = False
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    strong = [f for f, v in scores.items() if v >= settings.seq_min_confidence]
    assert strong and len(strong) < 12
    again = np.array([v for _, v in keyed(head)[f'["{weight_property("jawOpen")}"]']])
    held = again[np.array(strong) - 1]
    assert again.min() >= held.min() - 1e-6 and again.max() <= held.max() + 1e-6  # only the strong frames' values


def test_bad_neutral_inputs_leave_the_scene_unchanged(blender, clip: Path, tmp_path: Path) -> None:
    head = add_ict_head()
    settings = bpy.context.scene.fields
    settings.seq_source, settings.seq_filepath = "VIDEO", str(clip)
    settings.neutral_from, settings.neutral_first, settings.neutral_last = "FRAMES", 40, 45
    before = snapshot(head)
    with pytest.raises(RuntimeError, match=r"take\.avi") as caught:
        bpy.ops.fields.set_neutral()
    assert str(caught.value).count("\n") <= 1 and snapshot(head) == before
    settings.neutral_first, settings.neutral_last = 5, 3
    with pytest.raises(RuntimeError, match="neutral frames 5-3 are empty"):
        bpy.ops.fields.set_neutral()
    settings.neutral_from = "PHOTO"
    settings.filepath = str(tmp_path / "missing.jpg")
    with pytest.raises(RuntimeError, match="missing.jpg"):
        bpy.ops.fields.set_neutral()
    assert snapshot(head) == before
    head[NEUTRAL_PROPERTY] = '{"format": 1, "units": {"jawOpen": 0.2}}'
    before = snapshot(head)
    with pytest.raises(RuntimeError, match=f"The neutral reference stored on '{head.name}' is damaged"):
        reconstruct(filepath=str(ASTRONAUT))
    with pytest.raises(RuntimeError, match="is damaged"):
        bpy.ops.fields.apply_sequence()
    assert snapshot(head) == before


def state(obj: Any) -> tuple:
    """`snapshot` with the mapping rows as plain values (an ID-property group compares by identity)."""
    shot, keys = snapshot(obj)
    shot["props"].pop("fields_mapping", None)
    rows = [(r.unit, r.kind, r.target, r.axis, r.gain) for r in getattr(obj, "fields_mapping", [])]
    return shot, keys, rows


def test_cc4_and_daz_rigs_are_driven_by_name(blender) -> None:
    from test_mapping import cc4_rig, daz_name

    cc4 = make_arkit_rig(cc4_rig())
    assert reconstruct() == {"FINISHED"} and bpy.context.scene.fields.result_route == "arkit"
    evaluate()
    keys = cc4.data.shape_keys.key_blocks
    assert keys["Mouth_Smile_L"].value > 0.2 and keys["V_Open"].value == 0.0
    assert keys["Brow_Raise_Inner_L"].value == keys["Brow_Raise_Inner_R"].value
    daz = make_arkit_rig([daz_name(u) for u in ARKIT_NAMES])
    bpy.context.scene.fields.target = daz
    assert reconstruct() == {"FINISHED"}
    evaluate()
    assert daz.data.shape_keys.key_blocks["facs_bs_MouthSmileLeft_div2"].value > 0.2


def test_mapping_editor_and_presets(blender) -> None:
    import importlib

    from conftest import MODULE

    rig = make_arkit_rig(["Smile", "Blink_L", "jawOpen"])
    assert bpy.ops.fields.mapping_fill() == {"FINISHED"}
    assert [(r.unit, r.target) for r in rig.fields_mapping] == [("jawOpen", "jawOpen")]
    assert bpy.ops.fields.mapping_add() == {"FINISHED"}
    row = rig.fields_mapping[1]
    row.unit, row.target, row.gain = "mouthSmileLeft", "Smile", 0.5
    assert reconstruct() == {"FINISHED"} and bpy.context.scene.fields.result_route == "mapping"
    evaluate()
    smile = rig.data.shape_keys.key_blocks["Smile"].value
    assert 0.1 < smile < 0.5 and rig.data.shape_keys.key_blocks["Blink_L"].value == 0.0
    artist = importlib.import_module(MODULE + ".fields_addon.artist")
    assert "mouthSmileRight" in artist.unmapped_text(rig) and "mouthSmileLeft" not in artist.unmapped_text(rig)
    assert bpy.ops.fields.mapping_save_preset(name="Cube rig") == {"FINISHED"}
    saved = artist.presets_folder() / "Cube rig.json"
    assert json.loads(saved.read_text())["rows"][1] == {"unit": "mouthSmileLeft", "kind": "key", "target": "Smile",
                                                      "axis": "X", "gain": 0.5}
    rig.fields_mapping.clear()
    assert bpy.ops.fields.mapping_load_preset(preset="Cube rig") == {"FINISHED"}
    assert [(r.unit, r.target, r.gain) for r in rig.fields_mapping] == [("jawOpen", "jawOpen", 1.0),
                                                                         ("mouthSmileLeft", "Smile", 0.5)]
    # A corrupt preset, and one naming a key this rig lacks: one sentence each, nothing changed.
    (artist.presets_folder() / "broken.json").write_text('{"format": 1, "rows": [{"unit": "jawOpen"')
    other = json.loads(saved.read_text())
    other["rows"][1]["target"] = "Grin"
    (artist.presets_folder() / "other rig.json").write_text(json.dumps(other))
    before = state(rig)
    with pytest.raises(RuntimeError, match=r"The mapping preset '.*broken\.json' cannot be read"):
        bpy.ops.fields.mapping_load_preset(preset="broken")
    with pytest.raises(RuntimeError, match="shape key 'Grin' \\(from mouthSmileLeft\\), which 'Cube' does not have"):
        bpy.ops.fields.mapping_load_preset(preset="other rig")
    assert state(rig) == before
    # A row edited to a key the rig lacks: Reconstruct refuses, the scene stays as it was.
    rig.fields_mapping[1].target = "Grin"
    before = state(rig)
    with pytest.raises(RuntimeError, match="shape key 'Grin'"):
        reconstruct()
    assert state(rig) == before
