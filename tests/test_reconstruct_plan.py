"""The bpy-free part of Reconstruct (issue 6): face choice, the driver expressions for bones, and
which route a target takes. The expressions are evaluated with Python's math (Blender's simple
expressions use the same functions) and compared with the rig's own quaternion maths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference.expression.encoder import Expression, FaceModelContract
from inference.head.forward import rodrigues
from inference.head.rig import BONE_AXES, flame_pose_to_bone_quaternions
from inference.retarget.plan import (
    ReconstructError,
    Target,
    bone_axis_angle,
    bone_quaternion_expressions,
    choose_face,
    plan,
    weight_property,
)


@pytest.mark.parametrize("joint", ["jaw", "eye.L"])
@pytest.mark.parametrize("intensity", [0.0, 0.3, 1.0, 2.0])
def test_bone_expressions_are_the_scaled_rotation(joint: str, intensity: float) -> None:
    rng = np.random.default_rng(1)
    flame = rng.normal(0, 0.3, 3)
    x, y, z = bone_axis_angle(joint, flame)
    namespace = {"x": x, "y": y, "z": z, "i": intensity, **{f: getattr(math, f) for f in ("sin", "cos", "sqrt")},
                 "max": max}
    got = np.array([eval(e, {"__builtins__": {}}, namespace) for e in bone_quaternion_expressions()])  # noqa: S307
    rotations = np.stack([np.eye(3)] * 5)
    rotations[{"jaw": 2, "eye.L": 3}[joint]] = rodrigues(flame * intensity)
    expected = flame_pose_to_bone_quaternions(rotations)[joint]
    assert np.allclose(got if got[0] >= 0 else -got, expected, atol=1e-12)
    assert np.allclose(BONE_AXES[joint] @ [x, y, z], flame)


def test_choose_face() -> None:
    assert choose_face(1, 0, "'a.jpg'") == 0
    assert choose_face(3, 2, "'a.jpg'") == 1
    for faces, number, message in ((0, 0, "No face was found in 'a.jpg'."), (2, 0, "holds 2 faces"),
                                    (2, 3, "there is no face 3")):
        with pytest.raises(ReconstructError, match=message):
            choose_face(faces, number, "'a.jpg'")


def _expression(names: list[str]) -> Expression:
    return Expression(expression={n: 0.1 * (i + 1) for i, n in enumerate(names)}, jaw=np.array([0.2, 0, 0]),
                      eyelids=np.array([0.3, 0.4]), gaze=np.zeros((2, 3)), emotion="happiness",
                      emotion_probs={"happiness": 1.0}, intensity=0.5)


MODEL = FaceModelContract(name="m", file="m.npz", sha256="abc", expression_names=("a", "b"))


def test_routes() -> None:
    head = Target("head", ("a", "b", "L", "R"), ("jaw", "eye.L", "eye.R"), "m", "abc", ("L", "R"))
    direct = plan(_expression(["a", "b"]), MODEL, head, {"expression", "jaw", "eyelids"})
    assert direct.route == "direct" and direct.weights == pytest.approx({"a": 0.1, "b": 0.2, "L": 0.3, "R": 0.4})
    assert set(direct.rotations) == {"jaw"}
    other = Target("flame", ("exp_000",), ("jaw",), "FLAME", "def")
    with pytest.raises(ReconstructError, match="needs retargeting"):
        plan(_expression(["a", "b"]), MODEL, other, {"expression"})
    with pytest.raises(ReconstructError, match="has no shape keys"):
        plan(_expression(["a", "b"]), MODEL, Target("cube", ()), {"expression"})
    with pytest.raises(ReconstructError, match="Nothing to apply"):
        plan(_expression(["a", "b"]), MODEL, head, set())
    assert weight_property("x" * 80) == ("fields_w_" + "x" * 80)[:63]


def test_units_drive_every_head() -> None:
    """One output for every head (issue 12): an ARKit rig takes the units by name; a FIELDS head
    whose file carries an ARKit table (the shipped ICT head) takes them through that table, which
    for the ICT head is the identity on its keys, with the jaw and eye bones following the units."""
    from pathlib import Path

    from inference.expression.encoder import head_tables
    from inference.head.default_head import JAW
    from inference.perception.blendshapes import ARKIT_NAMES

    units = dict.fromkeys(ARKIT_NAMES, 0.0)
    units.update(jawOpen=0.5, mouthSmileLeft=0.7, eyeBlinkLeft=0.4, eyeLookUpLeft=0.3)
    expression = Expression(expression={"a": 0.0, "b": 0.0}, jaw=np.zeros(3), eyelids=np.zeros(2),
                            gaze=np.zeros((2, 3)), emotion="happiness", emotion_probs={"happiness": 1.0},
                            intensity=0.5, units=units)
    rig = Target("rig", ("jawOpen", "mouthSmileLeft", "eyeBlinkLeft", "unrelated"))
    by_name = plan(expression, MODEL, rig, {"expression", "jaw", "eyelids"})
    assert by_name.route == "arkit" and by_name.weights == pytest.approx(
        {"jawOpen": 0.5, "mouthSmileLeft": 0.7, "eyeBlinkLeft": 0.4})

    ict = Path(__file__).resolve().parent.parent / "inference" / "models" / "ict_head.npz"
    names, mapping = head_tables(ict)
    head = Target("ICT", (*names, "eyelid_L", "eyelid_R"), ("jaw", "eye.L", "eye.R"), "ICT head", "sha",
                  ("eyelid_L", "eyelid_R"))
    direct = plan(expression, MODEL, head, {"expression", "jaw", "eyelids", "gaze"},
                  head_tables=lambda target: (names, mapping) if target.face_model_sha256 == "sha" else None)
    assert direct.route == "direct"
    assert direct.weights["mouthSmileLeft"] == pytest.approx(0.7) and direct.weights["jawOpen"] == pytest.approx(0.5)
    assert direct.weights["eyelid_L"] == pytest.approx(0.4) and direct.weights["eyelid_R"] == 0.0
    np.testing.assert_allclose(direct.rotations["jaw"],
                               bone_axis_angle("jaw", 0.5 * mapping.pose[ARKIT_NAMES.index("jawOpen"), JAW]))
    assert np.linalg.norm(direct.rotations["eye.L"]) > 0.1 and np.linalg.norm(direct.rotations["eye.R"]) == 0.0
