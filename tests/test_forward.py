"""The numpy forward model against an independent formulation (smplx's batch_rigid_transform with
relative joints), and its basic invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from inference.head.face_model import FaceModel, load_face_model
from inference.head.forward import forward, pose_features, rodrigues


@pytest.fixture(scope="module")
def model(flame_pickle: Path) -> FaceModel:
    return load_face_model(flame_pickle)


def reference_lbs(model: FaceModel, shape, expression, pose, eyelids):  # type: ignore[no-untyped-def]
    """smplx.lbs written out in numpy: relative joints, chained 4x4s, then rel_transforms."""
    v_shaped = model.v_template + np.einsum("vdk,k->vd", model.shapedirs, shape) \
        + np.einsum("vdk,k->vd", model.exprdirs, expression)
    joints = model.j_regressor @ v_shaped
    rot = Rotation.from_rotvec(pose).as_matrix()
    pose_feature = (rot[1:] - np.eye(3)).reshape(-1)
    v_posed = v_shaped + (pose_feature @ model.posedirs.reshape(-1, 36).T).reshape(-1, 3)
    v_posed += eyelids[0] * model.eyelids[0] + eyelids[1] * model.eyelids[1]
    rel = joints.copy()
    rel[1:] -= joints[model.parents[1:]]
    mats = np.zeros((5, 4, 4))
    mats[:, :3, :3], mats[:, :3, 3], mats[:, 3, 3] = rot, rel, 1
    chain = [mats[0]]
    for k in range(1, 5):
        chain.append(chain[model.parents[k]] @ mats[k])
    transforms = np.stack(chain)
    joints_h = np.concatenate([joints, np.zeros((5, 1))], axis=1)
    rel_transforms = transforms.copy()
    rel_transforms[:, :, 3] -= np.einsum("kij,kj->ki", transforms, joints_h)
    per_vertex = np.einsum("vk,kij->vij", model.weights, rel_transforms)
    homo = np.concatenate([v_posed, np.ones((len(v_posed), 1))], axis=1)
    return np.einsum("vij,vj->vi", per_vertex, homo)[:, :3]


@pytest.mark.parametrize("seed", range(3))
def test_matches_independent_lbs(model: FaceModel, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape, expression = rng.normal(0, 1, 300), rng.normal(0, 1, 100)
    pose, eyelids = rng.normal(0, 0.4, (5, 3)), rng.uniform(0, 1, 2)
    out = forward(model, shape, expression, pose, eyelids)
    np.testing.assert_allclose(out.vertices, reference_lbs(model, shape, expression, pose, eyelids), atol=1e-12)


def test_zero_parameters_give_the_template(model: FaceModel) -> None:
    out = forward(model)
    np.testing.assert_allclose(out.vertices, model.v_template, atol=1e-15)
    np.testing.assert_allclose(out.joints, model.rest_joints(), atol=1e-15)


def test_global_rotation_turns_about_the_root_joint(model: FaceModel) -> None:
    pose = np.zeros((5, 3))
    pose[0] = [0.1, 0.7, -0.2]
    out = forward(model, pose=pose, translation=np.array([0.01, 0.02, 0.03]))
    root = model.rest_joints()[0]
    expected = (model.v_template - root) @ rodrigues(pose[0]).T + root + [0.01, 0.02, 0.03]
    np.testing.assert_allclose(out.vertices, expected, atol=1e-12)


def test_rodrigues_and_pose_features() -> None:
    vectors = np.random.default_rng(0).normal(0, 1, (20, 3))
    np.testing.assert_allclose(rodrigues(vectors), Rotation.from_rotvec(vectors).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rodrigues(np.zeros(3)), np.eye(3))
    assert pose_features(np.stack([np.eye(3)] * 5)).shape == (36,)


def test_eyelids_are_clamped_to_unit_range(model: FaceModel) -> None:
    high = forward(model, eyelids=np.array([3.0, -1.0])).vertices
    np.testing.assert_allclose(high, forward(model, eyelids=np.array([1.0, 0.0])).vertices)
