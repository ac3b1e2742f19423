"""The automatic landmark embedding's geometry (issue 11, item 4), without Blender: combining the
views' hits, snapping onto the surface, the depth rule for rays through the lips, the checks that
fail a solve with a message naming the file, the eyeball painting, and FLAME 2023 Open files
(plain-array pickles with 300 + 100 components, a modern sparse regressor and SUPR metadata)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flame_fixtures import ict_flame_arrays, make_flame_arrays, write_flame2023_open

from inference.head.face_model import load_face_model
from inference.head.rig import FLAME_TO_BLENDER
from inference.retarget import embedding
from inference.retarget.embedding import EmbeddingError, along_rays, appearance, combine, snap, solve


def test_combine_takes_the_agreeing_views_and_ignores_an_outlier() -> None:
    truth = np.array([[0.0, 0.0, 0.0], [0.01, 0.02, 0.0]])
    hits = np.repeat(truth[None], 5, axis=0) + np.random.default_rng(0).normal(0, 1e-4, (5, 2, 3))
    hits[1, 0] += [0.05, 0, 0]  # one view misplaced landmark 0 by 5 cm
    hits[2, 1] = np.nan  # another did not see landmark 1
    points, agreeing = combine(hits)
    assert agreeing.tolist() == [4, 4]
    assert np.abs(points - truth).max() < 2e-4


def test_snap_returns_the_nearest_surface_point() -> None:
    arrays = make_flame_arrays()
    vertices, faces = arrays["v_template"], arrays["f"].astype(np.int64)
    rng = np.random.default_rng(1)
    chosen = rng.integers(0, len(faces), 50)
    weights = rng.dirichlet(np.ones(3), 50)
    on_surface = np.einsum("nk,nkd->nd", weights, vertices[faces[chosen]])
    triangles, coords = snap(vertices, faces, on_surface)
    np.testing.assert_allclose(np.einsum("nk,nkd->nd", coords, vertices[faces[triangles]]), on_surface, atol=1e-12)
    outside = on_surface * 1.05  # off the ellipsoid: snapped back onto it, no farther than brute force finds
    triangles, coords = snap(vertices, faces, outside)
    snapped = np.einsum("nk,nkd->nd", coords, vertices[faces[triangles]])
    dense = np.einsum("wk,fkd->fwd", np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1 / 3, 1 / 3, 1 / 3]]),
                      vertices[faces]).reshape(-1, 3)
    brute = np.linalg.norm(outside[:, None] - dense[None], axis=2).min(axis=1)
    assert np.all(np.linalg.norm(snapped - outside, axis=1) <= brute + 1e-12)
    assert coords.min() >= 0 and np.allclose(coords.sum(axis=1), 1)


def test_a_ray_through_the_lips_is_pulled_back_to_the_networks_depth() -> None:
    origin, directions = np.zeros(3), np.tile([0.0, 1.0, 0.0], (6, 1))
    # On the face (the network's depth agrees), then through the mouth to the neck, then a miss.
    distances = np.array([0.75, 0.75, 0.76, 0.74, 0.93, np.nan])
    points = along_rays(origin, directions, distances, np.zeros(6))
    np.testing.assert_allclose(points[:5, 1], [0.75, 0.75, 0.76, 0.74, 0.75])
    assert np.isnan(points[5]).all()


@pytest.fixture(scope="module")
def ict_like() -> tuple:
    arrays, kept = ict_flame_arrays()
    return arrays, kept


def test_solve_failures_name_the_file(ict_like: tuple, tmp_path: Path) -> None:
    arrays, _ = ict_like
    path = write_flame2023_open(tmp_path / "flame2023_Open.pkl", arrays)
    model = load_face_model(path)
    look = appearance(model)
    good = np.repeat((model.v_template[:478] @ FLAME_TO_BLENDER.T)[None], 5, axis=0)
    with pytest.raises(EmbeddingError, match="no face was found on any of 5 renders") as caught:
        solve(model, np.full_like(good, np.nan), look.surface, path)
    assert str(path) in str(caught.value) and "add-on's preferences" in str(caught.value)
    two = good.copy()
    two[2:] = np.nan
    with pytest.raises(EmbeddingError, match="a face on only 2 of 5 renders"):
        solve(model, two, look.surface, path)
    scattered = good + np.random.default_rng(2).normal(0, 0.02, good.shape)
    with pytest.raises(EmbeddingError, match="renders that disagree on where"):
        solve(model, scattered, look.surface, path)
    result = solve(model, good, look.surface, path)
    assert result["lmk_b_coords"].shape == (478, 3) and result["landmark_indices"].tolist() == list(range(478))


def test_a_degenerate_template_is_refused(tmp_path: Path) -> None:
    arrays = make_flame_arrays()
    arrays["v_template"] = arrays["v_template"] * [1.0, 1.0, 0.0]  # flat: no face shape
    path = write_flame2023_open(tmp_path / "flat.pkl", arrays)
    with pytest.raises(EmbeddingError, match="has no face shape: its template spans") as caught:
        embedding.check_shape(load_face_model(path), path)
    assert str(path) in str(caught.value)


def test_the_eyeballs_of_a_flame_like_mesh_are_found_and_painted(ict_like: tuple, tmp_path: Path) -> None:
    arrays, kept = ict_like
    with np.load(Path(__file__).resolve().parent.parent / "inference" / "models" / "ict_head.npz") as ict:
        names, parts, faces = [str(n) for n in ict["part_names"]], ict["face_parts"], ict["f"]
        eyes = np.unique(faces[parts == names.index("eyes")])
    model = load_face_model(write_flame2023_open(tmp_path / "flame2023_Open.pkl", arrays))
    look = appearance(model)
    painted = np.flatnonzero(~np.all(look.colours[:, :3] == np.float32(embedding.COLOURS["skin"]), axis=1))
    assert set(kept[painted].tolist()) == set(eyes.tolist())  # exactly ICT's eyeball shells
    iris = np.all(look.colours[:, :3] == np.float32(embedding.COLOURS["iris"]), axis=1)
    assert 0 < iris.sum() < len(painted) / 2


def test_flame_2023_open_pickle_loads(tmp_path: Path) -> None:
    """FLAME_FORMAT.md section 7: plain arrays, 300 identity + 100 (SUPR) expression components,
    `scipy.sparse._csc` regressor, `supr_expression_metadata`, no eyelids."""
    arrays = make_flame_arrays()
    model = load_face_model(write_flame2023_open(tmp_path / "flame2023_Open.pkl", arrays))
    assert (model.n_shape, model.n_expr) == (300, 100) and model.eyelids is None
    np.testing.assert_allclose(model.j_regressor, arrays["J_regressor"])
    np.testing.assert_allclose(model.exprdirs, arrays["shapedirs"][:, :, 300:])
    for protocol in (2, 4):
        again = load_face_model(write_flame2023_open(tmp_path / f"p{protocol}.pkl", arrays, protocol=protocol))
        np.testing.assert_array_equal(again.v_template, model.v_template)
