"""Live capture's worker (issue 14), driven headless with a video file standing in for the camera:
threads, the newest-frame slot, stopping and releasing, recording at the scene's rate, no camera."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sequence_fixtures import blank_frame, moving_frame, write_video

from inference.expression.encoder import ExpressionEncoder
from inference.perception.pipeline import Perception
from inference.sequence.frames import open_source
from inference.sequence.live import CameraError, LiveCapture, parse_camera
from inference.sequence.pipeline import SequencePipeline

N = 20


@pytest.fixture(scope="module")
def networks() -> tuple[Perception, ExpressionEncoder]:
    return Perception(max_faces=1), ExpressionEncoder()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = [moving_frame(i, N) for i in range(N)]
    frames[12:14] = [blank_frame(), blank_frame()]
    return write_video(tmp_path_factory.mktemp("live") / "camera.avi", frames, fps=25.0)


def wait_until_ended(capture: LiveCapture, limit_s: float = 60.0) -> None:
    """Until the file is read and its last frame handled (both threads end by themselves then)."""
    began = time.perf_counter()
    while capture.running:
        assert time.perf_counter() - began < limit_s, "the capture did not finish"
        time.sleep(0.02)


def test_every_frame_matches_apply_to_sequence(networks, clip) -> None:
    """Unpaced, no frame is dropped, and each frame's expression is the sequence pipeline's."""
    perception, encoder = networks
    capture = LiveCapture(str(clip), perception, encoder, pace=False)
    capture.start_recording()
    threads = threading.active_count()
    capture.start()
    assert threading.active_count() == threads + 2  # the camera thread and the tracking worker
    wait_until_ended(capture)
    capture.stop()
    assert capture.read == N and capture.dropped == 0 and capture.error is None
    assert not capture.running and capture._capture is None  # threads ended, camera released
    raw = capture.stop_recording(25.0)
    reference = SequencePipeline(perception=perception, encoder=encoder).run(open_source(clip))
    assert raw.found.tolist() == reference.found.tolist() and len(raw.frames) == N
    found = reference.found
    assert np.abs(raw.expression[found] - reference.expression[found]).max() < 1e-4
    assert np.abs(raw.jaw[found] - reference.jaw[found]).max() < 1e-4
    # Issue 13's per-frame head pose and face score too, so Min confidence and calibration treat a
    # recording as they treat a video.
    assert np.abs(raw.head_pose[found] - reference.head_pose[found]).max() < 1e-4
    assert np.abs(raw.score[found] - reference.score[found]).max() < 1e-5 and np.isnan(raw.score[~found]).all()
    assert raw.confident(0.0).found.tolist() == found.tolist()
    # The recording is a raw result like a video's: gap filling and smoothing apply unchanged.
    processed = raw.processed()
    assert np.isfinite(processed.expression).all() and not raw.found[12:14].any()


def test_paced_file_runs_like_a_camera(networks, clip) -> None:
    """Paced at its 25 fps, the file is read in real time; the newest frame is always ready and
    latency is one frame of work, not a queue."""
    perception, encoder = networks
    capture = LiveCapture(str(clip), perception, encoder).start()
    began = time.perf_counter()
    capture.start_recording()
    wait_until_ended(capture)
    elapsed = time.perf_counter() - began
    stats = capture.stats()
    raw = capture.stop_recording(50.0)  # a 50 fps scene: twice the frames, the between ones are gaps
    capture.stop()
    assert elapsed > (N - 2) / 25.0 * 0.9  # not faster than the camera would be
    assert 0 < stats["latency_ms"] < 1000 and stats["read"] == N
    assert raw is not None and raw.fps == 50.0 and len(raw.frames) >= 2 * raw.source["captured"] - 1
    assert raw.found.sum() <= raw.source["captured"]


def test_stop_is_prompt_and_idempotent(networks, clip) -> None:
    perception, encoder = networks
    capture = LiveCapture(str(clip), perception, encoder).start()
    time.sleep(0.1)
    began = time.perf_counter()
    capture.stop()
    capture.stop()
    assert time.perf_counter() - began < 2.0 and not capture.running and capture._capture is None
    assert capture.stop_recording(25.0) is None  # nothing was recorded


@pytest.mark.parametrize(("camera", "message"), [
    (97, "Camera '97' is not connected or is in use by another program"),
    ("no-such-camera", "is neither a camera number"),
    ("rtsp://127.0.0.1:1/none", "cannot be opened"),
])
def test_no_camera_is_a_clear_error(networks, camera, message) -> None:
    perception, encoder = networks
    capture = LiveCapture(camera, perception, encoder)
    with pytest.raises(CameraError, match=message):
        capture.start()
    assert not capture.running


def test_camera_names() -> None:
    assert parse_camera("0") == 0 and parse_camera(" 2 ") == 2 and parse_camera(1) == 1
    assert parse_camera("rtsp://host/stream") == "rtsp://host/stream"
