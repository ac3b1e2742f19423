"""The training package (issues 5, 12): strict config, a tiny real training run end to end (data,
one stage of synthetic + real batches, ONNX export checked against PyTorch, metadata, the
inference-side runner), the ICT head's landmark cut, the real-data adapters on fixtures made
here, failure paths that leave nothing half-written, and DDP on two CPU processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inference.errors import FieldsError  # noqa: E402
from inference.expression.encoder import ExpressionEncoder  # noqa: E402
from inference.perception.blendshapes import ARKIT_NAMES  # noqa: E402
from inference.perception.image import load_image  # noqa: E402
from training.adapters import DataError, FeatureCache, load_affectnet, load_unlabelled  # noqa: E402
from training.config import ConfigError, load_config  # noqa: E402
from training.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ASTRONAUT = ROOT / "inference" / "samples" / "astronaut.jpg"
TINY = ["data.train_samples=96", "data.val_samples=48", "epochs=1", "batch_size=32", "real_batch=16",
        "model.hidden=32", "model.layers=1", "data.real=false"]


def test_config_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("loss:\n  units: 3\n  unitz: 4\n")
    with pytest.raises(ConfigError, match=r"run\.yaml': unknown key 'loss\.unitz' \(known in 'loss': .*units"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"Override 'data.samples=3': unknown key 'data.samples'"):
        load_config(None, ["data.samples=3"])
    with pytest.raises(ConfigError, match=r"expected int, got 'many'"):
        load_config(None, ["seed=many"])
    config = load_config(None, ["loss.units=2", "data.train_samples=10", "device=cuda", "lr=1e-3"])
    assert (config.loss.units, config.data.train_samples, config.device, config.lr) == (2.0, 10, "cuda", 1e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    train(load_config(None, [*TINY, f"out={out}"]), log=lambda *_: None)
    return out


def test_tiny_run_writes_a_working_encoder(trained: Path) -> None:
    names = sorted(p.name for p in trained.iterdir() if p.is_file())
    assert names == ["config.yaml", "encoder.json", "encoder.onnx", "encoder.pt", "metrics.json"]
    assert not list(trained.rglob("*.tmp"))
    metadata = json.loads((trained / "encoder.json").read_text())
    assert metadata["onnx_vs_torch_max_abs"] <= 1e-4
    assert metadata["head"]["name"] == "ICT head" and len(metadata["head"]["sha256"]) == 64
    assert metadata["head"]["file"] == "ict_head.npz" and metadata["units"] == list(ARKIT_NAMES)
    assert [o["name"] for o in metadata["outputs"]] == ["units", "emotion_logits", "intensity"]
    assert set(metadata["metrics"]) >= {"units_mae", "expression_landmark_mm", "jaw_deg", "eyelid_mae",
                                        "emotion_accuracy_strong", "intensity_mae"}
    encoder = ExpressionEncoder(trained / "encoder.onnx")
    from inference.perception.pipeline import Perception

    result = Perception().run(ASTRONAUT)
    face = result.faces[0]
    prediction = encoder.predict_face(face)
    assert list(prediction.units) == list(ARKIT_NAMES) and all(0 <= v <= 1 for v in prediction.units.values())
    # The head's parameters follow from the units through its ARKit table: the keys are the units.
    assert all(prediction.expression[n] == pytest.approx(prediction.units[n], abs=1e-5) for n in prediction.expression)
    assert prediction.eyelids[0] == pytest.approx(prediction.units["eyeBlinkLeft"], abs=1e-5)
    assert prediction.head_pose is not None and np.linalg.norm(prediction.head_pose) < 0.6
    assert 0 <= prediction.intensity <= 1 and 0 <= prediction.eyelids.min() and prediction.eyelids.max() <= 1
    assert abs(sum(prediction.emotion_probs.values()) - 1) < 1e-5


def test_evaluate_command(trained: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "training", "evaluate", str(trained)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["expression_landmark_mm"] > 0


def test_damaged_encoder_is_refused(trained: Path, tmp_path: Path) -> None:
    for name in ("encoder.onnx", "encoder.json"):
        shutil.copy(trained / name, tmp_path / name)
    data = bytearray((tmp_path / "encoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "encoder.onnx").write_bytes(bytes(data))
    with pytest.raises(FieldsError, match=r"encoder\.onnx' does not match the checksum"):
        ExpressionEncoder(tmp_path / "encoder.onnx")
    (tmp_path / "encoder.json").unlink()
    with pytest.raises(FieldsError, match=r"encoder\.json' is missing"):
        ExpressionEncoder(tmp_path / "encoder.onnx")


def test_bad_data_source_leaves_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_text("not,an,affectnet,file\n")
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "training", "train", f"data.affectnet_csv={bad}", f"out={out}",
                             *TINY],
                            cwd=ROOT, capture_output=True, text=True)
    # A file that cannot be used is a failure (1), not a usage error (2), in both CLIs (issue 10).
    assert result.returncode == 1 and str(bad) in result.stderr and result.stderr.count("\n") == 1
    assert not (out / "encoder.onnx").exists() and not (out / "encoder.pt").exists()


def test_synthetic_data_is_deterministic() -> None:
    from training.config import DataConfig
    from training.ict import IctLandmarks
    from training.synthetic import generate

    head = IctLandmarks()
    first, second = (generate(head, 8, seed=3, config=DataConfig()) for _ in range(2))
    np.testing.assert_array_equal(first.features, second.features)
    assert not np.array_equal(first.features, generate(head, 8, seed=4, config=DataConfig()).features)


def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = subprocess.run([sys.executable, "-m", "training", "train", "--device", "cuda", *TINY], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "torch sees no CUDA GPU" in result.stderr


def test_unknown_config_key_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "training", "train", "loss.unitz=1"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "unknown key 'loss.unitz'" in result.stderr


# Real-data adapters, on fixtures made from the astronaut photo.
def _frame(index: int) -> np.ndarray:
    image = load_image(ASTRONAUT)
    matrix = cv2.getRotationMatrix2D((256, 256), 3.0 * index, 1.0 - 0.03 * index)
    return cv2.warpAffine(image, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT)


def _save(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image[:, :, ::-1])
    return path


def test_affectnet_adapter(tmp_path: Path) -> None:
    rows = ["subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"]
    for i, (code, valence, arousal) in enumerate([(1, 0.8, 0.3), (0, 0.0, 0.0), (9, 0.1, 0.1), (6, -0.6, -2)]):
        _save(tmp_path / "images" / f"{i}.jpg", _frame(i))
        rows.append(f"images/{i}.jpg,0,0,512,512,,{code},{valence},{arousal}")
    _save(tmp_path / "images" / "blank.jpg", np.full((256, 256, 3), 127, np.uint8))
    rows.append("images/blank.jpg,0,0,256,256,,2,-0.5,0.5")
    csv_path = tmp_path / "training.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    data = load_affectnet(csv_path, FeatureCache(tmp_path / "cache"))
    assert data.emotion is not None and data.intensity is not None
    assert data.emotion.tolist() == [1, 0, 6]
    np.testing.assert_allclose(data.intensity[:2], [np.hypot(0.8, 0.3), 0.0], atol=1e-6)
    assert np.isnan(data.intensity[2])  # arousal -2: unknown, the class still trains
    assert data.skipped == {"not an emotion (codes 8-10)": 1, "no face": 1}
    csv_path.write_text("path,expression\n")
    with pytest.raises(DataError, match=r"lacks the column\(s\) subDirectory_filePath, valence, arousal"):
        load_affectnet(csv_path, FeatureCache(tmp_path / "cache"))


def test_unlabelled_adapter_reads_images_and_video(tmp_path: Path) -> None:
    folder = tmp_path / "footage"
    _save(folder / "still.png", _frame(1))
    writer = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (512, 512))
    for i in range(6):
        writer.write(np.ascontiguousarray(_frame(i)[:, :, ::-1]))
    writer.release()
    data = load_unlabelled(folder, FeatureCache(tmp_path / "cache"), frame_step=3)
    assert data.features.shape == (3, 4046)  # the still and frames 0 and 3
    empty = tmp_path / "empty"
    _save(empty / "blank.png", np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(DataError, match=r"empty' yields no usable face \(1 no face\)"):
        load_unlabelled(empty, FeatureCache(tmp_path / "cache"))


def test_training_mixes_real_sources(tmp_path: Path) -> None:
    unlabelled = tmp_path / "footage"
    for i in range(2):
        _save(unlabelled / f"{i}.jpg", _frame(i))
    out = tmp_path / "run"
    train(load_config(None, [*TINY, f"out={out}", f"data.unlabelled={unlabelled}"]), log=lambda *_: None)
    assert (out / "encoder.onnx").exists()


def test_ddp_on_two_cpu_processes(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29517", "-m", "training",
                             "train", *TINY, f"out={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "encoder.onnx").exists() and json.loads((tmp_path / "metrics.json").read_text())


def test_the_landmark_cut_of_the_ict_head_is_exact() -> None:
    """Training reads the ICT head only at its landmarks, through a cut of ~1,400 vertices plus the
    joints' regression: it must equal the full head's forward at the embedding's points."""
    from inference.head.face_model import load_face_model
    from inference.head.forward import forward
    from inference.retarget.correspondence import load_mediapipe_embedding
    from training.ict import ICT_EMBEDDING, ICT_HEAD, IctLandmarks, TorchIctLandmarks

    head = IctLandmarks()
    full = load_face_model(ICT_HEAD)
    points = load_mediapipe_embedding(ICT_EMBEDDING, full)
    rng = np.random.default_rng(0)
    units, shape = rng.uniform(0, 1, (2, 52)), rng.normal(0, 1, (2, full.n_shape))
    for b in range(2):
        params = head.mapping.to_params(units[b])
        vertices = forward(full, shape[b], params.expression, params.pose, params.eyelids).vertices
        expected = points.positions(vertices)[np.argsort(points.labels)]
        np.testing.assert_allclose(head.landmarks(units[b], shape[b]), expected, atol=1e-12)
        got = TorchIctLandmarks(head)(torch.tensor(units[b:b + 1]).float(), torch.tensor(shape[b:b + 1]).float())
        np.testing.assert_allclose(got[0].numpy() / 100, expected, atol=2e-6)
    assert head.model.n_verts < full.n_verts // 10


def test_appearance_moves_only_the_emotion_logits() -> None:
    """The units and intensity read the geometry alone; a geometry-only input (a synthetic face)
    leaves the appearance term out, and a fresh encoder's term is zero."""
    from inference.expression.features import N_FEATURES, N_GEOMETRY
    from training.model import Encoder

    encoder = Encoder(hidden=32, layers=1).eval()
    faces = torch.randn(4, N_FEATURES)
    fresh = encoder(faces)
    for got, want in zip(encoder(faces[:, :N_GEOMETRY]), fresh, strict=True):
        torch.testing.assert_close(got, want)
    torch.nn.init.normal_(encoder.appearance.weight)
    other = faces.clone()
    other[:, N_GEOMETRY:] += torch.randn(4, N_FEATURES - N_GEOMETRY)
    (units, logits, intensity), (units2, logits2, intensity2) = encoder(faces), encoder(other)
    torch.testing.assert_close(units, units2)
    torch.testing.assert_close(intensity, intensity2)
    assert (logits - logits2).abs().min() > 0
