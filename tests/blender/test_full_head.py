"""The ICT head as the default (issue 11, items 3 and 5) in real Blender: Add Head with no file
builds it with identity keys; Reconstruct drives it through its own ARKit table (jaw and eye bones
turn) with the evaluated mesh equal to the numpy forward model; Match face shape sets its identity
keys and lowers the landmark residual; Apply to sequence keys it; and every Match face shape
failure is one sentence with the scene unchanged. Real ONNX Runtime, real photo, no mocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_apply_sequence import clips, configure, frames_of  # noqa: F401  (clips is a fixture)
from test_reconstruct import ASTRONAUT, assert_cancelled, evaluated_flame_vertices, photos, reconstruct  # noqa: F401

from inference.head.default_head import HEAD_FILE
from inference.head.face_model import JOINT_NAMES, load_face_model
from inference.head.forward import forward
from inference.head.ict import ICT_HEAD_FILE
from inference.head.rig import BONE_AXES
from inference.retarget.plan import INTENSITY_PROPERTY, weight_property

bpy = pytest.importorskip("bpy")


@pytest.fixture(scope="module")
def ict():  # type: ignore[no-untyped-def]
    return load_face_model(ICT_HEAD_FILE)


def add_ict_head() -> object:
    assert bpy.ops.fields.add_head() == {"FINISHED"}
    return bpy.context.active_object


def shown_params(head, model) -> tuple:  # type: ignore[no-untyped-def]
    """The FLAME parameters the head shows, read back from its key values and bone rotations."""
    keys = head.data.shape_keys.key_blocks
    values = [np.array([keys[n].value for n in names]) for names in
              (model.shape_names, model.expression_names, model.eyelid_names)]
    pose = np.zeros((5, 3))
    for k, bone in enumerate(JOINT_NAMES):
        q = np.array(head.parent.pose.bones[bone].rotation_quaternion)
        sine = np.linalg.norm(q[1:])
        if sine > 1e-12:
            pose[k] = BONE_AXES[bone] @ (q[1:] / sine * 2 * np.arctan2(sine, q[0]))
    return values[0], values[1], pose, values[2]


def test_default_head_is_the_ict_head_with_identity_keys(blender, ict) -> None:
    head = add_ict_head()
    assert head.name.startswith("ICT head") and len(head.data.vertices) == ict.n_verts
    assert set(ict.shape_names) <= set(head.data.shape_keys.key_blocks.keys())


def test_reconstruct_drives_the_ict_head_through_its_arkit_table(blender, ict) -> None:
    head = add_ict_head()
    assert reconstruct(match_shape=False) == {"FINISHED"}
    settings = bpy.context.scene.fields
    # The encoder's units are the ICT head's own (issue 12): direct, through its table.
    assert settings.result_route == "direct" and settings.result_shape == ""
    assert head[weight_property("mouthSmileLeft")] > 0.2  # the astronaut smiles
    assert weight_property("jaw") in head.keys()  # jawOpen is a bone turn on this head
    head[INTENSITY_PROPERTY] = 0.7
    bpy.context.view_layer.update()
    shape, expression, pose, eyelids = shown_params(head, ict)
    assert np.abs(shape).max() == 0.0
    expected = forward(ict, shape, expression, pose, eyelids).vertices
    assert np.abs(evaluated_flame_vertices(head) - expected).max() < 1e-5 * ict.size()


def test_match_face_shape_sets_identity_and_lowers_the_residual(blender, ict) -> None:
    head = add_ict_head()
    assert reconstruct(match_shape=True) == {"FINISHED"}
    text = bpy.context.scene.fields.result_shape
    before, after = (float(v) for v in text.split("landmarks ")[1].removesuffix(" mm").split(" -> "))
    assert after < 0.7 * before, text
    bpy.context.view_layer.update()
    shape, expression, pose, eyelids = shown_params(head, ict)
    assert np.abs(shape).max() > 0.1
    expected = forward(ict, shape, expression, pose, eyelids).vertices
    assert np.abs(evaluated_flame_vertices(head) - expected).max() < 1e-5 * ict.size()


def test_match_face_shape_failures_leave_the_scene_unchanged(blender, photos) -> None:  # noqa: F811
    head = add_ict_head()
    assert_cancelled("No face was found", head, filepath=str(photos["blank"]), match_shape=True)
    assert bpy.ops.fields.add_head(identity_keys=False) == {"FINISHED"}
    bare = bpy.context.active_object
    assert_cancelled("has no identity shape keys", bare, filepath=str(ASTRONAUT), match_shape=True)
    # A FIELDS head whose file has no landmark embedding: the mask head (identity keys, no embedding).
    assert bpy.ops.fields.add_head(filepath=str(HEAD_FILE)) == {"FINISHED"}
    assert_cancelled("has no MediaPipe landmark embedding", bpy.context.active_object, match_shape=True)
    bpy.ops.mesh.primitive_cube_add()
    key_cube = bpy.context.active_object
    key_cube.shape_key_add(name="Basis")
    key_cube.shape_key_add(name="jawOpen")
    assert_cancelled("needs a head made by Add Head", key_cube, match_shape=True)


def test_apply_to_sequence_keys_the_ict_head(blender, clips, tmp_path: Path) -> None:  # noqa: F811
    head = add_ict_head()
    configure(clips["video"])
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    smile = frames_of(head, f'["{weight_property("mouthSmileLeft")}"]')
    assert len(smile) > 10
    jaw = frames_of(head, f'["{weight_property("jaw")}"]')
    assert len(jaw) == len(smile)
