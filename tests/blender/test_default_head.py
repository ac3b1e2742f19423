"""Blender tier for the open mask head (issue 4): "Add Head" on its file builds it with ARKit-named
shape keys, and the evaluated mesh matches the numpy forward model. (Since issue 11 the default is
the ICT head: see test_full_head.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import MODULE

from inference.head.default_head import EXPRESSION_UNITS, HEAD_FILE, load_default_head
from inference.head.forward import forward, rodrigues
from inference.head.rig import FLAME_TO_BLENDER, flame_pose_to_bone_quaternions
from inference.perception.blendshapes import ARKIT_NAMES

bpy = pytest.importorskip("bpy")


def _evaluated_flame_vertices(obj) -> np.ndarray:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", co)
    finally:
        evaluated.to_mesh_clear()
    return co.reshape(-1, 3).astype(np.float64) @ FLAME_TO_BLENDER  # Blender -> FLAME axes


def test_the_mask_head_still_builds_and_matches_the_forward_model(blender) -> None:
    # No longer Add Head's default (issue 11: the ICT head is); kept until the retrained encoder lands.
    assert blender.ops.fields.add_head(filepath=str(HEAD_FILE)) == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    names = set(obj.data.shape_keys.key_blocks.keys())
    assert set(EXPRESSION_UNITS) | {"eyeBlinkLeft", "eyeBlinkRight"} <= names
    assert "eyelid_L" not in names and obj.name.startswith("FIELDS open head")

    model, mapping = load_default_head()
    rng = np.random.default_rng(44)
    weights = np.where(rng.uniform(size=len(ARKIT_NAMES)) < 0.4, rng.uniform(0, 1, len(ARKIT_NAMES)), 0.0)
    for _a, b in (("eyeLookUpLeft", "eyeLookDownLeft"), ("eyeLookInRight", "eyeLookOutRight"), ("jawLeft", "jawRight")):
        weights[ARKIT_NAMES.index(b)] = 0.0
    weights[ARKIT_NAMES.index("jawOpen")] = 0.7
    weights[ARKIT_NAMES.index("eyeBlinkLeft")] = 0.8
    params = mapping.to_params(weights)
    pose = params.pose.copy()
    pose[1] = [0.1, -0.2, 0.05]  # the neck turns too: pose correctives and pivots are exercised
    blocks = obj.data.shape_keys.key_blocks
    for name, value in zip(model.expression_names, params.expression, strict=True):
        blocks[name].value = float(value)
    for name, value in zip(model.eyelid_names, params.eyelids, strict=True):
        blocks[name].value = float(value)
    rig = obj.parent
    for joint, quaternion in flame_pose_to_bone_quaternions(rodrigues(pose)).items():
        rig.pose.bones[joint].rotation_quaternion = quaternion
    bpy.context.view_layer.update()

    expected = forward(model, expression=params.expression, pose=pose, eyelids=params.eyelids).vertices
    error = np.abs(_evaluated_flame_vertices(obj) - expected).max()
    assert error < 1e-5 * model.size()


def test_a_broken_flame_path_still_errors_naming_the_file(blender, tmp_path: Path) -> None:
    broken = tmp_path / "broken_model.pkl"
    broken.write_bytes(b"not a pickle at all")
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.flame_path = str(broken)
    before = sorted(o.name for o in bpy.data.objects)
    with pytest.raises(RuntimeError, match="broken_model.pkl"):
        bpy.ops.fields.add_head()
    assert sorted(o.name for o in bpy.data.objects) == before
