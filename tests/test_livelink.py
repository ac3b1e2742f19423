"""Live Link Face CSV in and out (issue 14): the layout, exact round trips, timing at the scene's
rate, errors naming the file and the line, and the command line both ways."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sequence_fixtures import moving_frame, write_video

from inference.errors import FieldsError
from inference.expression.encoder import ExpressionEncoder
from inference.perception.blendshapes import ARKIT_NAMES
from inference.sequence import livelink
from inference.sequence.livelink import (
    HEADER,
    LiveLinkError,
    Take,
    format_timecode,
    parse_timecode,
    read_take,
    result_from_take,
    take_from_result,
    write_result,
    write_take,
)
from inference.sequence.pipeline import SequencePipeline, load_result

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def encoder() -> ExpressionEncoder:
    return ExpressionEncoder()


def random_take(count: int = 40, fps: float = 60.0, seed: int = 0, start: float = 0.0) -> Take:
    rng = np.random.default_rng(seed)
    return Take(times=np.arange(count) / fps, units=rng.uniform(0, 1, (count, 52)),
                head=rng.normal(0, 0.3, (count, 3)), eyes=rng.normal(0, 0.2, (count, 2, 3)), start=start)


def test_header_is_the_apps_layout() -> None:
    assert HEADER[:2] == ("Timecode", "BlendShapeCount") and len(HEADER) == 2 + 61
    # The app's order, not Apple's enum order (checked against public readers of its files).
    assert HEADER[16:20] == ("JawForward", "JawRight", "JawLeft", "JawOpen")
    assert HEADER[23:25] == ("MouthRight", "MouthLeft") and HEADER[53] == "TongueOut"
    assert HEADER[-9:] == ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                           "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
    assert {h[0].lower() + h[1:] for h in HEADER[2:54]} == set(ARKIT_NAMES)


def test_timecodes() -> None:
    assert format_timecode(0.0) == "00:00:00:00.000"
    assert format_timecode(3723.5 + 1 / 60) == "01:02:03:31.000"
    assert format_timecode(1 / 24) == "00:00:00:02.500"  # a 24 fps frame in a 60 fps timecode: a sub-frame
    assert parse_timecode("14:03:52:28.207") == pytest.approx(14 * 3600 + 3 * 60 + 52 + 28.207 / 60)
    assert parse_timecode("00:00:01:15", rate=30) == pytest.approx(1.5)
    for seconds in (0.0, 1 / 24, 7.123456, 36000.25):
        assert parse_timecode(format_timecode(seconds)) == pytest.approx(seconds, abs=1e-5)
    with pytest.raises(ValueError, match="frame 30"):
        parse_timecode("00:00:00:30", rate=30)


def test_take_round_trip_is_exact(tmp_path: Path) -> None:
    take = random_take(start=10 * 3600 + 0.25)
    back = read_take(write_take(tmp_path / "take.csv", take))
    for name in ("units", "head", "eyes", "times"):
        assert np.abs(getattr(back, name) - getattr(take, name)).max() < 1e-4, name
    assert back.start == pytest.approx(take.start, abs=1e-5)
    lines = (tmp_path / "take.csv").read_text().splitlines()
    assert lines[0] == ",".join(HEADER) and lines[1].startswith("10:00:00:15.000,61,")
    assert len(lines) == 41 and not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left beside


def test_result_round_trip_is_exact(encoder: ExpressionEncoder, tmp_path: Path) -> None:
    """A real sequence result -> CSV -> result: every value within 1e-4, timing kept."""
    video = write_video(tmp_path / "clip.avi", (moving_frame(i, 24) for i in range(24)), fps=24.0)
    from inference.sequence.frames import open_source

    raw = SequencePipeline(encoder=encoder).run(open_source(video))
    assert raw.found.all()
    write_result(tmp_path / "take.csv", raw, timecode_fps=60)
    back = livelink.read_result(tmp_path / "take.csv", encoder, fps=24)
    assert back.frames.tolist() == raw.frames.tolist() and back.found.all()
    for name in ("expression", "jaw", "eyelids", "gaze"):
        assert np.abs(getattr(back, name) - getattr(raw, name)).max() < 1e-4, name
    assert np.abs(back.units() - raw.units()).max() < 1e-4
    # Processed results round-trip too (their units are what the file carries).
    smoothed = raw.processed()
    write_result(tmp_path / "smoothed.csv", smoothed)
    again = livelink.read_result(tmp_path / "smoothed.csv", encoder, fps=24)
    assert np.abs(again.units() - smoothed.units()).max() < 1e-4


def test_eye_angles_come_from_the_gaze(encoder: ExpressionEncoder) -> None:
    units = np.zeros((1, 52))
    units[0, ARKIT_NAMES.index("eyeLookOutLeft")] = 1.0
    take = Take(times=np.zeros(1), units=units, head=np.zeros((1, 3)), eyes=np.zeros((1, 2, 3)))
    out = take_from_result(result_from_take(take, encoder, 30.0))
    assert np.abs(out.eyes[0, 0, 0]) > 0.3 and np.abs(out.eyes[0, 0, 1:]).max() < 1e-6  # yaw only
    assert np.abs(out.eyes[0, 1]).max() < 1e-9 and np.abs(out.units - units).max() < 1e-6


def test_timecodes_map_to_frames_at_the_scene_rate(encoder: ExpressionEncoder) -> None:
    take = random_take(count=61, fps=60.0)  # one second at 60 fps
    at24 = result_from_take(take, encoder, 24.0)
    assert len(at24.frames) == 25 and at24.found.all()
    # Frame k takes the row at k/24 s: rows 0, 2.5 -> nearest, 5, ...
    rows = [int(np.argmin(np.abs(take.times - k / 24))) for k in range(25)]
    assert np.abs(at24.units() - take.units[rows]).max() < 1e-6
    slow = random_take(count=13, fps=12.0)  # slower than the scene: frames between rows are gaps
    at24 = result_from_take(slow, encoder, 24.0)
    assert len(at24.frames) == 25 and at24.found.sum() == 13 and not at24.found[1]
    filled = at24.processed(gaps="interpolate", smoothing=None)
    expected = (slow.units[0] + slow.units[1]) / 2
    assert np.abs(filled.units()[1] - expected).max() < 1e-5  # the video's gap filling, in time


def test_dropped_rows_are_gaps(encoder: ExpressionEncoder) -> None:
    take = random_take(count=30, fps=30.0)
    keep = np.ones(30, dtype=bool)
    keep[10:14] = False
    dropped = Take(times=take.times[keep], units=take.units[keep], head=take.head[keep], eyes=take.eyes[keep])
    result = result_from_take(dropped, encoder, 30.0)
    assert len(result.frames) == 30 and result.found.tolist() == keep.tolist()
    assert np.isnan(result.expression[10:14]).all()


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def good_row(timecode: str = "00:00:00:00.000") -> str:
    return ",".join([timecode, "61", *["0.1"] * 52, *["0.0"] * 9])


@pytest.mark.parametrize(("lines", "expected"), [
    ((), "is empty"),
    (("Frame,Value", "1,2"), "line 1 should start with 'Timecode'"),
    ((",".join(HEADER[:30]), ), "line 1 lacks 24 of the 52 ARKit weight columns"),
    ((",".join([*HEADER, "JawOpen"]), ), "line 1 names the column jawopen more than once"),
    ((",".join(HEADER),), "has a header but no frames"),
    ((",".join(HEADER), good_row(), good_row("00:00:00:01.000")[:-4]), "line 3 has 62 values where the header has 63"),
    ((",".join(HEADER), good_row(), good_row("00:00:00:01").replace(",0.1,", ",abc,", 1)),
     "line 3, column EyeBlinkLeft: 'abc' is not a number"),
    ((",".join(HEADER), good_row(), good_row("00:00:00:01").replace(",0.1,", ",nan,", 1)),
     "line 3, column EyeBlinkLeft: 'nan' is not a number"),
    ((",".join(HEADER), good_row("12:00")), "line 2: the timecode '12:00' is not HH:MM:SS:FF.fff"),
    ((",".join(HEADER), good_row("00:00:00:75.000")), "line 2: the timecode '00:00:00:75.000' counts frame 75"),
    ((",".join(HEADER), good_row("00:00:01:00"), good_row("00:00:00:59")),
     "line 3: the timecode 00:00:00:59 does not come after"),
])
def test_malformed_files_name_the_file_and_line(tmp_path: Path, lines: tuple[str, ...], expected: str) -> None:
    path = write_lines(tmp_path / "take.csv", *lines) if lines else tmp_path / "take.csv"
    if not lines:
        path.write_text("")
    with pytest.raises(LiveLinkError) as raised:
        read_take(path)
    message = str(raised.value)
    assert message.startswith(f"Live Link Face CSV '{path}' ") and expected in message, message


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(LiveLinkError, match="does not exist"):
        read_take(tmp_path / "nope.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(LiveLinkError, match="not UTF-8"):
        read_take(tmp_path / "bin.csv")


def test_other_writers_variants_are_read(tmp_path: Path) -> None:
    """Lower-case ARKit spellings, another column order, no angle columns, a trailing comma, a BOM."""
    names = list(ARKIT_NAMES)[::-1]
    header = "\ufeffTimecode,BlendShapeCount," + ",".join(names) + ","
    rows = [f"00:00:00:{i:02d}.000,52," + ",".join(f"{(j + i) / 100:.2f}" for j in range(52)) + ","
            for i in range(3)]
    path = write_lines(tmp_path / "other.csv", header, *rows)
    take = read_take(path, timecode_fps=30)
    assert take.units.shape == (3, 52) and np.allclose(take.times, [0, 1 / 30, 2 / 30])
    assert take.units[1, ARKIT_NAMES.index(names[0])] == pytest.approx(0.01)
    assert not take.head.any() and not take.eyes.any()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inference", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_cli_csv_in_and_out(tmp_path: Path) -> None:
    take = random_take(count=48, fps=24.0)
    csv_in = write_take(tmp_path / "take.csv", take)
    done = run_cli(str(csv_in), "--out", str(tmp_path / "p.npz"), "--fps", "24", "--no-smoothing")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["frames"] == 48 and summary["faces_found"] == 48 and summary["source"]["kind"] == "livelink"
    result = load_result(tmp_path / "p.npz")
    assert np.abs(result.units() - take.units).max() < 1e-4
    # npz -> csv is not a command; csv -> csv is (through the same processing), and so is video -> csv.
    again = run_cli(str(csv_in), "--out", str(tmp_path / "out.csv"), "--fps", "24", "--no-smoothing")
    assert again.returncode == 0, again.stderr
    assert np.abs(read_take(tmp_path / "out.csv").units - take.units).max() < 1e-4
    video = write_video(tmp_path / "clip.avi", (moving_frame(i, 10) for i in range(10)), fps=25.0)
    from_video = run_cli(str(video), "--out", str(tmp_path / "clip.csv"))
    assert from_video.returncode == 0, from_video.stderr
    assert len(read_take(tmp_path / "clip.csv").times) == 10
    bad = write_lines(tmp_path / "bad.csv", ",".join(HEADER), good_row("oops"))
    failed = run_cli(str(bad), "--out", str(tmp_path / "bad.npz"))
    assert failed.returncode == 1 and str(bad) in failed.stderr and "line 2" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad.npz").exists()


def test_errors_are_fields_errors() -> None:
    assert issubclass(LiveLinkError, FieldsError)


# Issue 13's controls on a take (the merge of issues 13 and 14): head pose both ways, confidence,
# calibration and the mapping editor's rows, as a video gets them.

def test_head_angles_convert_both_ways() -> None:
    rng = np.random.default_rng(3)
    angles = np.column_stack([rng.uniform(-1.2, 1.2, 50), rng.uniform(-1.4, 1.4, 50), rng.uniform(-1.2, 1.2, 50)])
    assert np.abs(livelink.yaw_pitch_roll(livelink.axis_angles(angles)) - angles).max() < 1e-9
    # The convention, by example: a turn about +y (up) is a yaw, about +x a pitch, about +z (forward) a roll.
    assert livelink.yaw_pitch_roll(np.array([0.0, 0.3, 0.0])) == pytest.approx([0.3, 0.0, 0.0])
    assert livelink.yaw_pitch_roll(np.array([0.3, 0.0, 0.0])) == pytest.approx([0.0, 0.3, 0.0])
    assert livelink.yaw_pitch_roll(np.array([0.0, 0.0, 0.3])) == pytest.approx([0.0, 0.0, 0.3])
    assert np.isnan(livelink.yaw_pitch_roll(np.full(3, np.nan))).all()  # a gap left open stays one


def test_a_takes_head_angles_become_its_head_pose_and_go_back_out(encoder: ExpressionEncoder, tmp_path: Path) -> None:
    take = random_take(count=30, fps=30.0, seed=5)
    result = result_from_take(take, encoder, 30.0)
    assert result.head_pose.shape == (30, 3)
    assert np.abs(result.head_pose - livelink.axis_angles(take.head)).max() < 1e-6
    back = read_take(write_result(tmp_path / "again.csv", result.processed(smoothing=None)))
    assert np.abs(back.head - take.head).max() < 1e-5


def test_export_writes_the_tracked_head_pose(encoder: ExpressionEncoder, tmp_path: Path) -> None:
    """A video's head pose (issue 13's `head_pose`) is written as HeadYaw/Pitch/Roll, not zeros."""
    from inference.sequence.frames import open_source

    video = write_video(tmp_path / "clip.avi", (moving_frame(i, 12) for i in range(12)), fps=24.0)
    raw = SequencePipeline(encoder=encoder).run(open_source(video))
    take = read_take(write_result(tmp_path / "take.csv", raw))
    assert np.abs(take.head).max() > 1e-3
    assert np.abs(take.head - livelink.yaw_pitch_roll(raw.head_pose[raw.found])).max() < 1e-7
    back = livelink.read_result(tmp_path / "take.csv", encoder, fps=24)
    assert np.abs(back.head_pose - raw.head_pose).max() < 1e-4


def test_a_take_counts_as_confident(encoder: ExpressionEncoder) -> None:
    take = random_take(count=13, fps=12.0)
    result = result_from_take(take, encoder, 24.0)  # every other frame is a gap
    assert (result.score[result.found] == 1.0).all() and np.isnan(result.score[~result.found]).all()
    assert result.confident(1.0).found.tolist() == result.found.tolist()


def test_a_take_is_calibrated_in_its_units_only(encoder: ExpressionEncoder) -> None:
    from inference.expression.calibration import Neutral, rescale

    take = random_take(count=20, fps=30.0, seed=7)
    raw = result_from_take(take, encoder, 30.0)
    rest = take.units[:5]
    # A rest read by the encoder elsewhere (a photo): its emotion bias must not invent an emotion in a take.
    probs = np.array([0.05, 0.6, 0.05, 0.05, 0.05, 0.1, 0.05, 0.05])
    neutral = Neutral.from_rows(rest, np.tile(probs, (5, 1)), np.full(5, 0.4), encoder.emotions, source="photo")
    calibrated = raw.calibrated(neutral, encoder)
    assert np.abs(calibrated.units() - rescale(take.units, neutral.units)).max() < 1e-5
    assert np.array_equal(calibrated.emotion_probs, raw.emotion_probs)  # uniform: a take reads no emotion
    assert np.array_equal(calibrated.intensity, raw.intensity)
    assert np.array_equal(calibrated.head_pose, raw.head_pose) and np.array_equal(calibrated.score, raw.score)


def test_a_takes_frames_are_planned_through_the_mapping_editors_rows(encoder: ExpressionEncoder) -> None:
    from inference.expression.encoder import FaceModelContract
    from inference.retarget.mapping import Mapping, Row
    from inference.retarget.plan import PARTS, Target, plan
    from inference.sequence.plan import sequence_channels

    take = random_take(count=10, fps=30.0, seed=9)
    result = result_from_take(take, encoder, 30.0).processed(smoothing=None)
    mapping = Mapping((Row("mouthSmileLeft", "Grin", gain=0.5), Row("jawOpen", "jaw", "bone", 0, 0.3)))
    rig = Target("Rig", ("Grin",), bones=("jaw",), mapping=mapping)
    source = FaceModelContract("ICT head", "ict_head.npz", "0" * 64, tuple(encoder.expression_names))
    channels = sequence_channels(result, lambda expression: plan(expression, source, rig, PARTS))
    assert channels.first_plan.route == "mapping"
    grin = channels.values[:, channels.columns.index(("fields_w_Grin", 0))]
    assert np.abs(grin - 0.5 * take.units[:, ARKIT_NAMES.index("mouthSmileLeft")]).max() < 1e-5
    jaw = channels.values[:, channels.columns.index(("fields_w_jaw", 0))]
    assert np.abs(jaw - 0.3 * take.units[:, ARKIT_NAMES.index("jawOpen")]).max() < 1e-5


def test_cli_calibrates_a_take(tmp_path: Path) -> None:
    """`python -m inference take.csv --neutral 0:5 --out p.npz`: the take read relative to its frames 0-5."""
    from inference.expression.calibration import rescale

    take = random_take(count=24, fps=24.0, seed=11)
    csv_in = write_take(tmp_path / "take.csv", take)
    done = run_cli(str(csv_in), "--neutral", "0:5", "--out", str(tmp_path / "p.npz"), "--fps", "24",
                   "--no-smoothing", "--min-confidence", "0.9")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["neutral"]["source"] == f"'{csv_in}' frames 0-5" and summary["faces_found"] == 24
    rest = np.clip(np.median(take.units[:6], axis=0), 0, 1)
    assert np.abs(load_result(tmp_path / "p.npz").units() - rescale(take.units, rest)).max() < 1e-4
    # A range outside the take: one line naming it and the frames it has; nothing written.
    outside = run_cli(str(csv_in), "--neutral", "900:905", "--out", str(tmp_path / "q.npz"), "--fps", "24")
    assert outside.returncode == 1 and not (tmp_path / "q.npz").exists()
    assert outside.stderr.strip().splitlines() == [
        f"error: The neutral frames 900-905 are outside '{csv_in}', whose frames read are 0-23."]
