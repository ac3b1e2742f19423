"""Apply to Sequence in real Blender (issue 7): generated clips and folders through the real
pipeline (ONNX Runtime, tracking, encoder) keyed in bulk on the default head, on 4.5 and 5.x; the
modal bookkeeping (timer, progress, status text) driven through the operator's own classes, since
Blender refuses INVOKE headless; the cache; and every bad input leaving the scene as it was with
no timer or handler left behind. No mocks."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import MODULE, scene_state
from sequence_fixtures import blank_frame, moving_frame, write_folder, write_video
from test_reconstruct import add_mask_head, fcurves, keyed

from inference.retarget.plan import INTENSITY_PROPERTY, PREDICTED_INTENSITY_PROPERTY, weight_property

bpy = pytest.importorskip("bpy")

N = 16  # frames per generated clip: enough for tracking, short enough for the suite


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    frames = [moving_frame(i, N) for i in range(N)]
    gappy = list(frames)
    gappy[5:9] = [blank_frame()] * 4
    folder_mixed = root / "mixed"
    write_folder(folder_mixed, frames[:3])
    cv2.imwrite(str(folder_mixed / "frame4.jpg"), cv2.resize(frames[3], (320, 240)))
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no images here")
    (root / "broken.mp4").write_bytes(b"not a video at all" * 100)
    corrupt = root / "corrupt"
    write_folder(corrupt, frames[:8])
    (corrupt / "frame4.jpg").write_bytes(b"\xff\xd8\xff truncated")
    return {"video": write_video(root / "clip.avi", frames), "gappy": write_video(root / "gappy.avi", gappy),
            "folder": write_folder(root / "folder", frames[:8])[0].parent, "mixed": folder_mixed,
            "empty": root / "empty", "broken": root / "broken.mp4", "corrupt": corrupt,
            "blank": write_video(root / "blank.avi", [blank_frame()] * 6)}


def module() -> Any:
    import importlib

    return importlib.import_module(MODULE + ".fields_addon.sequence")


def common() -> Any:
    """The operators' shared helpers, where `cache_dir` lives (tests point it at a temporary folder)."""
    import importlib

    return importlib.import_module(MODULE + ".fields_addon.common")


def importlib_sessions() -> Any:
    import importlib

    return importlib.import_module(MODULE + ".fields_addon.sessions")


def configure(source: Path, kind: str = "VIDEO", **options: Any) -> Any:
    settings = bpy.context.scene.fields
    settings.seq_source = kind
    if kind == "VIDEO":
        settings.seq_filepath = str(source)
    elif kind == "FOLDER":
        settings.seq_directory = str(source)
    for name, value in options.items():
        setattr(settings, name, value)
    return settings


def handlers() -> dict[str, int]:
    return {name: len(getattr(bpy.app.handlers, name)) for name in dir(bpy.app.handlers)
            if isinstance(getattr(bpy.app.handlers, name), list)}


def target_state(obj: Any) -> dict[str, Any]:
    """Everything an apply could change on the head: custom properties, keys, drivers."""
    drivers = obj.data.shape_keys.animation_data
    return {"props": {k: (list(v) if hasattr(v, "__len__") else v) for k, v in obj.items()},
            "keys": keyed(obj), "drivers": 0 if drivers is None else len(drivers.drivers)}


def frames_of(obj: Any, path: str, index: int = 0) -> np.ndarray:
    curve = next(fc for fc in fcurves(obj) if fc.data_path == path and fc.array_index == index)
    co = np.empty(2 * len(curve.keyframe_points), dtype=np.float32)
    curve.keyframe_points.foreach_get("co", co)
    return co.reshape(-1, 2)


def test_video_is_keyed_one_key_per_frame_on_every_driven_value(blender, clips, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path)
    head = add_mask_head()
    before_handlers = handlers()
    bpy.context.scene.render.fps = 25  # the clip's rate: one key on each scene frame
    configure(clips["video"], seq_target_start=10, seq_key_intensity=True)
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    read = frames_of(head, f'["{PREDICTED_INTENSITY_PROPERTY}"]')
    assert read[:, 0].tolist() == list(range(10, 10 + N))
    curves = {(fc.data_path, fc.array_index) for fc in fcurves(head)}
    weights = [k for k in head.keys() if k.startswith("fields_w_")]
    assert len(weights) > 40  # the open head's expression, eyelids, jaw and eye bones
    for prop in weights:
        for index in range(3 if prop in (weight_property("jaw"), weight_property("eye.L")) else 1):
            keys = frames_of(head, f'["{prop}"]', index)
            assert keys[:, 0].tolist() == list(range(10, 10 + N))
    intensity = frames_of(head, f'["{INTENSITY_PROPERTY}"]')
    assert intensity[:, 0].tolist() == list(range(10, 10 + N))
    assert 0.2 < intensity[:, 1].mean() <= 1.0  # the astronaut smiles (0.77 in photo mode)
    assert (f'["{INTENSITY_PROPERTY}"]', 0) in curves
    # Drivers made once, as for a photo: each shape key reads its weight and the intensity.
    drivers = head.data.shape_keys.animation_data.drivers
    assert len(drivers) >= len([k for k in weights if not k.startswith("fields_w_eye") and k != "fields_w_jaw"])
    # The keyed values drive the mesh: the smile key's evaluated value follows weight x intensity.
    smile = next(k for k in weights if "mouthSmile" in k)
    bpy.context.scene.frame_set(12)
    block = head.data.shape_keys.key_blocks[smile.removeprefix("fields_w_")]
    assert block.value == pytest.approx(head[smile] * head[INTENSITY_PROPERTY], abs=1e-5)
    assert head[smile] == pytest.approx(frames_of(head, f'["{smile}"]')[2, 1], abs=1e-6)
    assert handlers() == before_handlers and not module()._live_timers
    # The re-apply is also the regression for "drivers once": no second set.
    count = len(drivers)
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    assert len(head.data.shape_keys.animation_data.drivers) == count
    assert len(frames_of(head, f'["{smile}"]')) == N  # keys in the range replaced, not doubled
    # At another scene rate the timing is kept in seconds: 15 frames at 25 fps span 14.4 at 24.
    bpy.context.scene.render.fps = 24
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    times = frames_of(head, f'["{smile}"]')[:, 0]
    assert times[-2] == pytest.approx(24.4) and times[-1] == 25.0  # the old key past the new range stays


def test_reapply_reads_the_cache_and_keeps_keys_outside_the_range(blender, clips, monkeypatch, tmp_path) -> None:
    sessions = importlib_sessions()
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path)
    head = add_mask_head()
    configure(clips["folder"], "FOLDER", seq_smooth=False, seq_key_intensity=True)
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    pipeline = sessions.sequence_pipeline(0)
    perceived = pipeline.frames_perceived
    raw_smile = frames_of(head, f'["{weight_property("mouthSmileLeft")}"]')
    head[INTENSITY_PROPERTY] = 1.0
    head.keyframe_insert(f'["{INTENSITY_PROPERTY}"]', frame=100)  # the artist's own key, outside the range
    configure(clips["folder"], "FOLDER", seq_smooth=True, seq_smooth_steadiness=0.2, seq_smooth_responsiveness=0.0)
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    assert pipeline.frames_perceived == perceived  # no inference: the cache answered
    assert "from the cache" in bpy.context.scene.fields.seq_result
    smooth_smile = frames_of(head, f'["{weight_property("mouthSmileLeft")}"]')
    assert np.abs(np.diff(smooth_smile[:, 1])).mean() < np.abs(np.diff(raw_smile[:, 1])).mean()
    intensity = frames_of(head, f'["{INTENSITY_PROPERTY}"]')
    assert intensity[-1].tolist() == [100.0, 1.0] and len(intensity) == 9
    # Another target, same source: still no inference.
    other = add_mask_head()
    bpy.context.scene.fields.target = other
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    assert pipeline.frames_perceived == perceived
    assert len(frames_of(other, f'["{INTENSITY_PROPERTY}"]')) == 8


def test_cache_folder_beside_a_saved_blend(blender, clips, tmp_path) -> None:
    add_mask_head()
    blend = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    assert common().cache_dir() == tmp_path / "fields_cache"
    configure(clips["folder"], "FOLDER", seq_frame_last=3)
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    assert len(list((tmp_path / "fields_cache").glob("*.npz"))) == 1


def test_unsaved_file_caches_in_the_extension_user_folder(blender) -> None:
    folder = common().cache_dir()
    assert folder.is_dir() and "fields" in str(folder) and folder.name == "sequence_cache"
    assert Path(bpy.utils.extension_path_user(MODULE)) in folder.parents


def test_gaps_hold_interpolate_and_leave(blender, clips, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path)
    head = add_mask_head()
    prop = f'["{weight_property("mouthSmileLeft")}"]'
    results = {}
    for mode in ("INTERPOLATE", "HOLD", "LEAVE"):
        configure(clips["gappy"], seq_gaps=mode, seq_smooth=False)
        for fc in fcurves(head):
            fc.keyframe_points.clear()
        assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
        results[mode] = frames_of(head, prop)
    assert len(results["LEAVE"]) == N - 4 and 6 not in results["LEAVE"][:, 0]
    assert "4 without a face" in bpy.context.scene.fields.seq_result
    held = results["HOLD"]
    assert np.allclose(held[5:9, 1], held[4, 1])
    line = np.interp(np.arange(5, 9), [4, 9], results["INTERPOLATE"][[4, 9], 1])
    assert np.allclose(results["INTERPOLATE"][5:9, 1], line, atol=1e-5)


def test_modal_run_progress_and_finish_leave_no_timer(blender, clips, monkeypatch, tmp_path) -> None:
    seq = module()
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path)
    head = add_mask_head()
    configure(clips["video"])
    modal = seq.ModalApply(seq.SequenceRun(bpy.context))
    modal.attach(bpy.context)
    assert len(seq._live_timers) == 1 and modal.timer is not None
    ticks = 0
    while not modal.tick():
        ticks += 1
        assert "FIELDS: frame" in modal.run.status() and f"/{N}" in modal.run.status()
    assert ticks >= 2  # time-sliced: 16 frames at ~10 ms do not fit one 30 ms slice
    assert not seq._live_timers and modal.timer is None
    assert keyed(head) == {}  # nothing is keyed before finish
    modal.run.finish(bpy.context)
    assert len(frames_of(head, f'["{PREDICTED_INTENSITY_PROPERTY}"]')) == N


def test_cancel_keeps_nothing(blender, clips, monkeypatch, tmp_path) -> None:
    seq = module()
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path)
    head = add_mask_head()
    before, props, hooks = scene_state(), target_state(head), handlers()
    configure(clips["video"])
    modal = seq.ModalApply(seq.SequenceRun(bpy.context))
    modal.attach(bpy.context)
    modal.tick()
    modal.cancel()
    assert modal.run.job.cancelled and modal.run.job.done < N
    assert not seq._live_timers and handlers() == hooks
    assert scene_state() == before and target_state(head) == props
    assert list(tmp_path.iterdir()) == []  # no cache from a cancelled run
    with pytest.raises(RuntimeError):
        modal.run.finish(bpy.context)


def test_target_deleted_while_running(blender, clips, monkeypatch, tmp_path) -> None:
    seq = module()
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path)
    add_mask_head()
    configure(clips["video"])
    modal = seq.ModalApply(seq.SequenceRun(bpy.context))
    modal.attach(bpy.context)
    modal.tick()
    head = bpy.context.active_object
    bpy.data.objects.remove(head)
    with pytest.raises(Exception, match="was deleted while the sequence was read: nothing was keyed"):
        modal.tick()
    assert not seq._live_timers


def test_corrupt_frames_are_skipped_with_a_count(blender, clips, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path)
    head = add_mask_head()
    configure(clips["corrupt"], "FOLDER")
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    assert len(frames_of(head, f'["{PREDICTED_INTENSITY_PROPERTY}"]')) == 8  # the bad frame is interpolated
    assert "1 unreadable skipped" in bpy.context.scene.fields.seq_result


@pytest.mark.parametrize(("case", "kind", "message"), [
    ("broken", "VIDEO", "cannot be opened as a video"),
    ("empty", "FOLDER", "holds no images"),
    ("mixed", "FOLDER", "every image must be the same size"),
    ("blank", "VIDEO", "No face was found in any frame of"),
    (None, "VIDEO", "No video is chosen"),
    (None, "CLIP", "No movie clip is chosen"),
])
def test_bad_input_is_one_sentence_and_changes_nothing(blender, clips, monkeypatch, tmp_path,
                                                        case, kind, message) -> None:
    seq = module()
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path)
    head = add_mask_head()
    assert bpy.ops.fields.apply_sequence.poll()
    before, props, hooks = scene_state(), target_state(head), handlers()
    configure(clips[case] if case else Path(""), kind)
    if case is None:
        bpy.context.scene.fields.seq_filepath = ""
    with pytest.raises(RuntimeError, match=message) as raised:
        bpy.ops.fields.apply_sequence()
    assert str(raised.value).count("\n") <= 1
    assert scene_state() == before and target_state(head) == props
    assert not seq._live_timers and handlers() == hooks


def test_movie_clip_and_image_sequence_sources(blender, clips, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path)
    head = add_mask_head()
    bpy.context.scene.render.fps = 25
    clip = bpy.data.movieclips.load(str(clips["video"]))
    configure(clips["video"], "CLIP", seq_clip=clip, seq_frame_first=3, seq_frame_last=10, seq_frame_step=2)
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    assert frames_of(head, f'["{PREDICTED_INTENSITY_PROPERTY}"]')[:, 0].tolist() == [1, 3, 5, 7]
    first = sorted(clips["folder"].iterdir())[0]
    image = bpy.data.images.load(str(first))
    image.source = "SEQUENCE"
    configure(clips["folder"], "IMAGE", seq_image=image, seq_target_start=50, seq_frame_first=1, seq_frame_last=0,
              seq_frame_step=1)
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    assert frames_of(head, f'["{PREDICTED_INTENSITY_PROPERTY}"]')[:, 0].tolist()[-8:] == list(range(50, 58))
    single = bpy.data.images.new("still", 8, 8)
    configure(clips["folder"], "IMAGE", seq_image=single)
    with pytest.raises(RuntimeError, match="is a single image, not a movie or image sequence"):
        bpy.ops.fields.apply_sequence()


def test_copying_the_clip_changes_the_cache_key_not_the_result(blender, clips, monkeypatch, tmp_path) -> None:
    # A moved or re-rendered source is a cache miss (identity includes the resolved path).
    monkeypatch.setattr(common(), "cache_dir", lambda: tmp_path / "cache")
    add_mask_head()
    copy = tmp_path / "copy.avi"
    shutil.copy(clips["video"], copy)
    configure(copy, seq_frame_last=4)
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    configure(clips["video"], seq_frame_last=4)
    assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
