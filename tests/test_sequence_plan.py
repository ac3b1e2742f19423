"""Per-frame planning of a sequence onto a target's channels (issue 7), without Blender: column
layout (weights, bone axis-angles x3, intensity), NaN rows left unkeyed, no face at all an error,
and equality with the photo path's `plan` on the shipped encoder's head (ICT)."""

from __future__ import annotations

import numpy as np
import pytest

from inference.expression.encoder import ExpressionEncoder
from inference.retarget.plan import (
    INTENSITY_PROPERTY,
    PREDICTED_INTENSITY_PROPERTY,
    Plan,
    ReconstructError,
    Target,
    plan,
    weight_property,
)
from inference.sequence.pipeline import SequenceResult
from inference.sequence.plan import neutral_expression, sequence_channels


def result(t: int = 4, names: tuple[str, ...] = ("a", "b")) -> SequenceResult:
    rng = np.random.default_rng(0)
    found = np.ones(t, dtype=bool)
    found[1] = False
    out = SequenceResult(
        frames=np.arange(t), fps=24.0, found=found, unreadable=np.zeros(t, dtype=bool),
        expression=rng.random((t, len(names)), dtype=np.float32), jaw=rng.random((t, 3), dtype=np.float32),
        eyelids=rng.random((t, 2), dtype=np.float32), gaze=rng.random((t, 2, 3), dtype=np.float32),
        emotion_probs=np.full((t, 2), 0.5, dtype=np.float32), intensity=np.linspace(0.1, 0.4, t, dtype=np.float32),
        head_pose=np.zeros((t, 3), dtype=np.float32), score=np.ones(t, dtype=np.float32),
        expression_names=list(names), emotions=["happy", "sad"], source={}, model={})
    for name in ("expression", "jaw", "eyelids", "gaze", "emotion_probs"):
        getattr(out, name)[1] = np.nan
    out.intensity[1] = np.nan
    return out


def by_hand(expression) -> Plan:  # a planner of the shape reconstruct.plan returns
    return Plan("direct", dict(expression.expression), {"jaw": np.asarray(expression.jaw)})


def test_columns_values_and_gaps() -> None:
    res = result()
    channels = sequence_channels(res, by_hand, key_intensity=True)
    assert channels.columns == [(weight_property("a"), 0), (weight_property("b"), 0), (weight_property("jaw"), 0),
                                (weight_property("jaw"), 1), (weight_property("jaw"), 2),
                                (PREDICTED_INTENSITY_PROPERTY, 0), (INTENSITY_PROPERTY, 0)]
    assert np.isnan(channels.values[1]).all()  # the face-less row: no key anywhere
    np.testing.assert_allclose(channels.values[[0, 2, 3], :2], res.expression[[0, 2, 3]])
    np.testing.assert_allclose(channels.values[[0, 2, 3], 2:5], res.jaw[[0, 2, 3]])
    np.testing.assert_allclose(channels.values[[0, 2, 3], 5], res.intensity[[0, 2, 3]])
    np.testing.assert_allclose(channels.values[[0, 2, 3], 6], res.intensity[[0, 2, 3]])
    # By default only the read intensity is keyed; the intensity control is left to the artist.
    default = sequence_channels(res, by_hand)
    assert default.values.shape == (4, 6) and (INTENSITY_PROPERTY, 0) not in default.columns


def test_no_face_anywhere_is_one_sentence() -> None:
    res = result(t=2)
    res.expression[0] = np.nan  # the other frame loses its face too
    with pytest.raises(ReconstructError, match="No face was found in any frame of 'clip.avi'."):
        sequence_channels(res, by_hand, name="'clip.avi'")


def test_equals_the_photo_plan_on_the_open_head() -> None:
    encoder = ExpressionEncoder()
    names = list(encoder.expression_names)
    res = result(t=3, names=tuple(names))
    target = Target("head", tuple(names), ("jaw", "eye.L", "eye.R"), face_model=encoder.face_model.name)
    planner = lambda e: plan(e, encoder.face_model, target, {"expression", "jaw", "gaze"})  # noqa: E731
    channels = sequence_channels(res, planner)
    photo = planner(res.expression_at(2))
    row = dict(zip(channels.columns, channels.values[2], strict=True))
    for key, weight in photo.weights.items():
        assert row[(weight_property(key), 0)] == pytest.approx(weight, abs=1e-6)
    for bone, angle in photo.rotations.items():
        assert [row[(weight_property(bone), i)] for i in range(3)] == pytest.approx(list(angle), abs=1e-6)
    assert planner(neutral_expression(names)).route == "direct"
