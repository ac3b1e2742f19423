"""Perception (issue 3) on the real astronaut photo, its transforms and a generated corpus of
awkward and broken inputs. Real ONNX Runtime sessions throughout; nothing is mocked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from perception_fixtures import (
    ROOT,
    astronaut,
    bad_files,
    cmyk_jpeg,
    exif_rotated_jpeg,
    paste,
    write,
)

from inference.errors import FileProblem, ImageError
from inference.perception.crop import Roi, roi_from_landmarks, unproject, warp
from inference.perception.image import load_image
from inference.perception.pipeline import NoFace, Perception, PerceptionResult, Tracker

# Landmarks that must lie inside the detector's box on a frontal face: eye corners, nose tip, mouth corners.
CORE = [33, 133, 362, 263, 1, 61, 291]


@pytest.fixture(scope="module")
def perception() -> Perception:
    return Perception()


@pytest.fixture(scope="module")
def reference(perception: Perception) -> np.ndarray:
    result = perception.run(astronaut())
    return result.faces[0].landmarks_px


def mean_error(found: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(found[:, :2] - expected[:, :2], axis=1).mean())


def test_astronaut_one_smiling_face(perception: Perception) -> None:
    result = perception.run(ROOT / "inference" / "samples" / "astronaut.jpg")
    assert isinstance(result, PerceptionResult) and not isinstance(result, NoFace)
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.score > 0.8 and face.presence > 0.9
    assert face.landmarks_px.shape == (478, 3)
    x0, y0, x1, y1 = face.bbox
    assert 150 < x0 < x1 < 300 and 60 < y0 < y1 < 200  # the astronaut's face, not the flag or the suit
    core = face.landmarks_px[CORE]
    assert np.all((core[:, 0] > x0) & (core[:, 0] < x1) & (core[:, 1] > y0) & (core[:, 1] < y1))
    # The whole mesh lies in the landmark crop, and the irises (468-477) sit between the eye corners.
    assert np.all(np.abs(face.landmarks_px[:, :2] - [face.roi.x_center, face.roi.y_center]) < face.roi.width / 2)
    assert face.landmarks_px[33, 0] < face.landmarks_px[468, 0] < face.landmarks_px[133, 0]
    assert face.blendshapes["mouthSmileLeft"] > 0.6 and face.blendshapes["mouthSmileRight"] > 0.6
    assert face.blendshapes["jawOpen"] < 0.3 and face.blendshapes["eyeBlinkLeft"] < 0.5
    assert len(face.blendshapes) == 52
    rotation = face.matrix[:3, :3]
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-6)
    assert np.degrees(np.arccos(np.clip(rotation[2, 2], -1, 1))) < 30  # facing the camera
    assert -120 < face.matrix[2, 3] < -20  # a head some 20-120 cm in front of MediaPipe's camera
    assert result.providers and result.providers[-1] == "CPU"


@pytest.mark.parametrize("angle", [-45, 20, 40])
def test_landmarks_follow_rotation(perception: Perception, reference: np.ndarray, angle: float) -> None:
    matrix = cv2.getRotationMatrix2D((256, 256), angle, 1.0)
    image = cv2.warpAffine(astronaut(), matrix, (512, 512))
    face = perception.run(image).faces[0]
    assert mean_error(face.landmarks_px, reference[:, :2] @ matrix[:, :2].T + matrix[:, 2]) < 2.0


@pytest.mark.parametrize("scale", [0.5, 1.7])
def test_landmarks_follow_scale(perception: Perception, reference: np.ndarray, scale: float) -> None:
    image = cv2.resize(astronaut(), None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    face = perception.run(image).faces[0]
    assert mean_error(face.landmarks_px, (reference + 0.5) * scale - 0.5) < 1.5 * max(scale, 1)


def test_landmarks_follow_crop_noise_and_jpeg(perception: Perception, reference: np.ndarray) -> None:
    image = astronaut()
    cropped = perception.run(image[40:360, 100:420]).faces[0]
    assert mean_error(cropped.landmarks_px, reference - [100, 40, 0]) < 1.5
    noisy = np.clip(image + np.random.default_rng(3).normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    assert mean_error(perception.run(noisy).faces[0].landmarks_px, reference) < 1.5
    recompressed = cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 20])[1], cv2.IMREAD_UNCHANGED)
    assert mean_error(perception.run(recompressed).faces[0].landmarks_px, reference) < 1.5


def test_mirror_image_mirrors_landmarks_and_pose(perception: Perception, reference: np.ndarray) -> None:
    image = astronaut()
    straight = perception.run(image).faces[0]
    mirrored = perception.run(np.ascontiguousarray(image[:, ::-1])).faces[0]
    # Mirroring swaps the subject's sides: the left eye corner lands where the right one was.
    for a, b in [(33, 263), (263, 33), (61, 291), (1, 1), (152, 152)]:
        assert abs((511 - mirrored.landmarks_px[a, 0]) - reference[b, 0]) < 2.0
        assert abs(mirrored.landmarks_px[a, 1] - reference[b, 1]) < 2.0
    yaw = np.arctan2(straight.matrix[0, 2], straight.matrix[2, 2])
    mirrored_yaw = np.arctan2(mirrored.matrix[0, 2], mirrored.matrix[2, 2])
    assert abs(yaw + mirrored_yaw) < np.radians(2)
    assert abs(mirrored.blendshapes["mouthSmileLeft"] - straight.blendshapes["mouthSmileRight"]) < 0.1


def test_crop_round_trip() -> None:
    """The shared crop: a point warped into the crop and un-projected lands where it started."""
    image = np.zeros((300, 400, 3), np.uint8)
    cv2.circle(image, (250, 120), 3, (255, 255, 255), -1)
    roi = Roi(230, 140, 120, 120, rotation=0.6)
    crop = warp(image, roi, (256, 256)).astype(float)[:, :, 0]
    ys, xs = np.nonzero(crop > 0)
    centre = np.array([[np.average(xs, weights=crop[ys, xs]), np.average(ys, weights=crop[ys, xs])]])
    np.testing.assert_allclose(unproject(centre, roi, (256, 256))[0], [250, 120], atol=0.6)
    tracked = roi_from_landmarks(np.array([[0, 0, 0]] * 33 + [[10, 10, 0]] + [[20, 0, 0]] * 229 + [[30, 10, 0]]
                                          + [[40, 20, 0]] * 214, float))
    assert tracked.width == tracked.height == pytest.approx(60.0) and tracked.rotation == pytest.approx(0.0)


def test_huge_image_keeps_full_resolution_coordinates(perception: Perception, reference: np.ndarray) -> None:
    scale = 10.0  # 5120 x 5120: detection runs on a shrunk copy, landmarks come back in these pixels
    huge = cv2.resize(astronaut(), None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    face = perception.run(huge).faces[0]
    assert mean_error(face.landmarks_px, (reference + 0.5) * scale - 0.5) < 1.5 * scale
    assert face.blendshapes["mouthSmileLeft"] > 0.6


def test_tiny_face_in_a_large_frame(perception: Perception) -> None:
    small = cv2.resize(astronaut(), (200, 200), interpolation=cv2.INTER_AREA)  # face about 40 px wide
    frame = paste((1200, 1600), (small, 1250, 850))
    result = perception.run(frame)
    assert len(result.faces) == 1
    x0, y0, x1, y1 = result.faces[0].bbox
    assert 1250 < x0 < x1 < 1450 and 850 < y0 < y1 < 1050


def test_two_faces_largest_first(perception: Perception) -> None:
    big = astronaut()
    small = cv2.resize(big, (360, 360), interpolation=cv2.INTER_AREA)
    frame = paste((512, 900), (big, 0, 0), (small, 530, 100))
    result = perception.run(frame)
    assert len(result.faces) == 2
    first, second = result.faces
    assert first.bbox[2] < 512 < second.bbox[0]
    assert (first.bbox[2] - first.bbox[0]) > (second.bbox[2] - second.bbox[0])
    assert all(face.blendshapes["mouthSmileRight"] > 0.5 for face in result.faces)
    assert len(Perception(max_faces=1, detector=perception.detector, landmarker=perception.landmarker,
                          blendshapes=perception.blendshapes).run(frame).faces) == 1


def test_no_face_is_a_result(perception: Perception) -> None:
    for image in (np.full((480, 640, 3), 90, np.uint8),
                  np.random.default_rng(1).integers(0, 255, (300, 300, 3), dtype=np.uint8)):
        result = perception.run(image)
        assert isinstance(result, NoFace) and result.faces == []
        assert result.to_json()["faces"] == []


def test_awkward_files_load_upright_in_rgb(tmp_path: Path, perception: Perception, reference: np.ndarray) -> None:
    image = astronaut()
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    files = {
        "exif": exif_rotated_jpeg(tmp_path / "sideways.jpg", image),
        "cmyk": cmyk_jpeg(tmp_path / "cmyk.jpg", image),
        "png16": write(tmp_path / "deep.png", image.astype(np.uint16) * 257),
        "rgba": write(tmp_path / "alpha.png", rgba),
        "gray": write(tmp_path / "gray.png", gray),
    }
    for name, path in files.items():
        loaded = load_image(path)
        assert loaded.shape == (512, 512, 3) and loaded.dtype == np.uint8, name
        assert np.abs(loaded.astype(int) - (gray[:, :, None] if name == "gray" else image)).mean() < 6, name
        face = perception.run(path).faces[0]
        assert mean_error(face.landmarks_px, reference) < 2.5, name
    assert np.array_equal(load_image(image.astype(np.float32) / 255), image)
    assert np.array_equal(load_image(image.astype(np.uint16) * 257), image)
    assert load_image(gray).shape == (512, 512, 3)


def test_bad_files_raise_one_typed_error_naming_the_file(tmp_path: Path) -> None:
    for name, path in bad_files(tmp_path).items():
        with pytest.raises(ImageError) as caught:
            load_image(path)
        message = str(caught.value)
        assert str(path) in message and "\n" not in message, name
        assert isinstance(caught.value, FileProblem) and caught.value.path == str(path)
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))


def test_tracker_follows_then_redetects(perception: Perception, reference: np.ndarray) -> None:
    tracker = Tracker(perception)
    base = paste((512, 640), (astronaut(), 0, 0))
    for step in range(8):
        frame = np.roll(base, 6 * step, axis=1)
        result = tracker.run(frame)
        assert len(result.faces) == 1
        assert mean_error(result.faces[0].landmarks_px, reference + [6 * step, 0, 0]) < 2.0
    assert tracker.detector_runs == 1  # the detector ran on the first frame only
    assert isinstance(tracker.run(np.full_like(base, 128)), NoFace)  # the face leaves: presence drops
    assert tracker.rois == []
    assert len(tracker.run(base).faces) == 1 and tracker.detector_runs == 2  # re-detected on its return


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inference", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_cli_prints_one_json_object() -> None:
    done = run_cli(str(ROOT / "inference" / "samples" / "astronaut.jpg"), "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert set(payload) >= {"faces", "providers"}
    face = payload["faces"][0]
    assert set(face) == {"bbox", "score", "landmarks_px", "blendshapes", "matrix", "units", "head_pose", "expression",
                         "jaw", "eyelids", "gaze", "emotion"}
    assert np.array(face["landmarks_px"]).shape == (478, 3) and np.array(face["matrix"]).shape == (4, 4)
    assert face["blendshapes"]["mouthSmileLeft"] > 0.6
    # The shipped encoder (issues 5, 12) reads the astronaut's smile as happiness, at least half strength,
    # with a visible smile in its ARKit units and in the ICT head's keys they drive.
    assert face["emotion"]["label"] == "happiness" and face["emotion"]["intensity"] >= 0.5
    assert face["units"]["mouthSmileLeft"] > 0.3 and face["units"]["mouthSmileRight"] > 0.3
    assert face["expression"]["mouthSmileLeft"] == pytest.approx(face["units"]["mouthSmileLeft"], abs=1e-4)
    assert payload["model"]["head"]["name"] == "ICT head" and len(payload["model"]["sha256"]) == 64
    only = json.loads(run_cli(str(ROOT / "inference" / "samples" / "astronaut.jpg"), "--perception-only").stdout)
    assert "emotion" not in only["faces"][0] and "model" not in only


def test_cli_fails_with_one_line_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a photo")
    done = run_cli(str(broken), "--json")
    assert done.returncode != 0 and done.stdout == ""
    assert str(broken) in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_cli_reads_many_photos_one_line_each(tmp_path: Path) -> None:
    """Several photos and --photos FOLDER in one process: one JSON line per photo, in order; a
    broken one is reported in its place and the rest finish, exit 1 (issue 12)."""
    astronaut = ROOT / "inference" / "samples" / "astronaut.jpg"
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("b10.jpg", "b2.jpg"):
        shutil.copy(astronaut, folder / name)
    (folder / "notes.txt").write_text("not an image")
    done = run_cli(str(astronaut), "--photos", str(folder), "--perception-only")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(line["image"]).name for line in lines] == ["astronaut.jpg", "b2.jpg", "b10.jpg"]
    assert all(len(line["faces"]) == 1 for line in lines)
    (folder / "b5.jpg").write_text("not a photo")
    done = run_cli("--photos", str(folder), "--perception-only")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1 and len(lines) == 3
    assert str(folder / "b5.jpg") in lines[1]["error"] and "faces" not in lines[1]
    assert len(lines[2]["faces"]) == 1


def test_cli_refuses_a_video_among_photos(tmp_path: Path) -> None:
    astronaut = ROOT / "inference" / "samples" / "astronaut.jpg"
    done = run_cli(str(astronaut), str(tmp_path))
    assert done.returncode == 2 and "alone" in done.stderr
