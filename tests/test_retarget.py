"""Retargeting (issue 6): correspondences, the FLAME MediaPipe embedding, the expression + jaw solve
and ARKit-named rigs. Real numpy throughout: the source is posed through the forward model and the
target's answer is checked against the forward model, never against the solver's own arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from retarget_fixtures import (
    bump_basis,
    default_embedding_ids,
    model_from_arrays,
    open_head_embedding,
    reparameterised_copy,
    write_embedding,
)

from inference.errors import LandmarkEmbeddingError
from inference.expression.emotions import EMOTIONS, emotion_weights
from inference.head.default_head import landmarks, load_default_head
from inference.head.face_model import FaceModel, load_face_model
from inference.head.forward import forward
from inference.perception.blendshapes import ARKIT_NAMES
from inference.retarget.arkit import arkit_key, arkit_key_values, match_arkit_names, match_arkit_report
from inference.retarget.correspondence import (
    Correspondence,
    SurfacePoints,
    load_mediapipe_embedding,
    open_head_landmarks,
)
from inference.retarget.solver import PointModel, Retargeter, cholesky_solve

K = 20  # expression components of the re-parameterised pair


@pytest.fixture(scope="module")
def source(flame_arrays: dict) -> FaceModel:
    return model_from_arrays(flame_arrays, bump_basis(flame_arrays["v_template"], K, seed=3), name="source")


@pytest.fixture(scope="module")
def reparameterised(source: FaceModel) -> tuple[FaceModel, np.ndarray, np.ndarray]:
    """The source with a random invertible mix of its expression basis and its vertices shuffled."""
    rng = np.random.default_rng(7)
    # U diag(s) V^T with singular values in [0.5, 2]: dense, invertible, condition number 4 at most.
    left, right = (np.linalg.qr(rng.normal(size=(K, K)))[0] for _ in range(2))
    mix = left @ np.diag(rng.uniform(0.5, 2.0, K)) @ right.T
    permutation = rng.permutation(source.n_verts)
    return reparameterised_copy(source, mix, permutation), mix, permutation


def _pose(jaw: tuple[float, float, float] = (0.25, 0.04, -0.03)) -> np.ndarray:
    pose = np.zeros((5, 3))
    pose[0] = [0.1, -0.2, 0.05]  # head rotation and gaze are copied, never solved
    pose[2] = jaw
    pose[3] = [0.05, 0.1, 0.0]
    pose[4] = [0.05, 0.12, 0.0]
    return pose


def _copy_pair(source: FaceModel, reparameterised: tuple) -> tuple[FaceModel, Correspondence]:
    target, _, permutation = reparameterised
    # Source vertex i is target vertex inverse[i]: the correspondence must undo the shuffle.
    return target, Correspondence.shared_vertices(np.arange(source.n_verts), np.argsort(permutation))


# ---------------------------------------------------------------- the forward model at points


def test_point_model_matches_forward(source: FaceModel) -> None:
    rng = np.random.default_rng(0)
    faces = rng.integers(0, len(source.faces), 30)
    bary = rng.dirichlet(np.ones(3), 30)
    points = SurfacePoints(source.faces[faces].astype(np.int64), bary, np.arange(30))
    shape, expression = rng.normal(0, 1, source.n_shape), rng.normal(0, 1, K)
    jaw, eyelids = np.array([0.3, -0.1, 0.05]), np.array([0.4, 0.9])
    pose = np.zeros((5, 3))
    pose[2] = jaw
    reference = points.positions(forward(source, shape, expression, pose, eyelids).vertices)
    evaluated = PointModel(source, points).evaluate(shape, expression, jaw, eyelids)
    assert np.abs(evaluated - reference).max() < 1e-12


def test_jacobians_match_finite_differences(source: FaceModel) -> None:
    rng = np.random.default_rng(1)
    model = PointModel(source, SurfacePoints.at_vertices(rng.choice(source.n_verts, 40, replace=False)))
    expression, jaw = rng.normal(0, 1, K), np.array([0.35, 0.1, -0.07])
    shaped, joint = model.shaped(expression=expression)
    _, jaw_jacobian = model.posed_with_jacobian(shaped, joint, jaw)
    h = 1e-6
    numeric = np.stack([(model.posed(shaped, joint, jaw + h * e) - model.posed(shaped, joint, jaw - h * e)) / (2 * h)
                        for e in np.eye(3)], axis=-1)
    assert np.abs(jaw_jacobian - numeric).max() < 1e-8 * np.abs(numeric).max()
    numeric_expression = np.stack([(model.evaluate(expression=expression + h * e, jaw=jaw)
                                    - model.evaluate(expression=expression - h * e, jaw=jaw)) / (2 * h)
                                   for e in np.eye(K)], axis=-1)
    analytic = model.expression_jacobian(jaw)
    assert np.abs(analytic - numeric_expression).max() < 1e-8 * np.abs(numeric_expression).max()


def test_cholesky_solve_agrees_with_numpy() -> None:
    rng = np.random.default_rng(5)
    half = rng.normal(size=(103, 103))
    matrix, rhs = half @ half.T + 1e-3 * np.eye(103), rng.normal(size=103)
    assert np.allclose(cholesky_solve(matrix, rhs), np.linalg.solve(matrix, rhs), rtol=1e-8, atol=1e-8)


# ---------------------------------------------------------------- recovery on a re-parameterised copy


def test_recovers_mixed_coefficients_and_jaw(source: FaceModel, reparameterised: tuple) -> None:
    target, mix, _ = reparameterised
    target, correspondence = _copy_pair(source, reparameterised)
    retargeter = Retargeter(source, target, correspondence, regularisation=1e-12, jaw_regularisation=1e-12,
                            tolerance=1e-14, max_iterations=30)
    assert retargeter.scale == pytest.approx(1.0, abs=1e-12)
    rng = np.random.default_rng(2)
    for _ in range(3):
        psi = rng.normal(0, 1, K)
        pose, eyelids = _pose(), np.array([0.6, 0.3])
        result = retargeter.retarget(psi, pose, eyelids)
        # The target's component j is sum_k old_k mix[k, j]: the same face needs mix^-1 psi.
        expected = np.linalg.solve(mix, psi)
        assert np.abs(result.expression - expected).max() < 1e-6 * np.abs(expected).max()
        assert np.abs(result.pose[2] - pose[2]).max() < 1e-8
        # Head rotation, gaze and eyelids are copied.
        assert np.array_equal(result.pose[[0, 1, 3, 4]], pose[[0, 1, 3, 4]])
        assert np.array_equal(result.eyelids, eyelids)
        # The whole meshes agree, through the reference forward model, vertex for vertex.
        _, _, permutation = reparameterised
        source_mesh = forward(source, None, psi, pose, eyelids).vertices
        target_mesh = forward(target, None, result.expression, result.pose, result.eyelids).vertices
        assert np.abs(target_mesh - source_mesh[permutation]).max() < 1e-9
        assert result.residual < 1e-10 and result.displacement > 1e-3


def test_jaw_copy_is_one_linear_solve(source: FaceModel, reparameterised: tuple) -> None:
    target, mix, _ = reparameterised
    target, correspondence = _copy_pair(source, reparameterised)
    retargeter = Retargeter(source, target, correspondence, regularisation=1e-12, jaw="copy")
    psi, pose = np.random.default_rng(3).normal(0, 1, K), _pose()
    result = retargeter.retarget(psi, pose)
    assert result.iterations == 1
    assert np.array_equal(result.pose, pose)
    expected = np.linalg.solve(mix, psi)
    assert np.abs(result.expression - expected).max() < 1e-6 * np.abs(expected).max()


def test_noise_stays_bounded_and_the_regulariser_shrinks(source: FaceModel, reparameterised: tuple) -> None:
    target, mix, _ = reparameterised
    target, correspondence = _copy_pair(source, reparameterised)
    rng = np.random.default_rng(4)
    psi, pose = rng.normal(0, 1, K), _pose()
    expected = np.linalg.solve(mix, psi)
    sigma = 2e-4  # 0.2 mm per coordinate, about 3% of the displacement
    norms, errors = [], []
    for regularisation in (1e-8, 1e-3, 1e-1, 10.0):
        retargeter = Retargeter(source, target, correspondence, regularisation=regularisation,
                                jaw_regularisation=regularisation)
        goal = retargeter.goal(psi, pose) + rng.normal(0, sigma, retargeter.target_neutral.shape)
        result = retargeter.fit(goal, pose)
        norms.append(np.linalg.norm(result.expression))
        errors.append(np.linalg.norm(result.expression - expected) / np.linalg.norm(expected))
        assert np.all(np.isfinite(result.expression))
        if regularisation <= 1e-3:  # a weak ridge leaves about the noise, no more (a strong one adds bias)
            assert result.residual < 1.2 * sigma * np.sqrt(3)
    assert errors[0] < 0.05 and abs(norms[0] / np.linalg.norm(expected) - 1) < 0.05
    assert all(a > b for a, b in zip(norms, norms[1:], strict=False)), norms  # stronger ridge, smaller coefficients
    # Pure noise and no expression: the regulariser keeps the answer near neutral.
    retargeter = Retargeter(source, target, correspondence)
    noise_only = retargeter.fit(retargeter.target_neutral + rng.normal(0, sigma, retargeter.target_neutral.shape))
    assert np.linalg.norm(noise_only.expression) < 0.1 * np.linalg.norm(expected)
    assert np.abs(noise_only.pose[2]).max() < 0.02


# ---------------------------------------------------------------- open head -> FLAME-format head


@pytest.fixture(scope="module")
def open_head() -> tuple:
    return load_default_head()


@pytest.fixture(scope="module")
def flame_head(flame_npz: Path) -> FaceModel:
    return load_face_model(flame_npz)


@pytest.fixture(scope="module")
def embedding(tmp_path_factory: pytest.TempPathFactory, open_head: tuple, flame_head: FaceModel) -> Path:
    head, mapping = open_head
    ids = default_embedding_ids()
    faces, bary = open_head_embedding(landmarks(head, mapping), flame_head, ids)
    return write_embedding(tmp_path_factory.mktemp("embedding") / "mediapipe_landmark_embedding.npz", faces, bary, ids)


def test_open_head_drives_a_flame_head_through_its_embedding(open_head: tuple, flame_head: FaceModel,
                                                            embedding: Path) -> None:
    head, mapping = open_head
    correspondence = Correspondence.open_head_to_flame(embedding, flame_head)
    assert len(correspondence) == 105
    retargeter = Retargeter(head, flame_head, correspondence)
    report = []
    for emotion in EMOTIONS[1:]:
        params = mapping.to_params(emotion_weights(emotion))
        result = retargeter.retarget(params.expression, params.pose, params.eyelids)
        goal = retargeter.goal(params.expression, params.pose, params.eyelids)
        # Checked through the reference forward model, at the embedding's points.
        moved = correspondence.target.positions(
            forward(flame_head, None, result.expression, result.pose * [[0], [0], [1], [0], [0]],
                    result.eyelids).vertices) - retargeter.target_neutral
        wanted = goal - retargeter.target_neutral
        cosine = float(np.sum(moved * wanted) / (np.linalg.norm(moved) * np.linalg.norm(wanted)))
        report.append(f"{emotion}: residual {result.residual * 1e3:.2f} of {result.displacement * 1e3:.2f} mm, "
                      f"cos {cosine:.2f}")
        # The fixture's basis is 21 smooth (quadratic) fields, far poorer than FLAME's, on a coarse
        # ellipsoid: the target moves its landmarks the source's way and closes part of the gap, it
        # cannot match local motions (disgust's nose and lip: cos 0.19) the way FLAME's basis can.
        assert result.residual < 0.99 * result.displacement, report
        assert cosine > 0.15, report
        assert np.abs(result.expression).max() < 20, report
    print("\n".join(report))
    jaw_open = np.zeros(len(ARKIT_NAMES))
    jaw_open[ARKIT_NAMES.index("jawOpen")] = 1.0
    params = mapping.to_params(jaw_open)
    result = retargeter.retarget(params.expression, params.pose, params.eyelids)
    assert result.pose[2, 0] > 0.05  # the jaw opens, about FLAME's x axis, as the source's does


# ---------------------------------------------------------------- the embedding file


def test_embedding_points_sit_on_the_named_faces(flame_head: FaceModel, embedding: Path) -> None:
    points = load_mediapipe_embedding(embedding, flame_head)
    with np.load(embedding) as raw:
        faces, bary, ids = raw["lmk_face_idx"], raw["lmk_b_coords"], raw["landmark_indices"]
    expected = np.einsum("nk,nkd->nd", bary, flame_head.v_template[flame_head.faces[faces]])
    assert np.allclose(points.positions(flame_head.v_template), expected)
    assert np.array_equal(points.labels, ids)


def _bad_embedding(tmp_path: Path, name: str, **override: object) -> Path:
    ids = np.arange(0, 210, 2)
    return write_embedding(tmp_path / name, np.arange(105), np.full((105, 3), 1 / 3), ids, **override)


@pytest.mark.parametrize(("override", "fragment"), [
    ({"lmk_b_coords": None}, "lacks the key(s) lmk_b_coords"),
    ({"landmark_indices": None, "lmk_face_idx": None}, "lacks the key(s) lmk_face_idx, landmark_indices"),
    ({"lmk_b_coords": np.full((105, 2), 0.5)}, "expected (N,), (N, 3), (N,)"),
    ({"lmk_face_idx": np.arange(104)}, "expected (N,), (N, 3), (N,)"),
    ({"lmk_face_idx": np.zeros((105, 1), dtype=np.uint32)}, "expected (N,), (N, 3), (N,)"),
    ({"lmk_face_idx": np.full(105, 10**6)}, "refers to faces outside"),
    ({"landmark_indices": np.arange(105) + 400}, "not distinct MediaPipe ids"),
    ({"landmark_indices": np.zeros(105, dtype=np.int64)}, "not distinct MediaPipe ids"),
    ({"lmk_face_idx": np.linspace(0, 100, 105)}, "non-integer indices"),
    ({"lmk_b_coords": np.full((105, 3), 0.5)}, "do not sum to 1"),
    ({"lmk_b_coords": np.full((105, 3), np.nan)}, "not finite"),
    ({"lmk_face_idx": np.array([None] * 105, dtype=object)}, "cannot be read safely"),
])
def test_bad_embedding_files_name_the_file(tmp_path: Path, flame_head: FaceModel, override: dict,
                                           fragment: str) -> None:
    path = _bad_embedding(tmp_path, "bad.npz", **override)
    with pytest.raises(LandmarkEmbeddingError) as caught:
        load_mediapipe_embedding(path, flame_head)
    assert str(path) in str(caught.value) and fragment in str(caught.value)
    assert str(caught.value).startswith("Landmark embedding ")


def test_missing_and_unreadable_embedding_files(tmp_path: Path, flame_head: FaceModel) -> None:
    missing = tmp_path / "nowhere" / "mediapipe_landmark_embedding.npz"
    with pytest.raises(LandmarkEmbeddingError, match="does not exist") as caught:
        Correspondence.open_head_to_flame(missing, flame_head)
    assert str(missing) in str(caught.value)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(LandmarkEmbeddingError, match="truncated or not an .npz"):
        load_mediapipe_embedding(garbage, flame_head)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(LandmarkEmbeddingError, match="single array"):
        load_mediapipe_embedding(single, flame_head)
    with pytest.raises(LandmarkEmbeddingError, match="is not a file"):
        load_mediapipe_embedding(tmp_path, flame_head)


# ---------------------------------------------------------------- correspondences


def test_correspondences_pair_by_label_and_check_ranges(source: FaceModel) -> None:
    mediapipe = open_head_landmarks()
    assert np.array_equal(mediapipe.vertices[:, 0], np.arange(478))
    some = SurfacePoints.at_vertices([5, 6, 7], labels=[30, 10, 20])
    pair = Correspondence.by_label(open_head_landmarks([10, 20, 40]), some)
    assert pair.target.labels.tolist() == [10, 20] and pair.source.vertices[:, 0].tolist() == [10, 20]
    with pytest.raises(ValueError, match="share no label"):
        Correspondence.by_label(open_head_landmarks([1]), some)
    with pytest.raises(ValueError, match="MediaPipe landmark ids"):
        open_head_landmarks([478])
    with pytest.raises(ValueError, match="outside"):
        Retargeter(source, source, Correspondence.shared_vertices([0, source.n_verts]))
    with pytest.raises(ValueError, match="positive"):
        Retargeter(source, source, Correspondence.shared_vertices(np.arange(10)), regularisation=0.0)


# ---------------------------------------------------------------- ARKit-named rigs


@pytest.mark.parametrize(("name", "unit"), [
    ("jawOpen", "jawOpen"), ("JawOpen", "jawOpen"), ("jaw_open", "jawOpen"), ("JAW-OPEN", "jawOpen"),
    ("jaw open", "jawOpen"), ("Face.jawOpen", "jawOpen"), ("blendShape1.jawOpen", "jawOpen"),
    ("head_geo:blendShape1.JawOpen", "jawOpen"),
    ("eyeBlinkLeft", "eyeBlinkLeft"), ("EyeBlinkLeft", "eyeBlinkLeft"), ("eyeBlink_L", "eyeBlinkLeft"),
    ("eyeBlink.L", "eyeBlinkLeft"), ("Face.eyeBlink.R", "eyeBlinkRight"), ("eye_blink_left", "eyeBlinkLeft"),
    ("EYE_BLINK_R", "eyeBlinkRight"), ("eyeBlink-Right", "eyeBlinkRight"),
    ("mouthSmile_L", "mouthSmileLeft"), ("MouthSmileRight", "mouthSmileRight"), ("mouth_L", "mouthLeft"),
    ("jawRight", "jawRight"), ("eyeLookInLeft", "eyeLookInLeft"), ("TongueOut", "tongueOut"),
    ("BlendShape.CheekPuff", "cheekPuff"), ("browInnerUp", "browInnerUp"), ("mouthFunnel", "mouthFunnel"),
])
def test_arkit_names_in_every_convention(name: str, unit: str) -> None:
    assert match_arkit_names([name]) == {unit: name}


@pytest.mark.parametrize("name", [
    "Basis", "exp_000", "Exp1", "eyeBlink",  # ARKit blinks are sided
    "mouthSmile",  # Ready Player Me's combined smile is not an ARKit unit
    "browInnerUpLeft", "cheekPuff_L",  # midline units have no sides
    "jawOpen.001", "jawOpen2", "jawOpenWide", "mouthClosed", "eyeBlinkL",  # a bare L is not a side
    "L_eyeBlink", "Left_eyeBlink", "eyeBlink_Center", "eyeBlinkLeftRight", "", "   ", "jaw",
    "mouthFunne_L",
])
def test_names_that_must_not_match(name: str) -> None:
    report = match_arkit_report([name])
    assert report.matched == {} and report.unmatched == (name,)


def test_match_report_lists_missing_and_ambiguous_units() -> None:
    names = ["Basis", "jawOpen", "JAW_OPEN", "eyeBlink_L", "EyeBlinkLeft", "mouth_smile_r", "mouthSmileRight.001"]
    report = match_arkit_report(names)
    # An exact ARKit spelling wins a tie; otherwise the unit is reported, not guessed.
    assert report.matched == {"jawOpen": "jawOpen", "mouthSmileRight": "mouth_smile_r"}
    assert report.ambiguous == {"eyeBlinkLeft": ("eyeBlink_L", "EyeBlinkLeft")}
    assert report.unmatched == ("Basis", "mouthSmileRight.001")
    assert len(report.missing) == len(ARKIT_NAMES) - 3 and "eyeBlinkLeft" not in report.missing
    assert arkit_key("Face.eyeBlink.L") == ("eyeblink", "left")


def test_values_for_an_arkit_rig_from_weights_and_from_head_parameters(open_head: tuple) -> None:
    head, mapping = open_head
    units = (*ARKIT_NAMES[::2], "jawOpen")  # a rig with some of the units, in VRM's spelling
    rig = ["Basis", *(f"Face.{name[0].upper()}{name[1:]}" for name in units), "extraCorrective"]
    matched = match_arkit_names(rig)
    assert len(matched) == len(units)
    weights = emotion_weights("surprise")
    values = arkit_key_values(weights, matched)
    assert set(values) == set(matched.values())
    for unit, key in matched.items():
        assert values[key] == pytest.approx(weights[ARKIT_NAMES.index(unit)])
    # From the open head's parameters: the head's own ARKit table converts them back.
    from_params = arkit_key_values(mapping.to_params(weights), matched, mapping)
    assert from_params == pytest.approx(values, abs=1e-9)
    assert from_params[matched["jawOpen"]] == pytest.approx(0.5)  # surprise opens the jaw (a joint on the head)
    with pytest.raises(ValueError, match="ArkitMapping"):
        arkit_key_values(mapping.to_params(weights), matched)
    with pytest.raises(ValueError, match="52 ARKit weights"):
        arkit_key_values(np.zeros(51), matched)
