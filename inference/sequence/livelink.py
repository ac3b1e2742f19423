"""Live Link Face CSV: the file Epic's iPhone app records, read as a sequence source and written from
any sequence result, so takes travel between FIELDS, Unreal and other tools.

The layout, checked against readers and writers of the format (Epic's app writes it; open readers
for Blender, Maya, Unity and MotionBuilder agree): a header `Timecode,BlendShapeCount`, the 52 ARKit
weights with capitalised names in the app's own order (`EyeBlinkLeft` ... `JawForward,JawRight,
JawLeft` ... `TongueOut`; not Apple's enum order), then `HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,
LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll` (radians); one row per captured
frame, `BlendShapeCount` 61. A timecode is `HH:MM:SS:FF.fff`: FF counts frames at the timecode
rate (60 by default in the app, 30 selectable) and `.fff` is the sub-frame fraction. Columns are
read by name, case-insensitively, so files with another order, `eyeBlinkLeft` spellings or
without the angle columns (older versions) are read too.

`read_take` / `write_take` are the file; `take_from_result` and `result_from_take` convert at the
boundary with a `SequenceResult`: import resamples the take at the caller's frame rate (the
scene's), each frame taking the row nearest in time within half a frame, and frames with none
become gaps, so a take then goes through `processed()` (gap filling, smoothing) and the
per-frame planner exactly as a video does. The head's angles travel as the result's `head_pose`
both ways (`yaw_pitch_roll` / `axis_angles`, one convention for head and eyes). Errors are
`LiveLinkError`, naming the file and the line. Must not import bpy.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FileProblem
from ..files import write_atomic
from ..perception.blendshapes import ARKIT_NAMES

# The app's column order (it differs from Apple's enum order around jaw, mouth and the sides).
UNIT_COLUMNS = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
    "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight", "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel",
    "MouthPucker", "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft",
    "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft", "MouthPressRight",
    "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight", "BrowDownLeft",
    "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft",
    "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut")
HEAD_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll")
EYE_COLUMNS = ("LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
HEADER = ("Timecode", "BlendShapeCount", *UNIT_COLUMNS, *HEAD_COLUMNS, *EYE_COLUMNS)
BLEND_SHAPE_COUNT = len(UNIT_COLUMNS) + len(HEAD_COLUMNS) + len(EYE_COLUMNS)  # 61, as the app writes
DEFAULT_TIMECODE_FPS = 60  # the app's default capture rate
_UNIT_OF = {column.lower(): column[0].lower() + column[1:] for column in UNIT_COLUMNS}
_TIMECODE = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})[:;](\d+)(?:\.(\d+))?\s*$")
assert set(_UNIT_OF.values()) == set(ARKIT_NAMES)


class LiveLinkError(FileProblem):
    """A Live Link Face CSV that cannot be read or written; the message names the file and, for a
    malformed file, the line."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(path, problem, kind="Live Link Face CSV")


@dataclass
class Take:
    """A take as the file holds it: T rows in time order."""

    times: np.ndarray  # (T,) seconds from the first row
    units: np.ndarray  # (T, 52) ARKit weights, ARKIT_NAMES (Apple's) order
    head: np.ndarray  # (T, 3) head yaw, pitch, roll, radians
    eyes: np.ndarray  # (T, 2, 3) left, right eye yaw, pitch, roll, radians
    start: float = 0.0  # seconds of the first timecode (time of day in the app's takes)


def format_timecode(seconds: float, rate: int = DEFAULT_TIMECODE_FPS) -> str:
    """`HH:MM:SS:FF.fff` with FF counted at `rate` frames per second and .fff the sub-frame."""
    ticks = round(seconds * rate * 1000)  # thousandths of a frame, so the text is exact
    frames, sub = divmod(ticks, 1000)
    whole, ff = divmod(frames, rate)
    minutes, ss = divmod(whole, 60)
    hh, mm = divmod(minutes, 60)
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}.{sub:03d}"


def parse_timecode(text: str, rate: int = DEFAULT_TIMECODE_FPS) -> float:
    """Seconds of `HH:MM:SS:FF[.fff]`; ValueError saying what is wrong."""
    match = _TIMECODE.match(text)
    if match is None:
        raise ValueError(f"the timecode '{text}' is not HH:MM:SS:FF.fff")
    hh, mm, ss, ff = (int(match.group(i)) for i in range(1, 5))
    if mm > 59 or ss > 59:
        raise ValueError(f"the timecode '{text}' has minutes or seconds above 59")
    if ff >= rate:
        raise ValueError(f"the timecode '{text}' counts frame {ff}, which a {rate} fps timecode does not have "
                         "(set the timecode rate the take was recorded at)")
    sub = float("0." + match.group(5)) if match.group(5) else 0.0
    return hh * 3600 + mm * 60 + ss + (ff + sub) / rate


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def read_take(path: str | os.PathLike[str], timecode_fps: int = DEFAULT_TIMECODE_FPS) -> Take:
    """The take in `path`. Raises `LiveLinkError` naming the file and the line for a missing or
    unreadable file, a header without Timecode or with ARKit weights missing or repeated, a row of
    the wrong length, a bad timecode, a value that is not a finite number, time going backwards,
    or no rows at all."""
    if timecode_fps < 1:
        raise ValueError(f"timecode rate {timecode_fps} must be a whole number of frames per second >= 1")
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LiveLinkError(path, "does not exist.") from None
    except IsADirectoryError:
        raise LiveLinkError(path, "is a folder, not a CSV file.") from None
    except UnicodeDecodeError:
        raise LiveLinkError(path, "is not a text file (it is not UTF-8).") from None
    except OSError as error:
        raise LiveLinkError(path, f"cannot be read ({error.strerror or error}).") from None
    rows = csv.reader(io.StringIO(text))
    try:
        header = next(rows)
    except (StopIteration, csv.Error):
        raise LiveLinkError(path, "is empty: line 1 should be the header (Timecode,BlendShapeCount,...).") from None
    names = [cell.strip() for cell in header]
    while names and not names[-1]:  # some writers end every line with a comma
        names.pop()
    lowered = [name.lower() for name in names]
    if not lowered or lowered[0] != "timecode":
        raise LiveLinkError(path, f"line 1 should start with 'Timecode', not '{names[0] if names else ''}': "
                            "this is not a Live Link Face CSV.")
    repeated = sorted({name for name in lowered if lowered.count(name) > 1})
    if repeated:
        raise LiveLinkError(path, f"line 1 names the column{'s' if len(repeated) > 1 else ''} "
                            f"{', '.join(repeated)} more than once.")
    unit_index = {_UNIT_OF[name]: i for i, name in enumerate(lowered) if name in _UNIT_OF}
    missing = [column for column in UNIT_COLUMNS if _UNIT_OF[column.lower()] not in unit_index]
    if missing:
        raise LiveLinkError(path, f"line 1 lacks {len(missing)} of the 52 ARKit weight columns "
                            f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}).")
    angle_index = {name: lowered.index(name.lower()) for name in (*HEAD_COLUMNS, *EYE_COLUMNS)
                   if name.lower() in lowered}
    times: list[float] = []
    units: list[np.ndarray] = []
    angles: list[np.ndarray] = []
    unit_columns = [unit_index[name] for name in ARKIT_NAMES]
    angle_columns = [(k, angle_index[name]) for k, name in enumerate((*HEAD_COLUMNS, *EYE_COLUMNS))
                     if name in angle_index]
    try:
        for row in rows:
            line = rows.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines, e.g. at the end
            cells = [cell.strip() for cell in row]
            while len(cells) > len(names) and not cells[-1]:
                cells.pop()
            if len(cells) != len(names):
                raise LiveLinkError(path, f"line {line} has {len(cells)} values where the header has {len(names)}.")
            try:
                seconds = parse_timecode(cells[0], timecode_fps)
            except ValueError as error:
                raise LiveLinkError(path, f"line {line}: {error}.") from None
            if times and seconds <= times[-1]:
                raise LiveLinkError(path, f"line {line}: the timecode {cells[0]} does not come after the "
                                    "previous line's (rows must be in time order, one per frame).")
            parsed = []
            for column in (*unit_columns, *(c for _, c in angle_columns)):
                try:
                    parsed.append(_number(cells[column]))
                except ValueError:
                    raise LiveLinkError(path, f"line {line}, column {names[column]}: '{cells[column]}' is not a "
                                        "number.") from None
            values = np.array(parsed[:len(unit_columns)])
            angle_row = np.zeros(len(HEAD_COLUMNS) + len(EYE_COLUMNS))
            for (k, _), value in zip(angle_columns, parsed[len(unit_columns):], strict=True):
                angle_row[k] = value
            times.append(seconds)
            units.append(values)
            angles.append(angle_row)
    except csv.Error as error:
        raise LiveLinkError(path, f"line {rows.line_num} is not valid CSV ({error}).") from None
    if not times:
        raise LiveLinkError(path, "has a header but no frames (line 2 onwards is empty).")
    stamps = np.array(times, dtype=np.float64)
    angle_array = np.array(angles, dtype=np.float64)
    return Take(times=stamps - stamps[0], units=np.array(units, dtype=np.float64),
                head=angle_array[:, :3], eyes=angle_array[:, 3:].reshape(-1, 2, 3), start=float(stamps[0]))


def take_text(take: Take, timecode_fps: int = DEFAULT_TIMECODE_FPS) -> str:
    """The CSV text of `take`, in the app's column order, values with 8 decimals."""
    if timecode_fps < 1:
        raise ValueError(f"timecode rate {timecode_fps} must be a whole number of frames per second >= 1")
    order = [ARKIT_NAMES.index(_UNIT_OF[column.lower()]) for column in UNIT_COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    angles = np.concatenate([take.head, take.eyes.reshape(len(take.times), 6)], axis=1)
    for seconds, units, angle_row in zip(take.times, take.units, angles, strict=True):
        writer.writerow([format_timecode(take.start + float(seconds), timecode_fps), BLEND_SHAPE_COUNT,
                         *(f"{units[i]:.8f}" for i in order), *(f"{a:.8f}" for a in angle_row)])
    return buffer.getvalue()


def write_take(path: str | os.PathLike[str], take: Take, timecode_fps: int = DEFAULT_TIMECODE_FPS) -> Path:
    """Write `take` atomically (never half a file); `LiveLinkError` naming it when it cannot be written."""
    path = Path(path)
    try:
        write_atomic(path, take_text(take, timecode_fps).encode())
    except OSError as error:
        raise LiveLinkError(path, f"cannot be written ({error.strerror or error}).") from error
    return path


def yaw_pitch_roll(axis_angles: np.ndarray) -> np.ndarray:
    """(..., 3) yaw (about up, y), pitch (about x), roll (about forward, z) in radians of axis-angles
    in FLAME's axes (x to the image's right, y up, z towards the camera; MediaPipe's camera space,
    where `SequenceResult.head_pose` lives, has the same axes), for R = Ry(yaw) Rx(pitch) Rz(roll).
    Signs are right-handed about those axes: a positive yaw turns the face towards the image's
    right, a positive pitch tilts it down, a positive roll lifts its image-right side."""
    from ..head.forward import rodrigues

    a = np.asarray(axis_angles, dtype=np.float64)
    flat = a.reshape(-1, 3)
    out = np.zeros_like(flat)
    for i, v in enumerate(flat):
        if np.isnan(v).any():  # a gap left open stays one
            out[i] = v
            continue
        r = rodrigues(v)
        out[i] = (math.atan2(r[0, 2], r[2, 2]), math.asin(max(-1.0, min(1.0, -r[1, 2]))),
                  math.atan2(r[1, 0], r[1, 1]))
    return out.reshape(a.shape)


def axis_angles(yaw_pitch_roll_: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angles of (..., 3) yaw, pitch, roll: `yaw_pitch_roll`'s inverse (exact for
    |pitch| < 90 degrees), so a take's head angles become a `head_pose` as the tracker gives it."""
    from ..head.forward import axis_angle

    a = np.asarray(yaw_pitch_roll_, dtype=np.float64)
    flat = a.reshape(-1, 3)
    out = np.zeros_like(flat)
    for i, (yaw, pitch, roll) in enumerate(flat):
        cy, sy, cp, sp, cr, sr = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch),
                                  math.cos(roll), math.sin(roll))
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
        out[i] = axis_angle(ry @ rx @ rz)
    return out.reshape(a.shape)


def take_from_result(result: Any) -> Take:
    """The take of a `SequenceResult` (raw or processed): the 52 units per frame (`units()`), the
    eyes' angles from its gaze and the head's from its `head_pose` (`yaw_pitch_roll`). Rows left
    NaN (gaps left open) are not written: a reader sees them as dropped frames. Raises ValueError
    when the result's head does not carry the units."""
    units = result.units().astype(np.float64)
    keep = ~np.isnan(units).any(axis=1)
    head = yaw_pitch_roll(np.asarray(result.head_pose, dtype=np.float64)[keep])
    eyes = yaw_pitch_roll(np.asarray(result.gaze, dtype=np.float64)[keep])
    return Take(times=np.asarray(result.times, dtype=np.float64)[keep], units=units[keep], head=np.nan_to_num(head),
                eyes=np.nan_to_num(eyes))


def resample(times: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(frame numbers from 0, row per frame or -1): each frame at `fps` takes the row nearest in time
    within half a frame; frames with none are gaps (-1)."""
    count = int(math.floor(float(times[-1]) * fps + 1e-6)) + 1
    frame_times = np.arange(count) / fps
    after = np.clip(np.searchsorted(times, frame_times), 0, len(times) - 1)
    before = np.clip(after - 1, 0, len(times) - 1)
    nearest = np.where(np.abs(times[before] - frame_times) <= np.abs(times[after] - frame_times), before, after)
    rows = np.where(np.abs(times[nearest] - frame_times) <= 0.5 / fps + 1e-6, nearest, -1)
    return np.arange(count, dtype=np.int64), rows


def result_from_take(take: Take, encoder: Any, fps: float, source: dict[str, Any] | None = None) -> Any:
    """A raw `SequenceResult` of `take` at `fps` (the scene's rate): the units through `encoder`'s
    head table (`ExpressionEncoder.parameters`, as the encoder's own output goes), the head angles
    as `head_pose` (`axis_angles`), frames without a row marked as gaps (`found` False). A take
    carries no emotion: probabilities are uniform and the intensity 1 (the intensity control's
    neutral value), and `SequenceResult.calibrated` leaves both so. It carries no face score
    either: every row counts as confident (score 1), so Min confidence never drops one."""
    from .pipeline import SequenceResult

    if not fps > 0:
        raise ValueError(f"frame rate {fps} must be > 0")
    frames, rows = resample(take.times, fps)
    found = rows >= 0
    units = np.full((len(frames), len(ARKIT_NAMES)), np.nan, dtype=np.float32)
    units[found] = take.units[rows[found]]
    params = encoder.parameters(np.nan_to_num(units))
    t = len(frames)
    emotions = list(encoder.emotions)

    def gaps(array: np.ndarray) -> np.ndarray:
        array = np.asarray(array, dtype=np.float32).copy()
        array[~found] = np.nan
        return array

    return SequenceResult(
        frames=frames, fps=float(fps), found=found, unreadable=np.zeros(t, dtype=bool),
        expression=gaps(params["expression"]), jaw=gaps(params["jaw"]), eyelids=gaps(params["eyelids"]),
        gaze=gaps(params["gaze"]), emotion_probs=gaps(np.full((t, len(emotions)), 1.0 / len(emotions))),
        intensity=gaps(np.ones(t)), head_pose=gaps(axis_angles(take.head[np.maximum(rows, 0)])),
        score=gaps(np.ones(t)), expression_names=list(encoder.expression_names), emotions=emotions,
        source=source or {"kind": "livelink", "rows": len(take.times)}, model=encoder.describe())


def select_rows(result: Any, keep: np.ndarray) -> Any:
    """A copy of `result` with only the rows where `keep` is True (a frame range or step)."""
    from dataclasses import replace

    from .pipeline import PARAMETERS

    per_row = ("frames", "found", "unreadable", "score", *PARAMETERS)
    return replace(result, **{name: getattr(result, name)[keep] for name in per_row})


def read_result(path: str | os.PathLike[str], encoder: Any, fps: float | None = None,
                timecode_fps: int = DEFAULT_TIMECODE_FPS) -> Any:
    """`read_take` then `result_from_take` at `fps` (None: the timecode rate)."""
    take = read_take(path, timecode_fps)
    rate = float(fps) if fps is not None else float(timecode_fps)
    source = {"kind": "livelink", "path": str(Path(path).resolve()), "rows": len(take.times),
              "timecode_fps": timecode_fps, "duration_s": round(float(take.times[-1]), 6)}
    return result_from_take(take, encoder, rate, source)


def write_result(path: str | os.PathLike[str], result: Any, timecode_fps: int = DEFAULT_TIMECODE_FPS) -> Path:
    """`result_take` then `write_take`."""
    return write_take(path, result_take(path, result), timecode_fps)


def result_take(path: str | os.PathLike[str], result: Any) -> Take:
    """`take_from_result` for writing to `path`: `LiveLinkError` naming it when the result has no
    ARKit weights or no frame with a face."""
    try:
        take = take_from_result(result)
    except ValueError as error:
        raise LiveLinkError(path, f"cannot be written: {error}.") from None
    if not len(take.times):
        raise LiveLinkError(path, "cannot be written: the result has no frame with a face.")
    return take


def units_from_channels(weights: dict[str, np.ndarray], rotations: dict[str, np.ndarray],
                        tables: tuple[tuple[str, ...], Any] | None = None,
                        eyelid_keys: tuple[str, ...] = ()) -> np.ndarray:
    """(T, 52) ARKit units of a keyed head, the inverse of the photo planner's routes: `weights`
    are per-frame shape-key weights by key name (T,), `rotations` per-frame bone-local axis-angles
    by bone (T, 3). A FIELDS head with an ARKit table (`tables`: its expression key names and
    `ArkitMapping`; `eyelid_keys` its [left, right] blink keys) goes back through that table, bones
    included; any other rig by its ARKit-named keys. Raises ValueError when no key names a unit."""
    from ..head.default_head import EYE_L, EYE_R, JAW
    from ..head.rig import BONE_AXES
    from ..retarget.arkit import match_arkit_names

    count = len(next(iter([*weights.values(), *rotations.values()]), ()))
    if tables is not None and set(tables[0]) & set(weights):
        names, mapping = tables
        zeros = np.zeros(count)
        expression = np.stack([np.asarray(weights.get(n, zeros), dtype=np.float64) for n in names], axis=1)
        eyelids = np.stack([np.asarray(weights.get(k, zeros), dtype=np.float64)
                            for k in (eyelid_keys if len(eyelid_keys) == 2 else ("", ""))], axis=1)
        pose = np.zeros((count, 5, 3))
        for bone, joint in (("jaw", JAW), ("eye.L", EYE_L), ("eye.R", EYE_R)):
            if bone in rotations:  # bone-local back to FLAME's axes (plan.bone_axis_angle's inverse)
                pose[:, joint] = np.asarray(rotations[bone], dtype=np.float64) @ BONE_AXES[bone].T
        # Least squares through the whole table: exact wherever it has full rank (the ICT head keys
        # every unit), where `ArkitMapping.from_params` reads each unit alone and mixes jawLeft into jawOpen.
        table = np.concatenate([mapping.expression, mapping.pose.reshape(len(ARKIT_NAMES), -1), mapping.eyelids],
                               axis=1)
        shown = np.concatenate([expression, pose.reshape(count, -1), eyelids], axis=1)
        return np.asarray(np.linalg.lstsq(table.T, shown.T, rcond=None)[0].T)
    matched = match_arkit_names(list(weights))
    if not matched:
        raise ValueError("none of its keyed channels names an ARKit unit (e.g. jawOpen) or a FIELDS head's key")
    units = np.zeros((count, len(ARKIT_NAMES)))
    for i, unit in enumerate(ARKIT_NAMES):
        if unit in matched:
            units[:, i] = weights[matched[unit]]
    return units
