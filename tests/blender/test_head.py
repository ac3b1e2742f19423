"""The "Add Head" operator in real Blender (issue 2): the evaluated rig equals the numpy FLAME
forward model, and every bad input is reported in the UI with the scene left unchanged."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import scene_state
from flame_fixtures import write_flame_npz

from inference.head.face_model import JOINT_NAMES, FaceModel, load_face_model
from inference.head.forward import forward, rodrigues
from inference.head.rig import FLAME_TO_BLENDER, flame_pose_to_bone_quaternions, joint_offset_prop, quaternion_to_matrix

bpy = pytest.importorskip("bpy")


def add_head(path: Path, **options: object) -> tuple:
    assert bpy.ops.fields.add_head(filepath=str(path), **options) == {"FINISHED"}
    obj = bpy.context.active_object
    return obj, obj.parent


def evaluated_flame_vertices(obj) -> np.ndarray:  # type: ignore[no-untyped-def]
    depsgraph = bpy.context.evaluated_depsgraph_get()
    depsgraph.update()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", co)
    evaluated.to_mesh_clear()
    world = np.array(evaluated.matrix_world)
    return (co.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]) @ FLAME_TO_BLENDER  # back to FLAME axes


def pose_rig(obj, rig, model: FaceModel, shape, expression, pose, eyelids) -> None:  # type: ignore[no-untyped-def]
    keys = obj.data.shape_keys.key_blocks
    for names, values in ((model.shape_names, shape), (model.expression_names, expression)):
        for name, value in zip(names, values, strict=False):
            keys[name].value = value
    keys["eyelid_L"].value, keys["eyelid_R"].value = eyelids
    for joint, quaternion in flame_pose_to_bone_quaternions(rodrigues(pose)).items():
        rig.pose.bones[joint].rotation_quaternion = quaternion


@pytest.mark.parametrize("seed", [0, 1])
def test_rig_matches_the_numpy_forward_model(blender, flame_pickle: Path, capfd, seed: int) -> None:
    model = load_face_model(flame_pickle)
    obj, rig = add_head(flame_pickle, identity_keys=True)
    rng = np.random.default_rng(seed)
    shape, expression = rng.normal(0, 1, 300), rng.normal(0, 1, 100)
    pose, eyelids = rng.normal(0, 0.3, (5, 3)), rng.uniform(0, 1, 2)
    pose_rig(obj, rig, model, shape, expression, pose, eyelids)
    got = evaluated_flame_vertices(obj)
    expected = forward(model, shape, expression, pose, eyelids).vertices
    assert np.abs(got - expected).max() < 1e-5 * model.size()
    # The joints really moved with shape and expression (so the pivot drivers were exercised).
    assert max(abs(rig.get(joint_offset_prop(c), 0.0)) for c in range(15)) > 1e-4
    assert "Dependency cycle" not in capfd.readouterr().out


def test_rig_stays_exact_with_the_jaw_keyed(blender, flame_pickle: Path) -> None:
    model = load_face_model(flame_pickle)
    obj, rig = add_head(flame_pickle)
    expression = np.random.default_rng(5).normal(0, 1, 100)
    for name, value in zip(model.expression_names, expression, strict=False):
        obj.data.shape_keys.key_blocks[name].value = value
    jaw = rig.pose.bones["jaw"]
    for frame, angle in ((1, 0.0), (11, 0.6)):
        pose = np.zeros((5, 3))
        pose[2] = [angle, 0.1 * angle, 0.0]
        jaw.rotation_quaternion = flame_pose_to_bone_quaternions(rodrigues(pose))["jaw"]
        jaw.keyframe_insert("rotation_quaternion", frame=frame)
    bpy.context.scene.frame_set(5)
    # Between keys Blender interpolates the quaternion's components: it is no longer unit length.
    q = np.array(jaw.rotation_quaternion)
    assert abs(np.linalg.norm(q) - 1) > 1e-4
    pose = np.zeros((5, 3))
    from scipy.spatial.transform import Rotation

    axes = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # the jaw bone's axes in FLAME (rig.BONE_AXES)
    pose[2] = Rotation.from_matrix(axes @ quaternion_to_matrix(q) @ axes.T).as_rotvec()
    expected = forward(model, expression=expression, pose=pose).vertices
    assert np.abs(evaluated_flame_vertices(obj) - expected).max() < 1e-5 * model.size()


def test_head_structure(blender, flame_pickle: Path) -> None:
    model = load_face_model(flame_pickle)
    obj, rig = add_head(flame_pickle, identity_keys=False)  # the default adds them (issue 11)
    keys = obj.data.shape_keys.key_blocks
    names = [k.name for k in keys]
    assert names[0] == "Basis" and names[1:3] == ["exp_000", "exp_001"]
    assert "eyelid_L" in names and "pose_35" in names and "shape_000" not in names
    assert all(k.value == 0.0 for k in keys[1:] if not k.name.startswith("pose_"))  # Blender 5 starts keys at 1.0
    assert len(obj.data.vertices) == model.n_verts and len(obj.data.polygons) == len(model.faces)
    assert [g.name for g in obj.vertex_groups] == list(JOINT_NAMES)
    assert obj.modifiers[0].type == "ARMATURE" and obj.modifiers[0].object == rig
    deform = [b.name for b in rig.data.bones if b.use_deform]
    assert deform == list(JOINT_NAMES)
    for k, joint in enumerate(JOINT_NAMES):
        head = np.array(rig.data.bones[joint].head_local)
        np.testing.assert_allclose(head, FLAME_TO_BLENDER @ model.rest_joints()[k], atol=1e-6)
    eye = np.array(rig.data.bones["eye.L"].matrix_local)[:3, 1]
    np.testing.assert_allclose(eye, [0, -1, 0], atol=1e-6)  # eye bones look out of the face (-Y)
    assert obj.select_get() and bpy.context.view_layer.objects.active == obj


def _bad_files(folder: Path, arrays: dict) -> dict[str, tuple[Path, str]]:
    folder.mkdir()
    truncated = folder / "truncated.pkl"
    truncated.write_bytes(pickle.dumps(arrays["v_template"], protocol=2)[:100])
    evil = folder / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    not_flame = folder / "dict.pkl"
    not_flame.write_bytes(pickle.dumps({"hello": 1}, protocol=2))
    wrong_shape = write_flame_npz(folder / "wrong.npz", dict(arrays, weights=np.ones((3, 5)) / 5))
    missing_keys = write_flame_npz(folder / "partial.npz", arrays, drop=("J_regressor",))
    return {
        "missing": (folder / "no_such_model.pkl", "does not exist"),
        "truncated": (truncated, "is truncated or not a FLAME pickle"),
        "other class": (evil, r"was refused: it asks for 'os\.system'"),
        "not FLAME": (not_flame, r"missing key\(s\)"),
        "wrong shape": (wrong_shape, r"'weights' has shape \(3, 5\)"),
        "npz missing keys": (missing_keys, r"missing key\(s\) J_regressor"),
    }


def test_bad_files_are_reported_and_change_nothing(blender, tmp_path: Path, flame_arrays: dict) -> None:
    bpy.ops.mesh.primitive_cube_add()  # an artist's existing scene
    before = scene_state()
    for case, (path, message) in _bad_files(tmp_path / "bad", flame_arrays).items():
        with pytest.raises(RuntimeError, match=message) as info:
            bpy.ops.fields.add_head(filepath=str(path))
        assert str(path) in str(info.value), case
        assert scene_state() == before, case


def test_bad_preference_path_is_reported(blender, tmp_path: Path) -> None:
    from bl_ext.user_default.fields.fields_addon import preferences  # type: ignore[import-not-found]

    preferences.get(bpy.context).flame_path = str(tmp_path / "gone.pkl")
    with pytest.raises(RuntimeError, match=r"gone\.pkl' does not exist"):
        bpy.ops.fields.add_head()


def test_failed_build_leaves_nothing_behind(blender, flame_pickle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bl_ext.user_default.fields.fields_addon import head  # type: ignore[import-not-found]

    def broken(*_args: object) -> None:
        raise RuntimeError("simulated failure while adding drivers")

    monkeypatch.setattr(head, "_add_drivers", broken)
    before = scene_state()
    with pytest.raises(RuntimeError, match="simulated failure"):
        head.build_head(bpy.context, load_face_model(flame_pickle))
    assert scene_state() == before
