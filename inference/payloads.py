"""What one input becomes, shared by the command line and the batch so both give the same result.

`photo_payload` is photo mode's JSON object for one photo (perception, then the encoder per face);
`smoothing_settings` turns the command line's One-Euro options into the settings the sequence
pipeline takes, with the same defaults everywhere; `read_livelink` reads a Live Link Face CSV as a
raw sequence result, as both command lines take it. Keeping them here, not in `__main__`, is what
lets a batch result equal a single run's byte for byte. Must not import bpy (nor Ray).
"""

from __future__ import annotations

import argparse
from typing import Any


def photo_payload(perception: Any, encoder: Any, path: str, shape_of: Any = None, neutral: Any = None,
                  ) -> dict[str, Any]:
    """`{"image": path, faces..., width, height}` plus, with an encoder, `model` and each face's
    expression, jaw, eyelids, gaze, head pose and emotion (relative to `neutral`, an
    `expression.calibration.Neutral`, when given), and with `shape_of(face, expression)` (Match
    face shape) its fitted identity. Raises the perception's `FieldsError` on a bad file."""
    result = perception.run(path)
    payload = {"image": path, **result.to_json()}
    if encoder is not None:
        payload["model"] = encoder.describe()
        if neutral is not None:
            payload["neutral"] = {"source": neutral.source}
        for face, entry in zip(result.faces, payload["faces"], strict=True):
            expression = encoder.predict_face(face)
            if neutral is not None:
                expression = encoder.calibrated(expression, neutral)
            entry.update(expression.to_json())
            if shape_of is not None:
                entry["shape"] = shape_of(face, expression).to_json()
    return payload


def add_sequence_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The per-sequence options both command lines take, with the same defaults and help."""
    parser.add_argument("--step", type=int, default=1, help="process every Nth frame (default 1)")
    parser.add_argument("--fps", type=float, default=None, help="frame rate (default: the video's; 24 for a folder)")
    parser.add_argument("--face", type=int, default=0, help="which face to follow, 0 = the largest (default 0)")
    parser.add_argument("--gaps", choices=("interpolate", "hold", "leave"), default="interpolate",
                        help="frames without a face: interpolate across (default), hold the last value, or leave NaN")
    parser.add_argument("--min-cutoff", type=float, default=None, help="One-Euro min cutoff in Hz (default 1.0)")
    parser.add_argument("--beta", type=float, default=None, help="One-Euro speed coefficient (default 10)")
    parser.add_argument("--d-cutoff", type=float, default=None, help="One-Euro derivative cutoff in Hz (default 1.0)")
    parser.add_argument("--no-smoothing", action="store_true", help="keep the per-frame values unsmoothed")


def add_neutral_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                        sequences: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--neutral` (onto `parser`: photos take it too) and `--min-confidence` (onto `sequences`), as
    both command lines take them."""
    parser.add_argument("--neutral", metavar="PHOTO|START:END|auto",
                        help="read the expression relative to the actor at rest: a photo of them at rest, or "
                        "(sequences, CSV takes) source frames START to END (from 0, END included) or auto (the "
                        "calmest half second)")
    sequences.add_argument("--min-confidence", type=float, default=0.0,
                           help="frames whose face score is below this (0 to 1) are gaps, filled as --gaps says "
                           "(default 0: every face found is used; a CSV row counts as confident)")


def smoothing_settings(no_smoothing: bool = False, min_cutoff: float | None = None, beta: float | None = None,
                       d_cutoff: float | None = None) -> Any:
    """`OneEuroSettings` with each option given or defaulted, or None when smoothing is off."""
    from .sequence.smoothing import OneEuroSettings

    if no_smoothing:
        return None
    defaults = OneEuroSettings()
    return OneEuroSettings(min_cutoff=min_cutoff if min_cutoff is not None else defaults.min_cutoff,
                           beta=beta if beta is not None else defaults.beta,
                           d_cutoff=d_cutoff if d_cutoff is not None else defaults.d_cutoff)


def read_livelink(path: str, fps: float | None, timecode_fps: int, start: int = 0, end: int | None = None,
                  step: int = 1, encoder: Any = None) -> Any:
    """A Live Link Face CSV as a raw `SequenceResult` at `fps` (None: its timecode rate), frames
    `start`..`end` (inclusive) every `step`, its units through the encoder's head table."""
    from .expression.encoder import ExpressionEncoder
    from .sequence.livelink import read_result, select_rows

    raw = read_result(path, encoder if encoder is not None else ExpressionEncoder(), fps, timecode_fps)
    keep = (raw.frames >= start) & ((raw.frames - start) % step == 0)
    if end is not None:
        keep &= raw.frames <= end
    if not keep.any():
        from .errors import SequenceError

        raise SequenceError(path, f"has no frames in the selected range (it has {len(raw.frames)}).",
                            kind="Live Link Face CSV")
    return select_rows(raw, keep) if not keep.all() else raw


def photo_neutral(perception: Any, encoder: Any, path: str) -> Any:
    """The `Neutral` read from a photo of the actor at rest (its largest face). Raises the
    perception's `FieldsError` on a bad file and `NeutralError` when it holds no face."""
    import numpy as np

    from .expression.calibration import Neutral, NeutralError
    from .perception.blendshapes import ARKIT_NAMES

    faces = perception.run(path).faces
    if not faces:
        raise NeutralError(f"No face was found in the neutral photo '{path}'.")
    expression = encoder.predict_face(faces[0])
    return Neutral.from_rows(np.array([expression.units[u] for u in ARKIT_NAMES]),
                             np.array([expression.emotion_probs[e] for e in encoder.emotions]),
                             np.array([expression.intensity]), encoder.emotions, source=f"'{path}'",
                             head_pose=expression.head_pose)


def sequence_neutral(spec: Any, raw: Any, name: str, photo: Any = None, first_number: int = 0) -> Any:
    """The `Neutral` a `NeutralSpec` asks for on a raw `SequenceResult`: its frames START..END
    (source numbers from 0, END included), its calmest stretch (auto), or `photo()` for a photo.
    Raises `NeutralError` naming the clip when the range lies outside it or holds no face; its
    messages and label count frames from `first_number` (the panel's 1, the command line's 0)."""
    from .expression.calibration import Neutral, calmest_stretch, frame_rows

    if spec.kind == "photo":
        return photo()
    units = raw.units()
    rows: Any
    if spec.kind == "frames":
        rows = frame_rows(raw.frames + first_number, spec.start + first_number, spec.end + first_number, name)
        where = f"{name} frames {spec.start + first_number}-{spec.end + first_number}"
    else:
        rows = calmest_stretch(units, raw.found, raw.fps)
        numbers = raw.frames[rows] + first_number
        where = f"{name} frames {int(numbers[0])}-{int(numbers[-1])} (calmest)"
    return Neutral.from_rows(units[rows], raw.emotion_probs[rows], raw.intensity[rows], raw.emotions, source=where,
                             head_pose=raw.head_pose[rows])
