"""Emotion prototypes (issue 4): one table of ARKit weights from EMFACS, scaled by intensity."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.expression.emotions import ACTION_UNITS, EMOTIONS, PROTOTYPES, emotion_weights, prototype  # noqa: E402
from inference.head.default_head import mirror_name  # noqa: E402
from inference.perception.blendshapes import ARKIT_NAMES  # noqa: E402


def test_the_eight_prototypes_use_only_arkit_units_in_range() -> None:
    assert EMOTIONS == ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt")
    assert set(PROTOTYPES) == set(EMOTIONS) == set(ACTION_UNITS)
    for name, units in PROTOTYPES.items():
        assert set(units) <= set(ARKIT_NAMES), name
        assert all(0 < w <= 1 for w in units.values()), name
    assert not prototype("neutral").any()


def test_prototypes_carry_their_defining_action_units() -> None:
    w = {name: dict(zip(ARKIT_NAMES, prototype(name), strict=True)) for name in EMOTIONS}
    assert w["happiness"]["mouthSmileLeft"] > 0.5 and w["happiness"]["cheekSquintLeft"] > 0  # AU12, AU6
    assert w["sadness"]["browInnerUp"] > 0 and w["sadness"]["mouthFrownLeft"] > 0  # AU1, AU15
    assert w["surprise"]["browOuterUpLeft"] > 0 and w["surprise"]["jawOpen"] > 0  # AU2, AU26
    assert w["fear"]["eyeWideLeft"] > 0 and w["fear"]["mouthStretchLeft"] > 0  # AU5, AU20
    assert w["disgust"]["noseSneerLeft"] > 0  # AU9
    assert w["anger"]["browDownLeft"] > 0.5 and w["anger"]["mouthPressLeft"] > 0  # AU4, AU23/24
    assert w["contempt"]["mouthDimpleRight"] > 0 and w["contempt"]["mouthDimpleLeft"] == 0  # R14


@pytest.mark.parametrize("name", [e for e in EMOTIONS if e != "contempt"])
def test_symmetric_emotions_weigh_both_sides_alike(name: str) -> None:
    weights = dict(zip(ARKIT_NAMES, prototype(name), strict=True))
    for unit, value in weights.items():
        twin = mirror_name(unit)
        if twin is not None and unit not in ("jawLeft", "jawRight", "mouthLeft", "mouthRight"):
            assert weights[twin] == value, unit


def test_intensity_scales_from_neutral_to_full_and_clamps() -> None:
    full = prototype("fear")
    assert np.allclose(emotion_weights("fear", 0.0), 0)
    assert np.allclose(emotion_weights("fear", 0.5), 0.5 * full)
    assert np.allclose(emotion_weights("fear", 1.0), full)
    assert np.allclose(emotion_weights("fear", 3.0), full) and np.allclose(emotion_weights("fear", -1), 0)
    with pytest.raises(KeyError):
        emotion_weights("boredom")
