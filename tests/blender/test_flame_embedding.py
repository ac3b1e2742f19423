"""Blender tier for the automatic landmark embedding of a FLAME file (issue 11, item 4): computed in
real Blender on FLAME-format exports of the ICT head (a FLAME 2020-style chumpy pickle and a FLAME
2023 Open-style plain-array pickle, a real face shape), compared with our committed ICT embedding
and its re-detection error; the user's scene untouched; Reconstruct's FLAME route working with no
second file, caching by sha256, loading the cache later, yielding to a user's embedding file; and
every failure path (no face shape, a failed solve, an unwritable cache) ending cleanly."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MODULE, scene_state
from flame_fixtures import ict_flame_arrays, write_flame2023_open, write_flame_pickle
from test_reconstruct import reconstruct

from inference.head.face_model import file_sha256, load_face_model
from inference.perception.pipeline import Perception
from inference.retarget import embedding
from inference.retarget.plan import weight_property

bpy = pytest.importorskip("bpy")
FieldsError = Exception  # the add-on raises its own copy of inference's errors: another class object

ROOT = Path(__file__).resolve().parents[2]
ICT_HEAD = ROOT / "inference" / "models" / "ict_head.npz"
COMMITTED = ICT_HEAD.with_name("ict_head_mediapipe_embedding.npz")


def product() -> Any:
    return importlib.import_module(MODULE + ".fields_addon.landmark_embedding")


@pytest.fixture(scope="module")
def ict_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    arrays, kept = ict_flame_arrays()
    folder = tmp_path_factory.mktemp("ict_flame")
    return {"2020": write_flame_pickle(folder / "2020", arrays), "kept": kept,
            "open": write_flame2023_open(folder / "open" / "flame2023_Open.pkl", arrays)}


@pytest.fixture(scope="module")
def perception() -> Perception:
    return Perception()


@pytest.fixture(scope="module")
def automatic(ict_files: dict[str, Any], perception: Perception) -> dict[str, np.ndarray]:
    """The expensive part, once: the 2020-style file's embedding, computed as on first use."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module=MODULE)
    return product().compute(load_face_model(ict_files["2020"]), perception, ict_files["2020"])  # type: ignore[no-any-return]


def full_state() -> dict[str, Any]:
    """More than `scene_state`: every kind of block the embedding creates, and the scene's settings."""
    scene = bpy.context.scene
    state: dict[str, Any] = {name: sorted(b.name for b in getattr(bpy.data, name))
                             for name in ("scenes", "objects", "meshes", "cameras", "worlds", "images")}
    state["window scene"] = bpy.context.window.scene.name if bpy.context.window else scene.name
    state["render"] = (scene.render.engine, scene.render.resolution_x, scene.render.filepath, scene.camera,
                       scene.world, scene.display.shading.color_type)
    return state


def test_automatic_embedding_matches_our_ict_embedding(blender, ict_files: dict[str, Any],
                                                       automatic: dict[str, np.ndarray], perception: Perception,
                                                       tmp_path: Path) -> None:
    """Figures for docs/ARCHITECTURE.md: mean distance from the committed ICT embedding (made with
    the ICT head's own parts and colours) and the re-detection error on a render of the ICT head."""
    model = load_face_model(ict_files["2020"])
    ict = load_face_model(ICT_HEAD)
    with np.load(COMMITTED) as stored:
        reference = np.einsum("nk,nkd->nd", stored["lmk_b_coords"], ict.v_template[ict.faces[stored["lmk_face_idx"]]])
    corners = model.v_template[model.faces[automatic["lmk_face_idx"]]]
    points = np.einsum("nk,nkd->nd", automatic["lmk_b_coords"], corners)
    distance = np.linalg.norm(points - reference, axis=1) * 1000
    print(f"automatic vs committed ICT embedding: mean {distance.mean():.2f} mm, median {np.median(distance):.2f} mm")
    assert distance.mean() < 2.0 and np.median(distance) < 1.2

    sys.path.insert(0, str(ROOT / "tools"))
    import embed_ict_landmarks as tool

    # The fixture's triangles are ICT's skin and eye triangles in ICT's order: map them back.
    names = [str(n) for n in ict.extras["part_names"]]
    ict_faces = np.flatnonzero(np.isin(ict.extras["face_parts"], [names.index(p) for p in ("skin", "eyes")]))
    on_ict = dict(automatic, lmk_face_idx=ict_faces[automatic["lmk_face_idx"]])
    np.testing.assert_array_equal(ict_files["kept"][model.faces[automatic["lmk_face_idx"]]],
                                  ict.faces[on_ict["lmk_face_idx"]])
    head, camera, ict_model = tool.setup_scene()
    error = tool.redetection_error(head, camera, ict_model, on_ict, perception, tmp_path, {})
    print(f"re-detection error of the automatic embedding on the ICT head: {error.mean():.2f} px at 256")
    assert error.mean() < 1.0


def test_computing_leaves_the_users_scene_as_it_was(blender, ict_files: dict[str, Any], perception: Perception,
                                                    tmp_path: Path) -> None:
    bpy.ops.mesh.primitive_monkey_add()
    scene = bpy.context.scene
    bpy.ops.object.camera_add(location=(0, -4, 0), rotation=(1.57, 0, 0))
    scene.camera = bpy.context.active_object
    scene.render.filepath = str(tmp_path / "user.png")
    scene.render.engine = "BLENDER_WORKBENCH"  # EEVEE takes minutes on a CPU-only machine
    scene.render.resolution_x = scene.render.resolution_y = 64
    bpy.ops.render.render(write_still=True)  # the user has a Render Result: it stays
    before = full_state()
    assert "Render Result" in before["images"]
    model = load_face_model(ict_files["open"])
    with pytest.raises(FieldsError, match="a face on only 1 of 5 renders") as caught:
        # A failed solve, in real Blender: only the front view can see the face.
        product().compute(model, perception, ict_files["open"], views=((0, 0), (180, 0), (170, 0), (190, 0), (180, 20)))
    assert str(ict_files["open"]) in str(caught.value)
    assert full_state() == before


def test_a_blob_and_a_flat_template_have_no_face_shape(blender, flame_npz: Path, tmp_path: Path,
                                                       perception: Perception) -> None:
    before = full_state()
    with pytest.raises(FieldsError, match="no face was found on any of 5 renders"):
        product().compute(load_face_model(flame_npz), perception, flame_npz)
    assert full_state() == before
    flat = load_face_model(flame_npz)
    object.__setattr__(flat, "v_template", flat.v_template * [1.0, 1.0, 0.0])
    with pytest.raises(FieldsError, match="has no face shape: its template spans"):
        product().compute(flat, perception, flame_npz)
    assert full_state() == before


def set_flame(path: Path | str, embedding_path: Path | str = "") -> Any:
    preferences = bpy.context.preferences.addons[MODULE].preferences
    preferences.flame_path, preferences.embedding_path = str(path), str(embedding_path)
    assert bpy.ops.fields.add_head() == {"FINISHED"}
    return bpy.context.active_object


def cached(path: Path) -> Path:
    return embedding.cache_file(product().cache_folder(), file_sha256(path))


def test_reconstruct_embeds_a_flame_2023_open_file_on_first_use(blender, ict_files: dict[str, Any]) -> None:
    path = ict_files["open"]
    assert not cached(path).exists()
    head = set_flame(path)
    assert reconstruct() == {"FINISHED"}
    assert bpy.context.scene.fields.result_route == "flame"
    assert head[weight_property("exp_000")] != 0.0  # the first expression component is driven
    stamp = cached(path).stat().st_mtime_ns
    first = [head[weight_property(f"exp_{i:03d}")] for i in range(50)]
    product_sessions = importlib.import_module(MODULE + ".fields_addon.sessions")
    product_sessions.clear()  # as a new Blender session: the cache is read, not computed and written
    assert reconstruct() == {"FINISHED"}
    assert cached(path).stat().st_mtime_ns == stamp
    np.testing.assert_allclose([head[weight_property(f"exp_{i:03d}")] for i in range(50)], first, atol=1e-9)


def test_a_users_embedding_file_takes_precedence(blender, ict_files: dict[str, Any],
                                                 automatic: dict[str, np.ndarray], tmp_path: Path) -> None:
    path = ict_files["2020"]
    users = tmp_path / "mediapipe_landmark_embedding.npz"
    ids = np.arange(105)
    np.savez(users, lmk_face_idx=automatic["lmk_face_idx"][ids].astype(np.uint32),
             lmk_b_coords=automatic["lmk_b_coords"][ids], landmark_indices=ids)
    set_flame(path, users)
    assert reconstruct() == {"FINISHED"}
    assert not cached(path).exists()  # nothing was computed


def test_failures_leave_the_scene_unchanged_and_cache_nothing(blender, flame_npz: Path) -> None:
    set_flame(flame_npz)
    before = scene_state()
    with pytest.raises(RuntimeError, match="has no face shape our face detector recognises") as caught:
        reconstruct()
    assert str(flame_npz) in str(caught.value) and str(caught.value).count("\n") <= 1
    assert scene_state() == before
    assert not cached(flame_npz).exists()


def test_an_unwritable_cache_folder_warns_and_still_works(blender, ict_files: dict[str, Any],
                                                          automatic: dict[str, np.ndarray],
                                                          perception: Perception) -> None:
    folder = product().cache_folder()
    folder.parent.mkdir(parents=True, exist_ok=True)
    moved = folder.with_name("moved")
    if folder.exists():
        folder.rename(moved)
    folder.write_bytes(b"")  # a file where the folder should be: no file can be written inside it
    try:
        warnings: list[str] = []
        path = ict_files["2020"]
        points = product().automatic(load_face_model(path), file_sha256(path), perception, warnings.append)
        assert len(warnings) == 1 and "cannot be cached" in warnings[0] and str(path) in warnings[0], warnings
        np.testing.assert_array_equal(points.labels, automatic["landmark_indices"])
        np.testing.assert_allclose(points.weights, automatic["lmk_b_coords"])
    finally:
        folder.unlink()
        if moved.exists():
            moved.rename(folder)
