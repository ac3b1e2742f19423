"""Per-region strength (issue 13): which region of the face each driven channel belongs to.

The artist scales five regions separately (brows, eyes, gaze, mouth, jaw) and the head's turn
(head), each through a keyable multiplier on the head (`fields_strength_<region>`) that the
channel's driver multiplies in beside the intensity. A shape key's region is its ARKit unit's; a
FLAME head's expression components mix regions, so they take no region (only Intensity scales
them); eyelid keys are eyes, the jaw bone jaw, the eye bones gaze. Must not import bpy.
"""

from __future__ import annotations

REGIONS = ("brows", "eyes", "gaze", "mouth", "jaw", "head")
STRENGTH_PREFIX = "fields_strength_"
DESCRIPTIONS = {
    "brows": "brow keys (browDown, browInnerUp, browOuterUp)",
    "eyes": "eyelid keys (eyeBlink, eyeSquint, eyeWide; a FLAME head's eyelids)",
    "gaze": "eye turns (eye bones, eyeLook keys)",
    "mouth": "mouth, cheek, nose and tongue keys",
    "jaw": "the jaw (jaw bone, jawOpen/Forward/Left/Right keys)",
    "head": "the head's turn keyed from the face's pose",
}


def strength_property(region: str) -> str:
    """The custom property on the head holding `region`'s multiplier."""
    return STRENGTH_PREFIX + region


def unit_region(unit: str) -> str:
    """The region of an ARKit unit ("" for a name that is not one)."""
    if unit.startswith("brow"):
        return "brows"
    if unit.startswith(("eyeBlink", "eyeSquint", "eyeWide")):
        return "eyes"
    if unit.startswith("eyeLook"):
        return "gaze"
    if unit.startswith("jaw"):
        return "jaw"
    if unit.startswith(("mouth", "cheek", "nose", "tongue")):
        return "mouth"
    return ""


BONE_REGIONS = {"jaw": "jaw", "eye.L": "gaze", "eye.R": "gaze"}  # a FIELDS head's driven bones
