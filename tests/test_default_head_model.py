"""The open default head (issue 4): file structure, landmark correspondence, mirror symmetry, the
ARKit mapping, and the quality bar judged by MediaPipe's real blendshape network."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.head.default_head import (  # noqa: E402
    ARKIT_TO_PARAMS,
    EXPRESSION_UNITS,
    HEAD_FILE,
    N_LANDMARKS,
    HeadParams,
    load_default_head,
    mirror_name,
    purity_table,
    referee_scores,
)
from inference.head.face_model import file_sha256  # noqa: E402
from inference.head.forward import forward  # noqa: E402
from inference.perception.blendshapes import ARKIT_NAMES, MEDIAPIPE_NAMES, BlendshapeNetwork  # noqa: E402
from inference.perception.geometry import load_canonical_face  # noqa: E402

FLIP = np.array([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def head():
    return load_default_head()


@pytest.fixture(scope="module")
def network() -> BlendshapeNetwork:
    return BlendshapeNetwork()


@pytest.fixture(scope="module")
def purity(network, head):
    return purity_table(network, *head)


def test_head_file_is_small_and_listed_with_its_checksum() -> None:
    assert HEAD_FILE.stat().st_size < 512 * 1024  # it ships inside the extension
    models_doc = (ROOT / "docs" / "MODELS.md").read_text()
    assert file_sha256(HEAD_FILE) in models_doc


def test_head_loads_as_a_flame_format_model(head) -> None:
    model, _ = head
    assert model.expression_names == EXPRESSION_UNITS
    assert model.eyelid_names == ("eyeBlinkLeft", "eyeBlinkRight")
    assert model.eyelids is not None and model.n_shape == len(model.shape_names) >= 8
    assert model.n_verts > N_LANDMARKS
    assert np.allclose(model.j_regressor.sum(axis=1), 1) and np.allclose(model.weights.sum(axis=1), 1)


def test_vertex_i_is_mediapipe_landmark_i(head) -> None:
    model, _ = head
    canonical = load_canonical_face().vertices * 0.01
    verts = model.v_template
    # Neutral calibration moves lids, lips and brows by millimetres; the rest is the canonical face.
    moved = np.linalg.norm(verts[:468] - canonical, axis=1)
    assert moved.max() < 0.006
    assert (moved < 1e-5).sum() >= 200  # about half the face is untouched
    # 468-472: the subject's right iris (x < 0), 473-477: the left, each centre between its corners.
    for centre, corners in ((468, (33, 133)), (473, (263, 362))):
        low, high = sorted(verts[list(corners), 0])
        assert low < verts[centre, 0] < high
        ring = verts[centre + 1 : centre + 5]
        assert np.allclose(
            np.linalg.norm(ring[:, :2] - verts[centre, :2], axis=1), np.linalg.norm(ring[0, :2] - verts[centre, :2])
        )
    assert verts[468, 0] < 0 < verts[473, 0]
    assert verts[470, 1] > verts[468, 1] > verts[472, 1]  # contour order: image right, top, image left, bottom


def test_iris_rings_turn_with_the_eye_joints(head) -> None:
    model, mapping = head
    weights = np.zeros(len(ARKIT_NAMES))
    weights[ARKIT_NAMES.index("eyeLookUpLeft")] = 1.0
    params = mapping.to_params(weights)
    moved = forward(model, pose=params.pose).vertices - forward(model).vertices
    assert np.all(moved[473:478, 1] > 0.002)  # the left iris rises
    assert np.allclose(moved[468:473], 0)  # the right one does not


def test_left_and_right_units_are_exact_mirror_images(head) -> None:
    model, mapping = head
    mirror = model.extras["mirror"]
    assert np.allclose(model.v_template[mirror] * FLIP, model.v_template, atol=1e-6)
    for k, name in enumerate(model.expression_names):
        twin = mirror_name(name)
        expected = model.exprdirs[:, :, k] if twin is None else model.exprdirs[:, :, model.expression_names.index(twin)]
        assert np.allclose(expected[mirror] * FLIP, model.exprdirs[:, :, k], atol=1e-7), name
    assert np.allclose(model.eyelids[1][mirror] * FLIP, model.eyelids[0], atol=1e-7)
    for k in range(model.n_shape):  # identity is symmetric
        assert np.allclose(model.shapedirs[mirror, :, k] * FLIP, model.shapedirs[:, :, k], atol=1e-7)
    for i, name in enumerate(ARKIT_NAMES):
        twin = mirror_name(name)
        if twin is not None and ARKIT_TO_PARAMS[name][0] == "pose":
            assert np.isclose(np.abs(mapping.pose[i]).sum(), np.abs(mapping.pose[ARKIT_NAMES.index(twin)]).sum())


def test_every_arkit_unit_drives_exactly_one_parameter(head) -> None:
    _, mapping = head
    assert set(ARKIT_TO_PARAMS) == set(ARKIT_NAMES)
    counts = (
        (mapping.expression != 0).sum(axis=1)
        + (mapping.pose != 0).reshape(52, -1).sum(axis=1)
        + (mapping.eyelids != 0).sum(axis=1)
    )
    assert np.all(counts == 1)
    assert ARKIT_TO_PARAMS["eyeBlinkLeft"] == ("eyelid", 0) and ARKIT_TO_PARAMS["jawOpen"][0] == "pose"
    assert np.degrees(mapping.pose[ARKIT_NAMES.index("jawOpen"), 2, 0]) > 10  # the jaw opens downward


def test_arkit_weights_round_trip_through_head_parameters(head) -> None:
    _, mapping = head
    rng = np.random.default_rng(4)
    weights = rng.uniform(0, 1, len(ARKIT_NAMES))
    for a, b in (
        ("eyeLookDownLeft", "eyeLookUpLeft"),
        ("eyeLookInLeft", "eyeLookOutLeft"),
        ("eyeLookDownRight", "eyeLookUpRight"),
        ("eyeLookInRight", "eyeLookOutRight"),
        ("jawLeft", "jawRight"),
    ):
        weights[ARKIT_NAMES.index(b)] = 0.0  # opposite directions of one joint axis cancel
        del a
    params = mapping.to_params(weights)
    assert isinstance(params, HeadParams) and params.expression.shape == (len(EXPRESSION_UNITS),)
    assert np.allclose(mapping.from_params(params), weights)


def test_neutral_head_reads_as_neutral(network, head) -> None:
    scores = referee_scores(network, *head)
    assert max(scores[name] for name in MEDIAPIPE_NAMES[1:]) <= 0.15


def test_each_unit_alone_reads_as_itself(purity) -> None:
    wins = sum(row.top_unit == row.unit for row in purity)
    mean = np.mean([row.intended_increase for row in purity])
    assert len(purity) == 51
    assert wins >= 40, [(r.unit, r.top_unit) for r in purity if r.top_unit != r.unit]
    assert mean >= 0.5


def test_left_and_right_units_read_alike(purity) -> None:
    by_unit = {row.unit: row.intended_increase for row in purity}
    gaps = {u: abs(v - by_unit[mirror_name(u)]) for u, v in by_unit.items() if mirror_name(u) in by_unit}
    assert len(gaps) == 2 * 20  # 20 left/right pairs (jawLeft/jawRight and mouthLeft/mouthRight included)
    assert max(gaps.values()) <= 0.1, max(gaps, key=gaps.get)


def test_docs_hold_the_measured_purity_table(purity) -> None:
    text = (ROOT / "docs" / "DEFAULT_HEAD.md").read_text()
    section = text.split("<!-- purity:begin -->")[1].split("<!-- purity:end -->")[0]
    for row in purity:
        match = re.search(rf"^\| `{row.unit}` \| ([+-][0-9.]+) \|", section, re.M)
        assert match and abs(float(match.group(1)) - row.intended_increase) < 2e-3, row.unit


def test_npz_eyelid_names_are_optional_and_validated(tmp_path: Path) -> None:
    """The `eyelid_names` key names the eyelid shape keys (issue 4); without it they stay eyelid_L/R."""
    from inference.errors import FaceModelError
    from inference.head.face_model import load_face_model

    with np.load(HEAD_FILE) as archive:
        arrays = {key: archive[key] for key in archive.files}
    plain = {k: v for k, v in arrays.items() if k != "eyelid_names"}
    np.savez(tmp_path / "plain.npz", **plain)
    assert load_face_model(tmp_path / "plain.npz").eyelid_names == ("eyelid_L", "eyelid_R")
    np.savez(tmp_path / "bad.npz", **plain, eyelid_names=np.array(["same", "same"]))
    with pytest.raises(FaceModelError, match="bad.npz.*eyelid_names"):
        load_face_model(tmp_path / "bad.npz")
