"""Head pose conversion and region tables without Blender (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest

from inference.expression.calibration import Neutral
from inference.head.forward import axis_angle
from inference.head.forward import rodrigues as rotation_matrix
from inference.head.rig import BONE_AXES, FLAME_TO_BLENDER
from inference.perception.blendshapes import ARKIT_NAMES
from inference.retarget.head_pose import bone_rotation, camera_pose, choose_bone, relative
from inference.retarget.plan import ReconstructError, bone_axis_angle
from inference.retarget.regions import REGIONS, unit_region


def test_rotation_round_trip_and_relative_turn() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.normal(size=3) * 0.5
        assert np.allclose(axis_angle(rotation_matrix(a)), a, atol=1e-9)
    rest, turn = np.array([0.05, 0.01, 0.0]), np.array([0.0, 0.35, 0.0])
    pose = axis_angle(rotation_matrix(turn) @ rotation_matrix(rest))
    assert np.allclose(relative(pose, rest), turn, atol=1e-9)
    assert np.allclose(relative(pose, None), pose)


def test_bone_rotation_matches_flame_bones_and_turns_any_rest() -> None:
    a = np.array([0.1, -0.3, 0.2])
    for bone in ("root", "neck", "jaw"):  # a FIELDS bone's rest is C M: B^T C a = M^T a
        assert np.allclose(bone_rotation(a, FLAME_TO_BLENDER @ BONE_AXES[bone]), bone_axis_angle(bone, a))
    rest = rotation_matrix(np.array([0.4, 1.0, -0.2]))  # any bone: B Rb B^T is the armature-space turn
    local = rotation_matrix(bone_rotation(a, rest))
    assert np.allclose(rest @ local @ rest.T, FLAME_TO_BLENDER @ rotation_matrix(a) @ FLAME_TO_BLENDER.T)


def test_camera_pose_inverts_bone_rotation() -> None:
    rng = np.random.default_rng(3)
    rest = rotation_matrix(np.array([0.4, 1.0, -0.2])) * 0.01  # scaled, as an armature's bones may be
    poses = rng.normal(size=(5, 3)) * 0.4
    local = np.array([bone_rotation(p, rest) for p in poses])
    assert np.allclose(camera_pose(local, rest), poses, atol=1e-12)


def test_live_link_head_angles_turn_the_neck_by_that_yaw_pitch_roll() -> None:
    """Issue 14 meets issue 13: a take's HeadYaw/Pitch/Roll, made a `head_pose` (`axis_angles`),
    turns a FIELDS neck in Blender's axes: yaw about the armature's up (+Z) towards the image's
    right (+X, the face's own left), pitch about +X tilting the face down, roll about the view axis."""
    from inference.sequence.livelink import axis_angles, yaw_pitch_roll

    neck = FLAME_TO_BLENDER @ BONE_AXES["neck"]
    for angles, armature_axis in (((0.3, 0, 0), (0, 0, 1)), ((0, 0.2, 0), (1, 0, 0)), ((0, 0, 0.25), (0, -1, 0))):
        pose = axis_angles(np.array(angles))
        turn = neck @ rotation_matrix(bone_rotation(pose, neck)) @ neck.T
        assert np.allclose(turn, rotation_matrix(np.array(armature_axis) * sum(angles)), atol=1e-12), angles
    forward = rotation_matrix(bone_rotation(axis_angles(np.array([0.3, 0.0, 0.0])), neck))
    assert (neck @ forward @ neck.T @ np.array([0.0, -1.0, 0.0]))[0] > 0.25  # the face turns towards +X
    angles = np.random.default_rng(4).uniform(-1.2, 1.2, (20, 3))
    assert np.allclose(yaw_pitch_roll(axis_angles(angles)), angles, atol=1e-12)


def test_choose_bone() -> None:
    assert choose_bone("rig", ("root", "neck", "jaw"), "") == "neck"
    assert choose_bone("rig", ("Hips", "Head"), "") == "Head"
    assert choose_bone("rig", ("Hips",), "") == ""
    assert choose_bone("rig", ("root", "neck"), "root") == "root"
    with pytest.raises(ReconstructError, match="no bone 'spine'"):
        choose_bone("rig", ("root",), "spine")
    with pytest.raises(ReconstructError, match="no armature"):
        choose_bone("rig", (), "neck")


def test_regions_cover_every_unit_and_neutral_keeps_its_head_pose() -> None:
    assert {unit_region(u) for u in ARKIT_NAMES} == set(REGIONS) - {"head"}
    assert unit_region("eyeLookInLeft") == "gaze" and unit_region("eyeBlinkRight") == "eyes"
    assert unit_region("jawOpen") == "jaw" and unit_region("cheekPuff") == "mouth" and unit_region("exp001") == ""
    neutral = Neutral.from_rows(np.zeros((3, 52)), np.full((3, 2), 0.5), np.zeros(3), ("a", "b"),
                                head_pose=np.array([[0.1, 0, 0], [0.2, 0, 0], [np.nan] * 3]))
    assert np.allclose(neutral.head_pose, [0.15, 0, 0])
    again = Neutral.from_json(neutral.to_json())
    assert np.allclose(again.head_pose, neutral.head_pose)
    assert np.allclose(again.calibrate_head_pose(np.array([[0.15, 0, 0]])), 0, atol=1e-9)
    old = Neutral.from_json(neutral.to_json().replace('"head_pose"', '"unused"'))
    assert old.head_pose is None
