"""The eight emotion prototypes as ARKit-unit weights: the one table training and the demo share.

Each prototype is the EMFACS action-unit combination for the emotion (Ekman & Friesen; see
docs/DEFAULT_HEAD.md for the citations and docs/reference FACS_ARKIT.md for the AU -> ARKit map),
written as weights of the 52 ARKit units at full intensity. `emotion_weights(name, intensity)`
scales a prototype linearly from neutral (0) to full (1), clamped to [0, 1]. Left/right units are
equal except in contempt, which is one-sided by definition (R12A + R14A). Must not import bpy.
"""

from __future__ import annotations

import numpy as np

from ..perception.blendshapes import ARKIT_NAMES

EMOTIONS = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt")

# EMFACS combination of each prototype, for the documentation and the tests.
ACTION_UNITS = {
    "neutral": "none",
    "happiness": "6+12 (+25)",
    "sadness": "1+4+15 (+17)",
    "surprise": "1+2+5B+26",
    "fear": "1+2+4+5+7+20+26",
    "disgust": "9+10+15+17 (+4, 6, 7)",
    "anger": "4+5+7+23 (23 as 24 + 28)",
    "contempt": "R12A+R14A",
}


def _both(unit: str, weight: float) -> dict[str, float]:
    return {f"{unit}Left": weight, f"{unit}Right": weight}


# Weights at intensity 1, one AU at a time (AU -> ARKit as in FACS_ARKIT.md section 2).
PROTOTYPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happiness": {  # AU6 cheek raiser, AU12 lip corner puller, AU25 lips part
        **_both("cheekSquint", 0.6),
        **_both("mouthSmile", 0.85),
        **_both("eyeSquint", 0.2),
        **_both("mouthUpperUp", 0.15),
        "jawOpen": 0.1,
    },
    "sadness": {  # AU1 inner brow raiser, AU4 brow lowerer, AU15 lip corner depressor, AU17 chin raiser
        "browInnerUp": 0.95,
        **_both("browDown", 0.2),
        **_both("mouthFrown", 1.0),
        "mouthShrugLower": 0.5,
        **_both("eyeBlink", 0.25),
    },
    "surprise": {  # AU1+2 brows up, AU5B upper lid raiser (moderate), AU26 jaw drop
        "browInnerUp": 0.85,
        **_both("browOuterUp", 0.85),
        **_both("eyeWide", 0.4),
        "jawOpen": 0.5,
    },
    "fear": {  # AU1+2+4 brows up and drawn together, AU5 lids up, AU7 lid tightener, AU20 stretch, AU26
        "browInnerUp": 0.8,
        **_both("browOuterUp", 0.45),
        **_both("browDown", 0.3),
        **_both("eyeWide", 0.75),
        **_both("eyeSquint", 0.2),
        **_both("mouthStretch", 0.6),
        "jawOpen": 0.3,
    },
    "disgust": {  # AU9 nose wrinkler, AU10 upper lip raiser, AU15, AU16 lower lip depressor, AU6/AU4 spill
        **_both("noseSneer", 1.0),
        **_both("mouthUpperUp", 0.4),
        **_both("mouthFrown", 0.7),
        "mouthShrugLower": 0.4,
        **_both("cheekSquint", 0.6),
        **_both("eyeSquint", 0.4),
        **_both("browDown", 0.5),
        "mouthShrugUpper": 0.3,
    },
    "anger": {  # AU4 brow lowerer, AU5 lids up, AU7 lid tightener, AU23 lip tightener (as 24 + 28)
        **_both("browDown", 0.85),
        **_both("eyeWide", 0.35),
        **_both("eyeSquint", 0.5),
        **_both("mouthPress", 0.55),
        "mouthRollUpper": 0.15,
        "mouthRollLower": 0.15,
    },
    "contempt": {  # R12A + R14A: one corner (the subject's right) up and tightened
        "mouthSmileRight": 0.55,
        "mouthDimpleRight": 0.7,
        "mouthRight": 0.2,
    },
}


def prototype(name: str) -> np.ndarray:
    """The (52,) ARKit weights of a prototype at full intensity, in Apple's order."""
    if name not in PROTOTYPES:
        raise KeyError(f"unknown emotion {name!r}; expected one of {', '.join(EMOTIONS)}")
    weights = np.zeros(len(ARKIT_NAMES))
    for unit, value in PROTOTYPES[name].items():
        weights[ARKIT_NAMES.index(unit)] = value
    return weights


def emotion_weights(name: str, intensity: float = 1.0) -> np.ndarray:
    """Weights of `name` at `intensity` in [0, 1]: 0 is neutral, 1 the full prototype."""
    return np.clip(float(np.clip(intensity, 0.0, 1.0)) * prototype(name), 0.0, 1.0)
