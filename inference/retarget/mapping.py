"""A rig's mapping: which shape key or bone axis each ARKit unit drives, and how strongly.

A `Mapping` is a list of `Row`s (unit -> shape key, or unit -> a bone's rotation about one of its
own axes, with a gain: weight = gain x unit, or radians = gain x unit). Several rows may share a
unit (CC4's `browInnerUp` drives two keys) or a target (their values add). `auto_mapping` proposes
one from a rig's key names (ARKit spellings, CC4 Extended, Daz FACS: `names.py`); the artist edits
it in the panel, and it saves and loads as a JSON preset (`to_json` / `from_json`, checked on the
way in: a damaged preset is one sentence naming the file). `check` names the first row whose key or
bone the rig lacks; `evaluate` turns 52 units into a plan's weights and rotations. Must not import bpy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import FieldsError
from ..perception.blendshapes import ARKIT_NAMES
from .arkit import match_arkit_report
from .names import CC4_EXTENDED, daz_core

FORMAT = 1
KINDS = ("key", "bone")
AXES = "XYZ"


class MappingError(FieldsError):
    """A mapping or preset that cannot be used; the message is one sentence naming it."""


@dataclass(frozen=True)
class Row:
    unit: str  # an ARKit name
    target: str  # a shape-key name (kind "key") or a bone name (kind "bone")
    kind: str = "key"
    axis: int = 0  # the bone's own axis turned (0 X, 1 Y, 2 Z); ignored for keys
    gain: float = 1.0  # key weight per unit, or radians per unit


@dataclass(frozen=True)
class Mapping:
    rows: tuple[Row, ...]

    def unmapped(self) -> tuple[str, ...]:
        """The ARKit units no row drives, in Apple's order."""
        used = {row.unit for row in self.rows}
        return tuple(unit for unit in ARKIT_NAMES if unit not in used)

    def check(self, rig: str, shape_keys: Iterable[str], bones: Iterable[str]) -> None:
        """MappingError naming the first row whose shape key or bone `rig` does not have."""
        keys, bone_names = set(shape_keys), set(bones)
        for row in self.rows:
            if row.kind == "key" and row.target not in keys:
                raise MappingError(f"The mapping drives the shape key '{row.target}' (from {row.unit}), which "
                                   f"'{rig}' does not have: fix or remove that row.")
            if row.kind == "bone" and row.target not in bone_names:
                raise MappingError(f"The mapping turns the bone '{row.target}' (from {row.unit}), which "
                                   f"'{rig}' has no armature bone of that name: fix or remove that row.")

    def evaluate(self, units: MappingType[str, float], parts: Any = None) -> tuple[dict[str, float],
                                                                                  dict[str, np.ndarray]]:
        """({shape key: weight}, {bone: (3,) axis-angle in the bone's axes}) for `units`; with
        `parts` (a set of plan parts), rows whose unit belongs to no chosen part are skipped."""
        from .plan import arkit_part

        weights: dict[str, float] = {}
        rotations: dict[str, np.ndarray] = {}
        for row in self.rows:
            if parts is not None and arkit_part(row.unit) not in parts:
                continue
            value = row.gain * float(units[row.unit])
            if row.kind == "key":
                weights[row.target] = weights.get(row.target, 0.0) + value
            else:
                rotations.setdefault(row.target, np.zeros(3))[row.axis] += value
        return weights, rotations

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "rows": [
            {"unit": r.unit, "kind": r.kind, "target": r.target, "axis": AXES[r.axis], "gain": r.gain}
            for r in self.rows]}, indent=1)

    @classmethod
    def from_json(cls, text: str, where: str) -> Mapping:
        """Read a preset; MappingError naming `where` and the first problem."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("not a FIELDS mapping preset (format 1)")
            rows = []
            for i, entry in enumerate(data["rows"]):
                unit, kind, target = str(entry["unit"]), str(entry.get("kind", "key")), str(entry["target"])
                axis, gain = str(entry.get("axis", "X")).upper(), float(entry.get("gain", 1.0))
                if unit not in ARKIT_NAMES:
                    raise ValueError(f"row {i + 1} names '{unit}', which is not an ARKit unit")
                if kind not in KINDS or axis not in AXES or not target or not np.isfinite(gain):
                    raise ValueError(f"row {i + 1} is not a shape key or bone axis with a finite gain")
                rows.append(Row(unit, target, kind, AXES.index(axis), gain))
        except (ValueError, KeyError, TypeError) as error:
            raise MappingError(f"The mapping preset {where} cannot be read: {error}.") from None
        return cls(tuple(rows))


def auto_mapping(shape_keys: Sequence[str]) -> Mapping:
    """A first mapping for a rig from its shape-key names: ARKit spellings (`arkit_key`), Daz FACS
    names (`daz_core`) and CC4 Extended's own names (`CC4_EXTENDED`), gain 1. Units claimed by
    several keys of the same kind are left out (see `match_arkit_report`), never guessed."""
    readable = {name: (daz_core(name) or name) for name in shape_keys}
    report = match_arkit_report(list(readable.values()))
    back = {core: name for name, core in readable.items()}
    rows = [Row(unit, back[core]) for unit, core in report.matched.items()]
    present = set(shape_keys)
    mapped = {row.unit for row in rows}
    for unit, keys in CC4_EXTENDED.items():
        if unit not in mapped and all(key in present for key in keys):
            rows += [Row(unit, key) for key in keys]
    order = {unit: i for i, unit in enumerate(ARKIT_NAMES)}
    return Mapping(tuple(sorted(rows, key=lambda row: order[row.unit])))

