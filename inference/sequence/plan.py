"""A processed `SequenceResult` onto a target's channels: one photo-style `Plan` per frame, laid
out as a (T, C) matrix the add-on keys in bulk.

Each column is one keyable channel of the target, `(property, array index)`: the weight
properties of the photo path (`fields_w_<key>`, index 0), the bones' axis-angle properties
(`fields_w_<bone>`, indices 0-2) and, when asked, `fields_intensity` with the intensity read per
frame. Per-frame values come from `reconstruct.plan` on `result.expression_at(row)`, so every
route (direct, FLAME retargeting, ARKit names) animates exactly as it poses a photo. A row with
NaN (a gap left open) stays NaN, so no key is written there. Must not import bpy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..expression.encoder import Expression
from ..perception.blendshapes import ARKIT_NAMES
from ..retarget.plan import INTENSITY_PROPERTY, PREDICTED_INTENSITY_PROPERTY, Plan, ReconstructError, weight_property

Column = tuple[str, int]  # (custom property, array index)
CONFIDENCE_PROPERTY = "fields_confidence"  # the face score per frame, keyed on the target (issue 13)


@dataclass
class SequenceChannels:
    columns: list[Column]
    values: np.ndarray  # (T, C) float32, NaN where no key is wanted
    first_plan: Plan  # the first frame with a face: creates the properties and drivers, as a photo does
    first_row: int


def neutral_expression(expression_names: list[str]) -> Expression:
    """An all-zero prediction: lets the operator check that the target can be driven before it
    spends minutes on a video."""
    return Expression(expression=dict.fromkeys(expression_names, 0.0), jaw=np.zeros(3), eyelids=np.zeros(2),
                      gaze=np.zeros((2, 3)), emotion="", emotion_probs={}, intensity=0.0,
                      units=dict.fromkeys(ARKIT_NAMES, 0.0))


def _plan_columns(first: Plan, key_intensity: bool) -> list[Column]:
    columns: list[Column] = [(weight_property(name), 0) for name in first.weights]
    columns += [(weight_property(bone), i) for bone in first.rotations for i in range(3)]
    # The intensity read in each frame is always keyed, as information (the weights already carry
    # the expression as read); keying it into the intensity control as well is the artist's choice.
    columns.append((PREDICTED_INTENSITY_PROPERTY, 0))
    if key_intensity:
        columns.append((INTENSITY_PROPERTY, 0))
    return columns


def sequence_channels(result: object, plan_frame: Callable[[Expression], Plan], *,
                      key_intensity: bool = False, name: str = "the sequence") -> SequenceChannels:
    """Plan every row of the processed `result` (a `SequenceResult`) with `plan_frame` (the photo
    path's `plan` bound to the target and its loaders). Raises ReconstructError when no frame holds
    a face."""
    from .pipeline import PARAMETERS, SequenceResult

    assert isinstance(result, SequenceResult)
    t = len(result.frames)
    valid = np.ones(t, dtype=bool)
    for parameter in PARAMETERS:
        array = getattr(result, parameter).reshape(t, -1)
        valid &= ~np.isnan(array).any(axis=1)
    rows = np.flatnonzero(valid)
    if rows.size == 0:
        raise ReconstructError(f"No face was found in any frame of {name}.")
    first = plan_frame(result.expression_at(int(rows[0])))
    columns = _plan_columns(first, key_intensity)
    index = {column: c for c, column in enumerate(columns)}
    values = np.full((t, len(columns)), np.nan, dtype=np.float32)
    for row in rows:
        frame_plan = first if row == rows[0] else plan_frame(result.expression_at(int(row)))
        out = values[row]
        for key, weight in frame_plan.weights.items():
            c = index.get((weight_property(key), 0))
            if c is not None:  # the plan's keys depend on the target only, so this always holds
                out[c] = weight
        for bone, axis_angle in frame_plan.rotations.items():
            c = index.get((weight_property(bone), 0))
            if c is not None:
                out[c:c + 3] = axis_angle
        out[index[(PREDICTED_INTENSITY_PROPERTY, 0)]] = result.intensity[row]
        if key_intensity:
            out[index[(INTENSITY_PROPERTY, 0)]] = result.intensity[row]
    return SequenceChannels(columns, values, first, int(rows[0]))
