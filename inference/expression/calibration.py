"""Neutral calibration: the encoder's reading made relative to one actor's resting face.

A `Neutral` holds what the encoder read on the actor at rest: the 52 ARKit units, the log of the
emotion probabilities and the intensity. Calibration rescales rather than subtracts: each unit
becomes clip((u - n) / (1 - n), 0, 1), so the rest reads 0 and a full expression still reaches 1
(a subtraction would cap a unit resting at 0.3 at 0.7). The emotion is read relative to the rest by
removing the rest's bias from the logits (log p - log p_rest, then softmax: the same as subtracting
the rest's logits, since a softmax ignores a constant), and the intensity is rescaled like a unit.
`calmest_stretch` finds the rest automatically; `parse_neutral` reads the command line's
`--neutral PHOTO|START:END|auto`. A neutral travels as JSON (the head's custom property in Blender,
the CLI's output), checked on the way in. Must not import bpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import FieldsError
from ..perception.blendshapes import ARKIT_NAMES

FORMAT = 1
NEUTRAL_PROPERTY = "fields_neutral"  # the head's custom property holding `Neutral.to_json()` in Blender
# A unit that spans no more than this over a neutral frame range is still there (as a still stretch
# is for `training.real_metrics`): its rest is its highest reading in the range.
STILL_SPAN = 0.1
AUTO_WINDOW_S = 0.5  # the calmest stretch lasts this long (at least 3 frames)
_EPS = 1e-6


class NeutralError(FieldsError):
    """A neutral reference that cannot be used; the message is one sentence naming its source."""


@dataclass(frozen=True)
class Neutral:
    """The encoder's reading of the actor at rest."""

    units: np.ndarray  # (52,) ARKit units in ARKIT_NAMES order, [0, 1]
    emotions: tuple[str, ...]
    log_probs: np.ndarray  # (K,) log of the rest's emotion probabilities, `emotions` order
    intensity: float
    source: str = ""  # where it was taken, for the artist: "photo.jpg", "clip.mp4 frames 0-5"
    head_pose: np.ndarray | None = None  # (3,) the rest's head rotation in the camera (axis-angle); head pose
    # is read relative to it (issue 13), so an actor at rest is the rig at rest. None: neutrals set before.

    @classmethod
    def from_rows(cls, units: np.ndarray, probs: np.ndarray, intensity: np.ndarray,
                  emotions: list[str] | tuple[str, ...], source: str = "", head_pose: np.ndarray | None = None
                  ) -> Neutral:
        """The rest from one or several readings (rows): per unit, the highest reading where the
        unit stays within `STILL_SPAN` over the rows (perception's noise on a still face then reads
        as rest, not as a flicker of expression), else the median (robust to a blink inside a frame
        range); probabilities by their mean log; head poses (rows, 3) by their
        per-axis median (small turns: the axis-angles' median is the rest's)."""
        units = np.atleast_2d(np.asarray(units, dtype=np.float64))
        probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
        rows = ~(np.isnan(units).any(1) | np.isnan(probs).any(1))
        if not rows.any():
            raise NeutralError(f"No face was found in {source or 'the neutral reference'}, so it cannot be the "
                               "neutral.")
        kept = units[rows]
        top = kept.max(0)
        rest = np.where(top - kept.min(0) <= STILL_SPAN, top, np.median(kept, axis=0))
        return cls(np.clip(rest, 0.0, 1.0), tuple(emotions),
                   np.log(np.clip(probs[rows], _EPS, 1.0)).mean(0),
                   float(np.clip(np.median(np.asarray(intensity, dtype=np.float64).reshape(-1)[rows]), 0.0, 1.0)),
                   source, _rest_pose(head_pose, rows))

    def calibrate_units(self, units: np.ndarray) -> np.ndarray:
        """(..., 52) units relative to the rest: clip((u - n) / (1 - n), 0, 1); NaN stays NaN."""
        n = self.units
        return rescale(np.asarray(units, dtype=np.float64), n)

    def calibrate_probs(self, probs: np.ndarray, emotions: list[str] | tuple[str, ...]) -> np.ndarray:
        """(..., K) probabilities with the rest's bias removed from their logits."""
        if tuple(emotions) != self.emotions:
            raise NeutralError(f"The neutral reference was read with the emotions {', '.join(self.emotions)}, "
                               "not this encoder's: set the neutral again.")
        logits = np.log(np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0)) - self.log_probs
        logits -= logits.max(-1, keepdims=True)
        out = np.exp(logits)
        return out / out.sum(-1, keepdims=True)  # type: ignore[no-any-return]

    def calibrate_intensity(self, intensity: np.ndarray | float) -> np.ndarray:
        return rescale(np.asarray(intensity, dtype=np.float64), np.asarray(self.intensity))

    def calibrate_head_pose(self, head_pose: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame head rotations relative to the rest's (unchanged without one)."""
        from ..retarget.head_pose import relative

        poses = np.asarray(head_pose, dtype=np.float64)
        if self.head_pose is None:
            return poses
        flat = poses.reshape(-1, 3)
        out = np.array([row if np.isnan(row).any() else relative(row, self.head_pose) for row in flat])
        return out.reshape(poses.shape)

    def to_json(self) -> str:
        units = dict(zip(ARKIT_NAMES, np.round(self.units, 6).tolist(), strict=True))
        data = {"format": FORMAT, "units": units,
                "emotions": list(self.emotions), "log_probs": np.round(self.log_probs, 6).tolist(),
                "intensity": round(self.intensity, 6), "source": self.source}
        if self.head_pose is not None:
            data["head_pose"] = np.round(self.head_pose, 6).tolist()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str, where: str = "the neutral reference") -> Neutral:
        """Read what `to_json` wrote; NeutralError naming `where` when it is not that."""
        try:
            data: Any = json.loads(text)
            units = np.array([float(data["units"][name]) for name in ARKIT_NAMES])
            emotions = tuple(str(e) for e in data["emotions"])
            log_probs = np.array([float(v) for v in data["log_probs"]])
            intensity = float(data["intensity"])
            head_pose = None if data.get("head_pose") is None else np.array([float(v) for v in data["head_pose"]])
            if head_pose is not None and (head_pose.shape != (3,) or not np.isfinite(head_pose).all()):
                raise ValueError("head_pose is not three finite numbers")
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
        except (ValueError, KeyError, TypeError) as error:
            problem = f"{type(error).__name__}: {error}"
            raise NeutralError(f"{where} is damaged ({problem}): set the neutral again.") from None
        if (len(log_probs) != len(emotions) or not np.isfinite(units).all() or not np.isfinite(log_probs).all()
                or (units < 0).any() or (units > 1).any() or not 0.0 <= intensity <= 1.0):
            raise NeutralError(f"{where} holds values out of range: set the neutral again.")
        return cls(units, emotions, log_probs, intensity, str(data.get("source", "")), head_pose)


def _rest_pose(head_pose: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    if head_pose is None:
        return None
    poses = np.asarray(head_pose, dtype=np.float64).reshape(-1, 3)[rows]
    poses = poses[~np.isnan(poses).any(1)]
    return np.median(poses, axis=0) if len(poses) else None


def rescale(values: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """clip((v - rest) / (1 - rest), 0, 1), with a rest at 1 read as 'never moves from there'."""
    with np.errstate(invalid="ignore"):
        out = np.clip((values - rest) / np.maximum(1.0 - rest, _EPS), 0.0, 1.0)
    return np.where(np.isnan(values), np.nan, out)


def calmest_stretch(units: np.ndarray, found: np.ndarray, fps: float, window_s: float = AUTO_WINDOW_S) -> slice:
    """The rows of the calmest stretch of a sequence: the window (about `window_s`, at least 3
    rows, all with a face) whose units are lowest and stillest (mean of the units plus their mean
    frame-to-frame change). Raises NeutralError when no such window exists."""
    units = np.asarray(units, dtype=np.float64)
    t = len(units)
    width = max(3, int(round(window_s * fps)))
    if t < width:
        width = t
    if width == 0 or not found.any():
        raise NeutralError("No face was found in the sequence, so no neutral stretch can be chosen.")
    level = np.nan_to_num(units.mean(1), nan=np.inf)
    change = np.zeros(t)
    change[1:] = np.nan_to_num(np.abs(np.diff(units, axis=0)).mean(1), nan=np.inf)
    cost = level + change
    cost[~found] = np.inf
    windows = np.lib.stride_tricks.sliding_window_view(cost, width).mean(1)
    best = int(np.argmin(windows))
    if not np.isfinite(windows[best]):
        raise NeutralError(f"No stretch of {width} frames holds a face in every frame, so no neutral stretch "
                           "can be chosen: pick a frame range instead.")
    return slice(best, best + width)


@dataclass(frozen=True)
class NeutralSpec:
    """What `--neutral` (or the panel) asks for: a photo, a frame range, or automatic."""

    kind: str  # "photo", "frames" or "auto"
    photo: str = ""
    start: int = 0
    end: int = 0  # inclusive, source frame numbers from 0


def parse_neutral(text: str) -> NeutralSpec:
    """`auto`, `START:END` (source frames from 0, END included) or a photo's path."""
    text = text.strip()
    if text.lower() == "auto":
        return NeutralSpec("auto")
    head, colon, tail = text.partition(":")
    if colon and head.strip().lstrip("-").isdigit() and tail.strip().lstrip("-").isdigit():
        start, end = int(head), int(tail)
        if start < 0 or end < start:
            raise NeutralError(f"The neutral frame range {text} is empty or negative: give START:END with "
                               "0 <= START <= END.")
        return NeutralSpec("frames", start=start, end=end)
    if not text:
        raise NeutralError("The neutral reference is empty: give a photo, START:END or auto.")
    return NeutralSpec("photo", photo=text)


def frame_rows(frames: np.ndarray, start: int, end: int, name: str) -> np.ndarray:
    """The rows of a sequence's source `frames` inside START..END; NeutralError naming the clip and
    the frames it has when the range lies outside them."""
    rows = np.flatnonzero((frames >= start) & (frames <= end))
    if rows.size == 0:
        have = f"{int(frames[0])}-{int(frames[-1])}" if len(frames) else "none"
        raise NeutralError(f"The neutral frames {start}-{end} are outside {name}, whose frames read are {have}.")
    return rows
