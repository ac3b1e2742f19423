"""Any rig (issue 13): ARKit names in every common spelling, the two character systems that name
units their own way (CC4 Extended, Daz Genesis FACS), the mapping's presets and their damage, and a
mapping driving keys and bone axes through the planner. Pure: names are strings, a rig is a Target."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from inference.expression.encoder import Expression, FaceModelContract
from inference.head.face_model import load_face_model
from inference.head.ict import ICT_HEAD_FILE
from inference.perception.blendshapes import ARKIT_NAMES
from inference.retarget.mapping import Mapping, MappingError, Row, auto_mapping
from inference.retarget.names import CC4_EXTENDED, daz_core
from inference.retarget.plan import PARTS, Target, plan

SOURCE = FaceModelContract("ICT head", "ict_head.npz", "0" * 64, ())  # the encoder's head; these rigs are others
CC4_READ_AS_ARKIT = ("Eye_Blink_L", "Eye_Blink_R", "Eye_Squint_L", "Eye_Squint_R", "Eye_Wide_L", "Eye_Wide_R",
                     "Jaw_Forward", "Mouth_Close", "Mouth_Dimple_L", "Mouth_Dimple_R", "Mouth_Frown_L",
                     "Mouth_Frown_R", "Mouth_Press_L", "Mouth_Press_R", "Mouth_Shrug_Lower", "Mouth_Shrug_Upper",
                     "Mouth_Smile_L", "Mouth_Smile_R", "Mouth_Stretch_L", "Mouth_Stretch_R", "Nose_Sneer_L",
                     "Nose_Sneer_R")
# Keys a CC4 Extended head also has that are no ARKit unit (visemes, lashes, tongue, teeth).
CC4_OTHERS = ("V_Open", "V_Explosive", "Brow_Compress_L", "Eyelash_Upper_Up_L", "Tongue_Up", "Mouth_Blow_L")


def cc4_rig() -> list[str]:
    return [*CC4_READ_AS_ARKIT, *(key for keys in CC4_EXTENDED.values() for key in keys), *CC4_OTHERS]


def daz_name(unit: str) -> str:
    """How Daz Genesis 9 exports a unit's FACS shape: facs_bs_ + the name, halves as _div2."""
    name = unit[0].upper() + unit[1:]
    if name.startswith("EyeWide"):
        return f"Genesis9__facs_jnt_Eyes{name[3:]}"
    if name.startswith(("Mouth", "Nose", "Cheek")) and name != "CheekPuff":
        return f"facs_bs_{name}_div2"
    return f"facs_bs_{name}" if name != "CheekPuff" else "facs_ctrl_CheekPuff"


def test_the_ict_heads_own_names_map_every_unit_to_itself() -> None:
    names = load_face_model(ICT_HEAD_FILE).expression_names
    mapping = auto_mapping([*names, "eyeBlinkLeft", "eyeBlinkRight"])
    assert {(row.unit, row.target) for row in mapping.rows} == {(u, u) for u in ARKIT_NAMES}
    assert mapping.unmapped() == ()


@pytest.mark.parametrize("spell", [
    lambda u: u, lambda u: u[0].upper() + u[1:], lambda u: u.upper(),
    lambda u: u.replace("Left", "_L").replace("Right", "_R"), lambda u: u.replace("Left", ".L").replace("Right", ".R"),
    lambda u: "Face." + u, lambda u: "head:" + u.replace("Left", "_left").replace("Right", "_right")])
def test_common_spellings_map_all_52(spell) -> None:  # type: ignore[no-untyped-def]
    mapping = auto_mapping([spell(u) for u in ARKIT_NAMES])
    assert mapping.unmapped() == () and len(mapping.rows) == 52


def test_a_cc4_extended_rig_maps_all_but_its_bone_units() -> None:
    mapping = auto_mapping(cc4_rig())
    assert mapping.unmapped() == ("jawOpen", "tongueOut")  # bones on CC4 (CC_Base_JawRoot, CC_Base_Tongue01)
    by_unit: dict[str, list[str]] = {}
    for row in mapping.rows:
        by_unit.setdefault(row.unit, []).append(row.target)
    assert by_unit["browInnerUp"] == ["Brow_Raise_Inner_L", "Brow_Raise_Inner_R"]
    assert by_unit["eyeLookInLeft"] == ["Eye_L_Look_R"] and by_unit["mouthSmileRight"] == ["Mouth_Smile_R"]
    assert len(by_unit["mouthFunnel"]) == 4
    assert not {row.target for row in mapping.rows} & set(CC4_OTHERS)


def test_a_daz_genesis_rig_maps_all_52() -> None:
    names = [daz_name(u) for u in ARKIT_NAMES] + ["facs_bs_EyelidOpenUpperLeft", "facs_ctrl_vAA", "Genesis9"]
    mapping = auto_mapping(names)
    assert mapping.unmapped() == ()
    assert dict((r.unit, r.target) for r in mapping.rows)["mouthSmileLeft"] == "facs_bs_MouthSmileLeft_div2"
    assert daz_core("facs_bs_Foo") == "Foo" and daz_core("jawOpen") is None
    assert auto_mapping(["facs_bs_Foo", "Brow_Drop", "mouthFunnelX"]).rows == ()  # never guessed


def test_presets_round_trip_and_damage_names_the_file() -> None:
    mapping = Mapping((Row("jawOpen", "jaw", "bone", 0, 0.4), Row("mouthSmileLeft", "Smile_L", gain=1.5)))
    assert Mapping.from_json(mapping.to_json(), "'p.json'") == mapping
    good = json.loads(mapping.to_json())
    for text, problem in [("{", "Expecting"), ("[]", "not a FIELDS mapping preset"),
                          (json.dumps({**good, "format": 2}), "not a FIELDS"),
                          (json.dumps({**good, "rows": [{"unit": "smile", "target": "a"}]}), "not an ARKit unit"),
                          (json.dumps({**good, "rows": [{"unit": "jawOpen", "target": "a", "axis": "W"}]}),
                           "bone axis"),
                          (json.dumps({**good, "rows": [{"unit": "jawOpen", "target": "a", "gain": "nan"}]}),
                           "finite gain"),
                          (json.dumps({**good, "rows": [{"unit": "jawOpen"}]}), "'target'")]:
        with pytest.raises(MappingError, match=r"^The mapping preset '/u/p\.json' cannot be read: .*" + problem):
            Mapping.from_json(text, "'/u/p.json'")


def test_mapping_drives_keys_and_bone_axes_and_names_missing_targets() -> None:
    mapping = Mapping((Row("jawOpen", "jaw", "bone", 0, 0.5), Row("jawLeft", "jaw", "bone", 2, -0.2),
                       Row("mouthSmileLeft", "Smile", gain=0.5), Row("mouthSmileRight", "Smile", gain=0.5),
                       Row("eyeBlinkLeft", "Blink_L")))
    units = dict.fromkeys(ARKIT_NAMES, 0.0) | {"jawOpen": 0.6, "jawLeft": 0.5, "mouthSmileLeft": 0.8,
                                                "mouthSmileRight": 0.4, "eyeBlinkLeft": 1.0}
    expression = Expression(expression={}, jaw=np.zeros(3), eyelids=np.zeros(2), gaze=np.zeros((2, 3)),
                            emotion="", emotion_probs={}, intensity=0.5, units=units)
    rig = Target("Rig", ("Smile", "Blink_L", "Other"), bones=("jaw",), mapping=mapping)
    result = plan(expression, SOURCE, rig, PARTS)
    assert result.route == "mapping" and result.weights == pytest.approx({"Smile": 0.6, "Blink_L": 1.0})
    assert result.rotations["jaw"] == pytest.approx([0.3, 0.0, -0.1])
    only_mouth = plan(expression, SOURCE, rig, {"expression"})
    assert set(only_mouth.weights) == {"Smile"} and only_mouth.rotations == {}
    with pytest.raises(MappingError, match="shape key 'Blink_L' \\(from eyeBlinkLeft\\), which 'Rig' does not have"):
        plan(expression, SOURCE, Target("Rig", ("Smile",), bones=("jaw",), mapping=mapping), PARTS)
    with pytest.raises(MappingError, match="bone 'jaw'"):
        plan(expression, SOURCE, Target("Rig", ("Smile", "Blink_L"), mapping=mapping), PARTS)


def test_cc4_rig_is_driven_by_name_without_editing() -> None:
    units = dict.fromkeys(ARKIT_NAMES, 0.0) | {"browInnerUp": 0.7, "mouthSmileLeft": 0.9}
    expression = Expression(expression={}, jaw=np.zeros(3), eyelids=np.zeros(2), gaze=np.zeros((2, 3)),
                            emotion="", emotion_probs={}, intensity=0.5, units=units)
    result = plan(expression, SOURCE, Target("CC4", tuple(cc4_rig())), PARTS)
    assert result.route == "arkit"
    assert result.weights["Brow_Raise_Inner_L"] == result.weights["Brow_Raise_Inner_R"] == pytest.approx(0.7)
    assert result.weights["Mouth_Smile_L"] == pytest.approx(0.9) and "V_Open" not in result.weights
    assert not math.isnan(sum(result.weights.values()))
