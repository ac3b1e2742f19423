"""Sequences (issue 7): sources, the tracking pipeline, gaps, smoothing, cache, keyframe data, CLI.

Every clip is generated here from the astronaut photo (tests/sequence_fixtures.py) and runs
through the real ONNX Runtime networks; nothing is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sequence_fixtures import blank_frame, moving_frame, still_frame, write_folder, write_video

from inference.errors import SequenceError
from inference.sequence.frames import FolderSource, VideoSource, natural_key, open_source
from inference.sequence.keyframes import HANDLE_TYPES, INTERPOLATION, fcurve_keys, scene_frames
from inference.sequence.pipeline import SequencePipeline, SequenceResult, load_result, save_result
from inference.sequence.smoothing import OneEuroSettings, fill_gaps, jitter, one_euro

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pipeline() -> SequencePipeline:
    return SequencePipeline()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "take 1.avi"
    return write_video(path, (moving_frame(i, 40) for i in range(40)), fps=25.0)


@pytest.fixture(scope="module")
def gap_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames 0-1 blank, 2-7 the face, 8-11 blank, 12-17 the face."""
    frames = [blank_frame() if i in (0, 1, 8, 9, 10, 11) else moving_frame(i, 18) for i in range(18)]
    folder = tmp_path_factory.mktemp("gaps")
    write_folder(folder, frames)
    return folder


@pytest.fixture(scope="module")
def gap_result(pipeline: SequencePipeline, gap_folder: Path) -> SequenceResult:
    return pipeline.run(open_source(gap_folder))


def test_natural_key_orders_numbers_by_value() -> None:
    names = ["frame10.png", "frame2.png", "Frame1.png", "frame02.png", "frame100.png", "frame9b.png", "frame9a.png"]
    assert sorted(names, key=natural_key) == ["Frame1.png", "frame02.png", "frame2.png", "frame9a.png",
                                              "frame9b.png", "frame10.png", "frame100.png"]
    assert sorted(["shot2_f10", "shot10_f1", "shot2_f9"], key=natural_key) == ["shot2_f9", "shot2_f10", "shot10_f1"]


def test_folder_source_reads_images_in_natural_order(tmp_path: Path) -> None:
    frames = [moving_frame(i, 12) for i in range(12)]
    write_folder(tmp_path, frames)
    (tmp_path / "notes.txt").write_text("not a frame")
    cv2.imwrite(str(tmp_path / ".thumbnail.jpg"), frames[0])  # hidden: ignored
    source = FolderSource(tmp_path, start=1, end=10, step=3)
    assert [p.name for p in source.files[:3]] == ["frame1.jpg", "frame2.jpg", "frame3.jpg"]
    assert source.files[9].name == "frame10.jpg" and len(source.files) == 12
    read = list(source)
    assert [f.number for f in read] == [1, 4, 7, 10] and source.total == 4
    # frame number 10 is the eleventh image, frame11.jpg; compare pixels, not only names
    expected = cv2.cvtColor(cv2.imread(str(tmp_path / "frame11.jpg")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(read[-1].image, expected)


def test_video_source_range_step_and_rate(video: Path) -> None:
    source = VideoSource(video, start=5, end=20, step=5)
    assert source.fps == 25.0 and source.fps_from_source and source.frame_count == 40
    frames = list(source)
    assert [f.number for f in frames] == [5, 10, 15, 20] and source.total == 4
    assert frames[0].image is not None and frames[0].image.shape == (480, 640, 3)
    # Seeking agrees with decoding from the start.
    every = [f for f in VideoSource(video, end=10)]
    assert np.array_equal(every[5].image, frames[0].image)
    assert VideoSource(video, fps=30).fps == 30.0


def test_video_pipeline_tracks_every_frame(pipeline: SequencePipeline, video: Path) -> None:
    before = pipeline.frames_perceived
    result = pipeline.run(open_source(video))
    assert pipeline.frames_perceived - before == 40
    assert result.found.all() and not result.unreadable.any()
    assert result.frames.tolist() == list(range(40)) and result.fps == 25.0
    e = len(pipeline.encoder.expression_names)
    assert result.expression.shape == (40, e) and result.jaw.shape == (40, 3) and result.eyelids.shape == (40, 2)
    assert result.gaze.shape == (40, 2, 3) and result.emotion_probs.shape == (40, 8) and result.intensity.shape == (40,)
    np.testing.assert_allclose(result.emotion_probs.sum(1), 1.0, atol=1e-5)
    # The astronaut smiles in every frame: the batched encoder reads happiness, as photo mode does.
    assert result.emotion_labels.count("happiness") >= 38
    names, matrix = result.channels()
    assert len(names) == matrix.shape[1] == e + 3 + 2 + 6 + 8 + 1 and matrix.dtype == np.float32
    # A frame reads as photo mode reads the same pixels (tracking crops differ slightly from detection).
    frame = next(iter(VideoSource(video, start=0, end=0))).image
    photo = pipeline.perception.run(frame).faces[0]
    expected = pipeline.encoder.predict_face(photo)
    got = result.expression_at(0)
    assert got.emotion == expected.emotion and abs(got.intensity - expected.intensity) < 1e-4
    assert max(abs(got.expression[n] - expected.expression[n]) for n in expected.expression) < 1e-4


def test_batched_encoder_matches_one_frame_at_a_time(pipeline: SequencePipeline, video: Path) -> None:
    batched = pipeline.run(VideoSource(video, end=9))
    single = SequencePipeline(perception=pipeline.perception, encoder=pipeline.encoder, batch=1)
    one = single.run(VideoSource(video, end=9))
    np.testing.assert_allclose(batched.expression, one.expression, atol=1e-5)
    np.testing.assert_allclose(batched.intensity, one.intensity, atol=1e-5)


def test_corrupt_frame_in_a_folder_is_skipped_and_counted(pipeline: SequencePipeline, tmp_path: Path) -> None:
    paths = write_folder(tmp_path, [moving_frame(i, 8) for i in range(8)])
    data = paths[3].read_bytes()
    paths[3].write_bytes(data[: len(data) // 2])  # an interrupted copy: JPEG without its end marker
    result = pipeline.run(open_source(tmp_path))
    assert len(result.frames) == 8 and result.unreadable.tolist() == [i == 3 for i in range(8)]
    assert result.found.tolist() == [i != 3 for i in range(8)]
    assert len(result.problems) == 1 and str(paths[3]) in result.problems[0]
    filled = result.processed(gaps="interpolate", smoothing=None)
    assert np.isfinite(filled.expression).all()


def test_corrupt_frame_in_a_video_is_skipped_and_counted(pipeline: SequencePipeline, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.avi", [moving_frame(i, 10) for i in range(10)])
    data = bytearray(clip.read_bytes())
    # Each MJPG frame is one JPEG in the AVI: wipe the headers of the fifth one after its SOI marker.
    starts = [i for i in range(len(data) - 3) if data[i:i + 3] == b"\xff\xd8\xff"]
    assert len(starts) == 10
    data[starts[4] + 2:starts[4] + 2002] = bytes(2000)
    clip.write_bytes(bytes(data))
    result = pipeline.run(open_source(clip))
    assert result.frames.tolist() == list(range(10)) and result.unreadable.tolist() == [i == 4 for i in range(10)]
    assert result.found.sum() == 9 and str(clip) in result.problems[0] and "Frame 4" in result.problems[0]


def test_mixed_frame_sizes_raise_naming_the_file(pipeline: SequencePipeline, tmp_path: Path) -> None:
    write_folder(tmp_path, [moving_frame(0, 3), moving_frame(1, 3)])
    odd = tmp_path / "frame3.jpg"
    cv2.imwrite(str(odd), cv2.resize(moving_frame(2, 3), (320, 240)))
    with pytest.raises(SequenceError) as error:
        pipeline.run(open_source(tmp_path), cache_dir=tmp_path / "cache")
    assert str(odd) in str(error.value) and "320x240" in str(error.value) and "640x480" in str(error.value)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())  # nothing half-written


def test_unusable_sources_raise_one_sentence_naming_them(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "only_text").mkdir()
    (tmp_path / "only_text" / "readme.txt").write_text("no frames here")
    fake = tmp_path / "clip.mp4"
    fake.write_text("this is not a video\n")
    cases = {empty: "holds no images", tmp_path / "only_text": "holds no images", fake: "cannot be opened",
             tmp_path / "missing.mov": "does not exist"}
    for path, problem in cases.items():
        with pytest.raises(SequenceError) as error:
            open_source(path)
        message = str(error.value)
        assert str(path) in message and problem in message and message.count("\n") == 0, message
    write_folder(tmp_path / "two", [blank_frame(), blank_frame()])
    with pytest.raises(SequenceError, match="has 2 images; the range starts at frame 5"):
        open_source(tmp_path / "two", start=5)
    with pytest.raises(ValueError):
        open_source(tmp_path / "two", step=0)


def test_frames_without_a_face_are_a_mask(gap_result: SequenceResult) -> None:
    expected = [i not in (0, 1, 8, 9, 10, 11) for i in range(18)]
    assert gap_result.found.tolist() == expected and not gap_result.unreadable.any()
    assert np.isnan(gap_result.expression[~gap_result.found]).all()
    assert np.isfinite(gap_result.expression[gap_result.found]).all()


def test_gap_modes(gap_result: SequenceResult) -> None:
    raw = gap_result
    interpolated = raw.processed(gaps="interpolate", smoothing=None)
    held = raw.processed(gaps="hold", smoothing=None)
    left = raw.processed(gaps="leave", smoothing=None)
    # Across the inner gap (frames 8-11) interpolation is linear in time between frames 7 and 12.
    for frame in (8, 9, 10, 11):
        weight = (frame - 7) / 5
        np.testing.assert_allclose(interpolated.intensity[frame],
                                   (1 - weight) * raw.intensity[7] + weight * raw.intensity[12], atol=1e-6)
        np.testing.assert_allclose(held.expression[frame], raw.expression[7], atol=1e-6)
    # Before the first face both filling modes take the first face's values.
    np.testing.assert_allclose(interpolated.jaw[0], raw.jaw[2], atol=1e-6)
    np.testing.assert_allclose(held.jaw[1], raw.jaw[2], atol=1e-6)
    assert np.isnan(left.expression[[0, 1, 8, 11]]).all() and np.isfinite(left.expression[left.found]).all()
    np.testing.assert_allclose(interpolated.emotion_probs.sum(1), 1.0, atol=1e-5)
    # Left gaps are keyless on every curve.
    names, values = left.channels()
    keys = fcurve_keys(left.frames, values, names)
    assert all(k.count == 12 for k in keys) and 9.0 not in keys[0].frames.tolist()


def test_fill_gaps_with_no_face_at_all_is_nan() -> None:
    values = np.zeros((4, 2))
    assert np.isnan(fill_gaps(values, np.zeros(4, bool), "interpolate")).all()
    with pytest.raises(ValueError):
        fill_gaps(values, np.ones(4, bool), "guess")


def test_one_euro_follows_motion_and_restarts_after_a_gap() -> None:
    fps = 25.0
    t = np.arange(100) / fps
    step = np.where(t >= 2.0, 0.5, 0.0)[:, None] + np.zeros((1, 3))
    np.testing.assert_allclose(one_euro(np.full((50, 3), 0.3), t[:50]), 0.3)  # a constant stays put
    smoothed = one_euro(step, t)
    assert abs(smoothed[-1, 0] - 0.5) < 1e-3  # it settles on the new value
    assert smoothed[55, 0] > 0.35  # and is mostly there within 0.2 s (beta opens the cutoff)
    slow = one_euro(step, t, OneEuroSettings(min_cutoff=0.2, beta=0.0))
    assert slow[55, 0] < smoothed[55, 0]  # a lower cutoff without beta lags more
    gapped = step.copy()
    gapped[40:45] = np.nan
    out = one_euro(gapped, t)
    assert np.isnan(out[40:45]).all() and out[45, 0] == gapped[45, 0]  # restarts: no glide from before
    with pytest.raises(ValueError):
        OneEuroSettings(min_cutoff=0.0)


def test_smoothing_reduces_jitter_on_a_still_face(pipeline: SequencePipeline, tmp_path: Path) -> None:
    write_folder(tmp_path, [still_frame(i) for i in range(40)])
    raw = pipeline.run(open_source(tmp_path, fps=25.0))
    assert raw.found.all()
    smoothed = raw.processed()
    for name in ("expression", "intensity", "emotion_probs", "jaw"):
        before, after = jitter(getattr(raw, name)), jitter(getattr(smoothed, name))
        assert after < before / 3, (name, before, after)  # measured about 5x with the defaults
    # Smoothing does not move a still face's mean: the values stay the face's, not the filter's.
    np.testing.assert_allclose(smoothed.expression[10:].mean(0), raw.expression[10:].mean(0), atol=0.01)


def test_cache_hit_runs_no_perception(pipeline: SequencePipeline, gap_folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    before = pipeline.frames_perceived
    first = pipeline.run(open_source(gap_folder), cache_dir=cache)
    assert pipeline.frames_perceived - before == 18 and not first.from_cache
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and files[0].name.startswith("gaps")
    job = pipeline.start(open_source(gap_folder), cache_dir=cache)
    assert job.finished and job.from_cache and job.done == 18
    second = job.result()
    assert pipeline.frames_perceived - before == 18  # nothing perceived again
    for name in ("frames", "found", "expression", "gaze", "emotion_probs", "intensity"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    # Re-applying with other settings works on the cached raw result.
    assert second.processed(gaps="hold").found.tolist() == first.found.tolist()
    # Another range is another key; an edited frame is another key; a damaged file is recomputed.
    assert not pipeline.start(open_source(gap_folder, start=2), cache_dir=cache).finished
    files[0].write_bytes(b"not a zip")
    assert pipeline.load_cached(open_source(gap_folder), cache) is None
    frame = gap_folder / "frame5.jpg"
    stat = frame.stat()
    os.utime(frame, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert pipeline.cache_path(open_source(gap_folder), cache) != files[0]


def test_cancel_keeps_nothing(pipeline: SequencePipeline, video: Path, tmp_path: Path) -> None:
    job = pipeline.start(open_source(video), cache_dir=tmp_path)
    job.step(0.0)  # one frame
    assert 0 < job.done < 40 and not job.finished
    job.cancel()
    assert job.step(1.0) and job.cancelled
    with pytest.raises(RuntimeError, match="cancelled"):
        job.result()
    assert list(tmp_path.iterdir()) == []


def test_job_runs_in_timer_sized_slices(pipeline: SequencePipeline, video: Path) -> None:
    job = pipeline.start(VideoSource(video, end=19))
    slices = 0
    while not job.step(0.02):
        slices += 1
        assert job.eta_s is not None and job.fps > 0 and job.total == 20
    assert slices >= 2 and job.done == 20 and len(job.result().frames) == 20


def test_result_file_round_trip(gap_result: SequenceResult, tmp_path: Path) -> None:
    processed = gap_result.processed(gaps="leave")
    path = save_result(processed, tmp_path / "out" / "params.npz")
    loaded = load_result(path)
    np.testing.assert_array_equal(loaded.expression, processed.expression)
    assert loaded.processing == processed.processing and loaded.expression_names == processed.expression_names
    assert not list((tmp_path / "out").glob("*.tmp"))  # the temporary file was renamed, not left behind
    (tmp_path / "bad.npz").write_text("nope")
    with pytest.raises(SequenceError, match="is not a FIELDS sequence result"):
        load_result(tmp_path / "bad.npz")


def test_keyframe_arrays_are_interleaved_float32() -> None:
    frames = scene_frames(np.array([10, 12, 14]), 25.0, target_start=101)
    assert frames.tolist() == [101, 103, 105]
    assert scene_frames(np.array([0, 25]), 25.0, 1, scene_fps=50).tolist() == [1, 51]
    values = np.array([[0.1, 1.0], [0.2, 2.0], [0.3, np.nan]], dtype=np.float32)
    keys = fcurve_keys(frames, values, ["a", "b"], interpolation="BEZIER", handle_type="VECTOR")
    assert keys[0].co.dtype == np.float32 and keys[0].co.tolist() == pytest.approx([101, 0.1, 103, 0.2, 105, 0.3])
    assert keys[1].co.tolist() == [101, 1.0, 103, 2.0] and keys[1].count == 2
    assert keys[0].interpolation.tolist() == [INTERPOLATION["BEZIER"]] * 3 == [2, 2, 2]
    assert keys[1].handles.tolist() == [HANDLE_TYPES["VECTOR"]] * 2
    # 1000 frames x 60 values, every key present: one block, each curve a flat contiguous view.
    big = fcurve_keys(np.arange(1000, dtype=np.float64), np.random.default_rng(0).random((1000, 60)),
                      [f"c{i}" for i in range(60)])
    assert len(big) == 60 and all(k.co.shape == (2000,) and k.co.flags.c_contiguous for k in big)
    assert big[7].frames[999] == 999.0 and big[0].interpolation[0] == INTERPOLATION["LINEAR"]
    with pytest.raises(ValueError):
        fcurve_keys(np.array([1.0, 1.0]), np.zeros((2, 1)), ["x"])
    with pytest.raises(ValueError):
        fcurve_keys(frames, values, ["a", "b"], interpolation="SPLINE")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inference", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_cli_on_a_folder_writes_npz_and_json(gap_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "params.npz"
    start = time.perf_counter()
    done = run_cli(str(gap_folder), "--out", str(out), "--json", "--gaps", "hold", "--fps", "30",
                   "--cache", str(tmp_path / "cache"), "--progress")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["frames"] == 18 and payload["faces_found"] == 12 and payload["fps"] == 30.0
    assert payload["processing"]["gaps"] == "hold" and len(payload["intensity"]) == 18
    assert "18/18 frames" in done.stderr  # the progress line
    result = load_result(out)
    assert result.found.sum() == 12 and np.isfinite(result.expression).all()
    assert time.perf_counter() - start < 30
    again = run_cli(str(gap_folder), "--out", str(out), "--cache", str(tmp_path / "cache"))
    assert json.loads(again.stdout)["from_cache"] is True and "intensity" not in json.loads(again.stdout)


def test_cli_on_a_video(video: Path, tmp_path: Path) -> None:
    done = run_cli(str(video), "--out", str(tmp_path / "p.npz"), "--step", "2", "--no-smoothing")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["frames"] == 20 and summary["faces_found"] == 20 and summary["processing"]["smoothing"] is None
    assert load_result(tmp_path / "p.npz").frames.tolist() == list(range(0, 40, 2))


def test_cli_fails_with_one_line_naming_the_source(tmp_path: Path) -> None:
    fake = tmp_path / "clip.mov"
    fake.write_text("not a video")
    (tmp_path / "empty").mkdir()
    for path in (fake, tmp_path / "empty"):
        done = run_cli(str(path), "--out", str(tmp_path / "p.npz"))
        assert done.returncode == 1 and done.stdout == ""
        assert str(path) in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "p.npz").exists()


def test_numbered_sequence_reads_only_its_siblings(tmp_path) -> None:
    """A Blender image sequence names one file; only the images numbered like it belong to it."""
    from inference.sequence.frames import FolderSource, sequence_pattern

    for name in ("shot_0002.png", "shot_0010.png", "shot_0001.png", "other_0001.png", "shot_final.png"):
        (tmp_path / name).write_bytes(b"")
    assert sequence_pattern("shot_0001.png").fullmatch("shot_12.png")
    assert not sequence_pattern("shot_0001.png").fullmatch("other_0001.png")
    source = FolderSource(tmp_path, like="shot_0002.png")
    assert [p.name for p in source.files] == ["shot_0001.png", "shot_0002.png", "shot_0010.png"]
    with pytest.raises(SequenceError, match="images named like 'take_001.png'"):
        FolderSource(tmp_path, like="take_001.png")
