"""The rig maths behind the Blender head, checked without Blender: the driver expressions are
simple Python expressions, so evaluating them here proves what Blender will compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from inference.head.face_model import JOINT_NAMES, load_face_model
from inference.head.forward import pose_features, rodrigues
from inference.head.rig import (
    BONE_AXES,
    FLAME_TO_BLENDER,
    MAX_EXPRESSION,
    bone_specs,
    flame_pose_to_bone_quaternions,
    joint_offset_basis,
    linear_sum_chunks,
    pivot_location_expression,
    pose_features_from_quaternions,
    quaternion_to_matrix,
)


def _eval(expression: str, **variables: float) -> float:
    return eval(expression, {"__builtins__": {}}, variables)  # noqa: S307


def test_axes_are_proper_rotations() -> None:
    for axes in [FLAME_TO_BLENDER, *BONE_AXES.values()]:
        np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-15)
        assert np.isclose(np.linalg.det(axes), 1.0)
    # FLAME's up (+y) is Blender's up (+Z); FLAME's forward (+z, out of the face) is Blender's -Y.
    np.testing.assert_array_equal(FLAME_TO_BLENDER @ [0, 1, 0], [0, 0, 1])
    np.testing.assert_array_equal(FLAME_TO_BLENDER @ [0, 0, 1], [0, -1, 0])


def test_pose_feature_drivers_equal_flame_pose_features() -> None:
    rng = np.random.default_rng(0)
    pose = rng.normal(0, 0.8, (5, 3))
    rotations = rodrigues(pose)
    quaternions = flame_pose_to_bone_quaternions(rotations)
    # Blender normalises quaternions (keyframes interpolate them un-normalised): scale them.
    scaled = {joint: q * rng.uniform(0.5, 2.0) for joint, q in quaternions.items()}
    np.testing.assert_allclose(pose_features_from_quaternions(scaled), pose_features(rotations), atol=1e-12)


def test_bone_quaternions_are_flame_rotations_in_bone_axes() -> None:
    rotations = Rotation.random(5, random_state=1).as_matrix()
    for k, (joint, quaternion) in enumerate(flame_pose_to_bone_quaternions(rotations).items()):
        axes = BONE_AXES[joint]
        np.testing.assert_allclose(axes @ quaternion_to_matrix(quaternion) @ axes.T, rotations[k], atol=1e-12)
        assert JOINT_NAMES[k] == joint


def test_pivot_location_is_i_minus_r_times_offset() -> None:
    rng = np.random.default_rng(2)
    q = rng.normal(size=4) * 1.7
    d = rng.normal(size=3)
    expected = (np.eye(3) - quaternion_to_matrix(q)) @ d
    got = [_eval(pivot_location_expression(a), w=q[0], x=q[1], y=q[2], z=q[3], d0=d[0], d1=d[1], d2=d[2])
           for a in range(3)]
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_linear_sums_fit_blender_drivers() -> None:
    rng = np.random.default_rng(3)
    coefficients = rng.normal(0, 1e-3, 400)
    coefficients[::7] = 0.0
    values = rng.normal(size=400)
    chunks = linear_sum_chunks(coefficients)
    assert len(chunks) > 1
    total = 0.0
    for expression, indices in chunks:
        assert len(expression) <= MAX_EXPRESSION
        total += _eval(expression, **{f"v{j}": values[i] for j, i in enumerate(indices)})
    assert sum(len(indices) for _, indices in chunks) == np.count_nonzero(coefficients)
    np.testing.assert_allclose(total, coefficients @ values, rtol=1e-7)


def test_joint_offsets_are_the_regressed_joint_motion(flame_pickle: Path) -> None:
    model = load_face_model(flame_pickle)
    names, basis = joint_offset_basis(model, include_identity=True)
    assert names[:1] == ["shape_000"] and names[-1] == "exp_099" and basis.shape == (400, 15)
    rng = np.random.default_rng(4)
    shape, expression = rng.normal(size=300), rng.normal(size=100)
    moved = model.j_regressor @ (model.v_template + model.shapedirs @ shape + model.exprdirs @ expression)
    offsets = (np.concatenate([shape, expression]) @ basis).reshape(5, 3)
    for k, joint in enumerate(JOINT_NAMES):
        np.testing.assert_allclose(BONE_AXES[joint] @ offsets[k], moved[k] - model.rest_joints()[k], atol=1e-12)


def test_bones_sit_on_the_rest_joints(flame_pickle: Path) -> None:
    model = load_face_model(flame_pickle)
    specs = {spec.name: spec for spec in bone_specs(model)}
    assert set(specs) == set(JOINT_NAMES) | {f"MCH-{j}" for j in JOINT_NAMES}
    for k, joint in enumerate(JOINT_NAMES):
        np.testing.assert_allclose(specs[joint].head, FLAME_TO_BLENDER @ model.rest_joints()[k])
        assert specs[joint].parent == f"MCH-{joint}" and specs[joint].deform
        assert not specs[f"MCH-{joint}"].deform
    assert specs["MCH-jaw"].parent == "neck" and specs["MCH-root"].parent is None


@pytest.mark.parametrize("joint", ["jaw", "eye.L"])
def test_forward_bones_point_out_of_the_face(joint: str) -> None:
    along = FLAME_TO_BLENDER @ BONE_AXES[joint][:, 1]
    np.testing.assert_array_equal(along, [0, -1, 0])
