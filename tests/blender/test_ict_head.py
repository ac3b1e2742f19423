"""Blender tier for the ICT head (issue 11): "Add Head" on `ict_head.npz` gives a mesh with UVs, one
material and one vertex group per part, no useless pose-corrective keys, and an evaluated mesh equal
to the numpy forward model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from test_head import evaluated_flame_vertices

from inference.head.default_head import arkit_mapping
from inference.head.face_model import JOINT_NAMES, face_uvs, load_face_model
from inference.head.forward import forward, rodrigues
from inference.head.rig import flame_pose_to_bone_quaternions
from inference.perception.blendshapes import ARKIT_NAMES

bpy = pytest.importorskip("bpy")

ICT_HEAD = Path(__file__).resolve().parents[2] / "inference" / "models" / "ict_head.npz"
EMBEDDING = ICT_HEAD.with_name("ict_head_mediapipe_embedding.npz")


@pytest.fixture(scope="module")
def ict():  # type: ignore[no-untyped-def]
    model = load_face_model(ICT_HEAD)
    return model, arkit_mapping(model)


def test_ict_head_has_uvs_parts_and_no_empty_correctives(blender, ict) -> None:
    model, _ = ict
    assert bpy.ops.fields.add_head(filepath=str(ICT_HEAD)) == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    mesh = obj.data
    names = list(model.extras["part_names"])
    assert [m.name for m in mesh.materials] == names
    index = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("material_index", index)
    parts = model.extras["face_parts"]
    # Every triangle has its part's material, but the eyes' front wears the iris (ICT has no iris).
    iris, eyes_part = names.index("iris"), names.index("eyes")
    np.testing.assert_array_equal(index[parts != eyes_part], parts[parts != eyes_part])
    front = index[parts == eyes_part] == iris
    assert set(np.unique(index[parts == eyes_part])) == {eyes_part, iris} and 0.05 < front.mean() < 0.5
    colours = {m.name: tuple(m.diffuse_color) for m in mesh.materials}
    assert colours["lashes"][3] == 0.0 and colours["eye_film"][3] == 0.0 and colours["skin"][3] == 1.0
    assert [g.name for g in obj.vertex_groups] == list(JOINT_NAMES) + names
    eyes = obj.vertex_groups["eyes"].index
    in_eyes = {v.index for v in mesh.vertices if any(g.group == eyes for g in v.groups)}
    assert in_eyes == set(np.unique(model.faces[model.extras["face_parts"] == names.index("eyes")]).tolist())
    uv = np.empty(len(mesh.loops) * 2, dtype=np.float32)
    mesh.uv_layers["UVMap"].data.foreach_get("uv", uv)
    np.testing.assert_allclose(uv.reshape(-1, 3, 2), face_uvs(model), atol=1e-6)
    keys = mesh.shape_keys.key_blocks.keys()
    assert not any(k.startswith("pose_") for k in keys)  # ICT has no pose correctives: no keys, no drivers
    assert set(keys) >= set(ARKIT_NAMES)


def test_ict_rig_matches_the_numpy_forward_model(blender, ict) -> None:
    model, mapping = ict
    assert bpy.ops.fields.add_head(filepath=str(ICT_HEAD), identity_keys=True) == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    rng = np.random.default_rng(11)
    weights = np.where(rng.uniform(size=len(ARKIT_NAMES)) < 0.5, rng.uniform(0, 1, len(ARKIT_NAMES)), 0.0)
    weights[ARKIT_NAMES.index("jawOpen")] = 0.8
    params = mapping.to_params(weights)
    shape = rng.normal(0, 1, model.n_shape)
    pose = params.pose.copy()
    pose[0], pose[1] = [0.05, 0.1, 0.0], [0.1, -0.2, 0.05]
    blocks = obj.data.shape_keys.key_blocks
    for names, values in ((model.shape_names, shape), (model.expression_names, params.expression),
                          (model.eyelid_names, params.eyelids)):
        for name, value in zip(names, values, strict=True):
            blocks[name].value = float(value)
    for joint, quaternion in flame_pose_to_bone_quaternions(rodrigues(pose)).items():
        obj.parent.pose.bones[joint].rotation_quaternion = quaternion
    expected = forward(model, shape, params.expression, pose, params.eyelids).vertices
    assert np.abs(evaluated_flame_vertices(obj) - expected).max() < 1e-5 * model.size()


def test_ict_landmark_embedding_is_well_formed(ict) -> None:
    from inference.retarget.correspondence import load_mediapipe_embedding

    model, _ = ict
    embedding = load_mediapipe_embedding(EMBEDDING, model)  # raises on any malformed array
    with np.load(EMBEDDING) as stored:
        faces, coords, ids = stored["lmk_face_idx"], stored["lmk_b_coords"], stored["landmark_indices"]
    np.testing.assert_array_equal(ids, np.arange(478))
    assert coords.min() >= 0.0 and np.allclose(coords.sum(1), 1.0)
    names = list(model.extras["part_names"])
    on = {names[p] for p in model.extras["face_parts"][faces]}
    assert on <= {"skin", "eyes", "iris"}, on  # never on lashes, teeth or the see-through eye layers
    points = np.einsum("nk,nki->ni", coords, model.v_template[model.faces[faces]])
    assert points[1, 2] == points[:468, 2].max() or points[1, 2] > np.percentile(points[:468, 2], 99)  # nose tip
    assert points[263, 0] > 0 > points[33, 0]  # MediaPipe 263 is the subject's left eye corner: +x in FLAME
    assert len(embedding.labels) == 478


def test_ict_neutral_redetection_error(blender, ict, tmp_path: Path) -> None:
    """Issue 11's target: landmarks found on a render of the neutral head lie within 1.5 px (at the
    network's 256 crop) of the embedding's projection."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    import embed_ict_landmarks as tool

    from inference.perception.pipeline import Perception

    head, camera, model = tool.setup_scene()
    with np.load(EMBEDDING) as stored:
        embedding = {key: stored[key] for key in stored.files}
    error = tool.redetection_error(head, camera, model, embedding, Perception(), tmp_path, {})
    assert error.mean() < 1.5, error.mean()
