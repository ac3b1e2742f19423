"""ARKit-named rigs: which shape key of a rig is which of the 52 ARKit units, decided by name.

Case- and separator-insensitive after dropping a namespace, with a side suffix read as Left or
Right (`arkit_key` says exactly what is accepted). Unmatched keys, missing units and units claimed
by several keys are reported, never guessed. Pure Python; must not import bpy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..head.default_head import ArkitMapping, HeadParams
from ..perception.blendshapes import ARKIT_NAMES

_SEPARATORS = re.compile(r"[ _.\-]")
# A side suffix: "Left"/"Right" with or without a separator (eyeBlinkLeft, eyeBlink_left), or a
# lone L/R after a separator (eyeBlink_L, eyeBlink.L). A bare trailing l/r (mouthFunnel) is not one.
_SIDE = re.compile(r"^(?P<base>.+?)(?:[ _.\-]?(?P<word>left|right)|[ _.\-](?P<letter>[lr]))$", re.IGNORECASE)
_SIDE_ONLY = re.compile(r"^(left|right|l|r)$", re.IGNORECASE)


def arkit_key(name: str) -> tuple[str, str] | None:
    """The (base, side) a shape-key name stands for, side in {"", "left", "right"}; None if empty.

    Accepted, and nothing else: an optional namespace before the last ':' and before the last '.'
    (`Face.`, `blendShape1.`, `head:`; a final `.L`/`.R` is a side, not a namespace) is dropped;
    a side suffix is `Left`/`Right` (any case, optionally after one of ` _.-`) or `L`/`R` after one
    of those separators; the rest is compared with separators removed and case folded. So
    `eyeBlinkLeft`, `EyeBlinkLeft`, `eye_blink_L`, `EYE-BLINK-LEFT`, `Face.eyeBlink.L` all give
    ("eyeblink", "left"). Side-first forms (`L_eyeBlink`), numbered copies (`jawOpen.001`) and
    abbreviations are not accepted."""
    core = name.strip().rsplit(":", 1)[-1]
    parts = core.split(".")
    if len(parts) >= 2 and _SIDE_ONLY.match(parts[-1]):
        core = f"{parts[-2]}_{parts[-1]}"
    else:
        core = parts[-1]
    side = ""
    match = _SIDE.match(core)
    if match:
        core = match.group("base")
        side = "left" if (match.group("word") or match.group("letter")).lower()[0] == "l" else "right"
    base = _SEPARATORS.sub("", core).casefold()
    return (base, side) if base else None


_ARKIT_BY_KEY = {arkit_key(name): name for name in ARKIT_NAMES}
assert len(_ARKIT_BY_KEY) == len(ARKIT_NAMES), "two ARKit names normalise alike"


@dataclass(frozen=True)
class ArkitMatch:
    """How a rig's shape-key names line up with the 52 ARKit units."""

    matched: dict[str, str]  # ARKit name -> shape-key name
    unmatched: tuple[str, ...]  # the rig's keys that name no ARKit unit (left alone)
    missing: tuple[str, ...]  # ARKit units the rig has no key for
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)  # units claimed by several keys


def match_arkit_report(shape_key_names: Sequence[str]) -> ArkitMatch:
    """Match shape-key names to ARKit units (see `arkit_key` for what is accepted). When several keys
    claim one unit, a key spelled exactly as ARKit spells it wins; otherwise the unit is reported as
    ambiguous and left out, never guessed."""
    claims: dict[str, list[str]] = {}
    unmatched = []
    for key_name in shape_key_names:
        unit = _ARKIT_BY_KEY.get(arkit_key(key_name))
        if unit is None:
            unmatched.append(key_name)
        else:
            claims.setdefault(unit, []).append(key_name)
    matched, ambiguous = {}, {}
    for unit in ARKIT_NAMES:
        names = claims.get(unit, [])
        if len(names) == 1:
            matched[unit] = names[0]
        elif unit in names:
            matched[unit] = unit
        elif names:
            ambiguous[unit] = tuple(names)
    missing = tuple(unit for unit in ARKIT_NAMES if unit not in claims)
    return ArkitMatch(matched, tuple(unmatched), missing, ambiguous)


def match_arkit_names(shape_key_names: Sequence[str]) -> dict[str, str]:
    """{ARKit name: shape-key name} for the keys of a rig that name ARKit units (see `arkit_key`)."""
    return match_arkit_report(shape_key_names).matched


def arkit_key_values(values: np.ndarray | Sequence[float] | HeadParams, matched: Mapping[str, str],
                     mapping: ArkitMapping | None = None) -> dict[str, float]:
    """{shape-key name: value} for an ARKit-named rig, from 52 ARKit weights (Apple's order) or from
    the open head's parameters (`mapping` then converts them to ARKit weights). Units the rig lacks
    are skipped; values are passed through unclamped (intensity may scale them past 1)."""
    if isinstance(values, HeadParams):
        if mapping is None:
            raise ValueError("head parameters need the head's ArkitMapping to become ARKit weights")
        weights = mapping.from_params(values)
    else:
        weights = np.asarray(values, dtype=np.float64).reshape(-1)
        if weights.shape != (len(ARKIT_NAMES),):
            raise ValueError(f"expected {len(ARKIT_NAMES)} ARKit weights, got {weights.shape[0]}")
    return {matched[unit]: float(weights[i]) for i, unit in enumerate(ARKIT_NAMES) if unit in matched}
