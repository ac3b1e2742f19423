"""Neutral calibration (issue 13): the rescale, the emotion's bias, the stored form and its damage,
`--neutral`'s forms, the calmest stretch, the frame range's failures, per-frame confidence gaps,
and the command line on a real talking clip whose actor starts at rest.

Real clips come from ../shared/data/talking-clips (never committed); those tests skip when it is
absent. Everything else runs the real encoder or plain arrays; nothing is mocked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sequence_fixtures import blank_frame, moving_frame, write_video

from inference.expression.calibration import (
    Neutral,
    NeutralError,
    calmest_stretch,
    frame_rows,
    parse_neutral,
    rescale,
)
from inference.expression.encoder import ExpressionEncoder
from inference.perception.blendshapes import ARKIT_NAMES
from inference.sequence.pipeline import load_result

ROOT = Path(__file__).resolve().parent.parent
CLIPS = ROOT.parent / "shared" / "data" / "talking-clips"
if not CLIPS.is_dir():
    CLIPS = Path("/work/shared/data/talking-clips")
AT_REST = CLIPS / "d13.mp4"  # the actor sits at rest for the first 10 frames, then talks and smiles broadly
needs_clip = pytest.mark.skipif(not AT_REST.is_file(), reason=f"talking clips not found at {CLIPS}")
EMOTIONS = ("neutral", "happiness", "sadness")


def neutral(units: np.ndarray, probs: tuple[float, ...] = (0.6, 0.3, 0.1), intensity: float = 0.2) -> Neutral:
    return Neutral.from_rows(units, np.array(probs), np.array([intensity]), EMOTIONS, source="test")


def test_rescale_zeroes_the_rest_and_keeps_the_full_range() -> None:
    rest = np.full(52, 0.3)
    assert np.allclose(rescale(rest, rest), 0.0)
    assert np.allclose(rescale(np.ones(52), rest), 1.0)  # a subtraction would stop at 0.7
    assert np.allclose(rescale(np.full(52, 0.65), rest), 0.5)
    assert np.allclose(rescale(np.full(52, 0.1), rest), 0.0)  # below the rest is the rest
    assert np.isnan(rescale(np.array([np.nan]), np.array([0.2]))).all()
    assert np.allclose(rescale(np.array([1.0, 0.5]), np.array([1.0, 1.0])), 0.0)  # a unit stuck at 1


def test_neutral_is_the_median_of_its_rows_and_ignores_faceless_rows() -> None:
    rows = np.full((5, 52), 0.1)
    rows[2] = 0.9  # a blink inside the range
    rows[4] = np.nan  # no face there
    reference = Neutral.from_rows(rows, np.full((5, 3), 1 / 3), np.full(5, 0.1), EMOTIONS)
    assert np.allclose(reference.units, 0.1)
    with pytest.raises(NeutralError, match="No face was found in clip.mp4 frames 3-4"):
        Neutral.from_rows(np.full((2, 52), np.nan), np.full((2, 3), np.nan), np.zeros(2), EMOTIONS,
                          source="clip.mp4 frames 3-4")


def test_emotion_and_intensity_are_read_relative_to_the_rest() -> None:
    reference = neutral(np.zeros(52), probs=(0.2, 0.7, 0.1), intensity=0.4)  # a resting face that reads happy
    assert np.allclose(reference.calibrate_probs(np.array([0.2, 0.7, 0.1]), EMOTIONS), 1 / 3)
    happier = reference.calibrate_probs(np.array([0.05, 0.9, 0.05]), EMOTIONS)
    assert happier.argmax() == 1 and np.isclose(happier.sum(), 1.0)
    sadder = reference.calibrate_probs(np.array([0.2, 0.5, 0.3]), EMOTIONS)
    assert sadder.argmax() == 2  # relative to a happy rest, a little sadness is what changed
    assert np.isclose(reference.calibrate_intensity(0.4), 0.0) and np.isclose(reference.calibrate_intensity(1.0), 1.0)
    with pytest.raises(NeutralError, match="not this encoder's"):
        reference.calibrate_probs(np.array([0.2, 0.7, 0.1]), ("a", "b", "c"))


def test_stored_form_round_trips_and_damage_is_one_sentence() -> None:
    reference = neutral(np.linspace(0, 0.5, 52))
    again = Neutral.from_json(reference.to_json())
    assert np.allclose(again.units, reference.units, atol=1e-6) and again.emotions == EMOTIONS
    assert again.source == "test" and np.allclose(again.log_probs, reference.log_probs, atol=1e-6)
    data = json.loads(reference.to_json())
    broken = [
        "not json", json.dumps({**data, "units": {"jawOpen": 0.1}}),
        json.dumps({**data, "format": 99}), json.dumps({**data, "log_probs": [0.0]}),
        json.dumps({**data, "units": {**data["units"], "jawOpen": 7.0}}), json.dumps([1, 2]),
    ]
    for text in broken:
        with pytest.raises(NeutralError, match=r"^'Head' neutral reference .*set the neutral again\.$"):
            Neutral.from_json(text, where="'Head' neutral reference")


def test_neutral_option_forms() -> None:
    assert parse_neutral("auto").kind == "auto" and parse_neutral(" AUTO ").kind == "auto"
    spec = parse_neutral("0:5")
    assert (spec.kind, spec.start, spec.end) == ("frames", 0, 5)
    assert parse_neutral("rest.jpg").photo == "rest.jpg"
    assert parse_neutral("C:/takes/rest.jpg").kind == "photo"  # a drive letter is not a range
    for bad in ("5:2", "-1:3", ""):
        with pytest.raises(NeutralError):
            parse_neutral(bad)


def test_frame_range_outside_the_clip_names_it() -> None:
    frames = np.arange(10, 20)
    assert frame_rows(frames, 12, 14, "'take.mp4'").tolist() == [2, 3, 4]
    with pytest.raises(NeutralError, match=r"frames 30-40 are outside 'take.mp4', whose frames read are 10-19"):
        frame_rows(frames, 30, 40, "'take.mp4'")


def test_calmest_stretch_finds_the_rest_and_skips_faceless_frames() -> None:
    rng = np.random.default_rng(0)
    units = rng.uniform(0.2, 0.8, (60, 52))
    units[30:45] = 0.02 + rng.normal(0, 0.002, (15, 52))  # the actor at rest
    found = np.ones(60, dtype=bool)
    found[30:33] = False
    units[30:33] = np.nan
    chosen = calmest_stretch(units, found, fps=20.0)
    assert 33 <= chosen.start and chosen.stop <= 45 and chosen.stop - chosen.start == 10
    with pytest.raises(NeutralError, match="No face was found"):
        calmest_stretch(units, np.zeros(60, dtype=bool), fps=20.0)


def test_encoder_calibration_keeps_parameters_consistent() -> None:
    encoder = ExpressionEncoder()
    features = np.zeros((1, encoder.session.get_inputs()[0].shape[1]), dtype=np.float32)
    read = encoder.predict(features)[0]
    reference = Neutral.from_rows(np.array([read.units[u] for u in ARKIT_NAMES]),
                                  np.array([read.emotion_probs[e] for e in encoder.emotions]),
                                  np.array([read.intensity]), encoder.emotions)
    calm = encoder.calibrated(read, reference)
    assert max(calm.units.values()) <= 1e-6 and calm.intensity <= 1e-6
    assert np.allclose(calm.jaw, 0.0, atol=1e-6) and np.allclose(calm.eyelids, 0.0, atol=1e-6)
    assert np.allclose(list(calm.emotion_probs.values()), 1 / len(encoder.emotions), atol=1e-5)
    again = encoder.parameters(np.array([[calm.units[u] for u in ARKIT_NAMES]]))
    assert np.allclose(again["expression"][0], list(calm.expression.values()))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inference", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_cli_neutral_and_confidence_failures_leave_no_file(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "short.avi", [moving_frame(i, 12) for i in range(12)])
    out = tmp_path / "p.npz"
    outside = run_cli(str(clip), "--out", str(out), "--neutral", "40:45", "--cache", str(tmp_path))
    assert outside.returncode == 1 and not out.exists()
    assert outside.stderr.strip() == (f"error: The neutral frames 40-45 are outside '{clip}', whose frames read "
                                      "are 0-11.")
    missing = run_cli(str(clip), "--out", str(out), "--neutral", str(tmp_path / "rest.jpg"), "--cache", str(tmp_path))
    assert missing.returncode == 1 and "rest.jpg" in missing.stderr and not out.exists()
    bad = run_cli(str(clip), "--out", str(out), "--min-confidence", "1.5")
    assert bad.returncode == 2 and "--min-confidence" in bad.stderr


def test_cli_min_confidence_turns_weak_frames_into_gaps(tmp_path: Path) -> None:
    frames = [blank_frame() if i in (4, 5) else moving_frame(i, 12) for i in range(12)]
    clip = write_video(tmp_path / "gaps.avi", frames)
    out = tmp_path / "p.npz"
    done = run_cli(str(clip), "--out", str(out), "--json", "--min-confidence", "0.99", "--no-smoothing")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    scores = payload["score"]
    assert scores[4] is None and scores[5] is None
    assert all(s is not None for i, s in enumerate(scores) if i not in (4, 5))
    weak = [i for i, s in enumerate(scores) if s is not None and s < 0.99]
    result = load_result(out)
    assert set(np.flatnonzero(~result.found)) == {4, 5, *weak}
    assert np.isfinite(result.expression).all() and np.isfinite(result.head_pose).all()  # filled across


@needs_clip
def test_cli_neutral_range_on_a_real_clip(tmp_path: Path) -> None:
    """Issue 13's check: the actor at rest in frames 0-5 reads <= 0.05 on every unit through frame 9,
    and the broad smile later still reaches mouthSmile >= 0.5."""
    out = tmp_path / "d13.npz"
    done = run_cli(str(AT_REST), "--out", str(out), "--neutral", "0:5", "--quiet")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["neutral"]["source"].endswith("frames 0-5")
    calibrated = load_result(out).units()
    smile = calibrated[:, [ARKIT_NAMES.index("mouthSmileLeft"), ARKIT_NAMES.index("mouthSmileRight")]]
    assert calibrated[:10].max() <= 0.05
    assert smile.max(0).min() >= 0.5
    plain = run_cli(str(AT_REST), "--out", str(tmp_path / "plain.npz"), "--quiet")
    assert plain.returncode == 0
    assert load_result(tmp_path / "plain.npz").units()[:10].max() > 0.3  # without it the rest reads an expression
