"""Keyframes as data: per-frame values in, the flat arrays Blender's bulk keyframe API takes out.

The add-on writes a whole F-curve with `fcurve.keyframe_points.add(n)`, then
`keyframe_points.foreach_set("co", keys.co)`, `foreach_set("interpolation", keys.interpolation)`,
`foreach_set("handle_left_type" / "handle_right_type", keys.handles)` and one `fcurve.update()`;
everything those calls need is computed here, in numpy, so the Blender layer is a thin loop and
this part is tested without Blender. The enum integers below are Blender's (BezTriple's `ipo` and
handle types), checked through `foreach_set` on bpy 4.5 and 5.0. Must not import bpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Blender's enum values as foreach_set takes them (eBezTriple_Interpolation, eBezTriple_Handle).
INTERPOLATION = {"CONSTANT": 0, "LINEAR": 1, "BEZIER": 2}
HANDLE_TYPES = {"FREE": 0, "AUTO": 1, "VECTOR": 2, "ALIGNED": 3, "AUTO_CLAMPED": 4}


@dataclass
class FCurveKeys:
    """One F-curve's keys. `co` is float32 [frame0, value0, frame1, value1, ...]."""

    name: str
    co: np.ndarray  # (2 * count,) float32
    interpolation: np.ndarray  # (count,) int32, INTERPOLATION values
    handles: np.ndarray  # (count,) int32, HANDLE_TYPES values, for both handle_left_type and handle_right_type

    @property
    def count(self) -> int:
        return len(self.interpolation)

    @property
    def frames(self) -> np.ndarray:
        return self.co[0::2]

    @property
    def values(self) -> np.ndarray:
        return self.co[1::2]


def scene_frames(source_frames: np.ndarray, source_fps: float, target_start: float,
                 scene_fps: float | None = None) -> np.ndarray:
    """Scene frame of each processed source frame: the first lands on `target_start` and the rest
    keep the source's timing (a step of 2 keys every other frame). When the scene runs at another
    rate (`scene_fps`), times are kept in seconds, so keys may fall between frames."""
    frames = np.asarray(source_frames, dtype=np.float64)
    if frames.size == 0:
        return frames
    scale = 1.0 if scene_fps is None else float(scene_fps) / float(source_fps)
    return target_start + (frames - frames[0]) * scale


def fcurve_keys(frames: np.ndarray, values: np.ndarray, names: list[str], *, interpolation: str = "LINEAR",
                handle_type: str = "AUTO_CLAMPED") -> list[FCurveKeys]:
    """One `FCurveKeys` per column of `values` (T, C), keyed at `frames` (T,) scene frames.

    Rows that are NaN in a column (gaps left open) get no key on that curve, so Blender's curve
    runs straight across them and the artist can fill them by hand. LINEAR is the default: with a
    key on every frame a curve only matters between frames (motion blur, retimed scenes), and
    linear segments cannot overshoot a bounded value such as an eyelid. (Cost is no reason either
    way: 60 curves x 1000 keys were written in 15 ms with either, on bpy 4.5 and 5.0.)"""
    if interpolation not in INTERPOLATION:
        raise ValueError(f"interpolation {interpolation!r} is not one of {', '.join(INTERPOLATION)}.")
    if handle_type not in HANDLE_TYPES:
        raise ValueError(f"handle type {handle_type!r} is not one of {', '.join(HANDLE_TYPES)}.")
    frames = np.asarray(frames, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[0] != frames.shape[0] or values.shape[1] != len(names):
        raise ValueError(f"values {values.shape} do not match {frames.shape[0]} frames x {len(names)} names.")
    if frames.size > 1 and not np.all(np.diff(frames) > 0):
        raise ValueError("frames must be strictly increasing (one key per frame, in order).")
    present = ~np.isnan(values)
    curves = []
    if present.all():
        # The common case: every curve has every key, built as one (C, T, 2) block.
        block = np.empty((values.shape[1], values.shape[0], 2), dtype=np.float32)
        block[:, :, 0] = frames
        block[:, :, 1] = values.T
        flat = block.reshape(values.shape[1], -1)
        counts = [values.shape[0]] * values.shape[1]
        cos = list(flat)
    else:
        cos, counts = [], []
        for c in range(values.shape[1]):
            keep = present[:, c]
            co = np.empty(2 * int(keep.sum()), dtype=np.float32)
            co[0::2], co[1::2] = frames[keep], values[keep, c]
            cos.append(co)
            counts.append(int(keep.sum()))
    for name, co, count in zip(names, cos, counts, strict=True):
        curves.append(FCurveKeys(name=name, co=co, interpolation=np.full(count, INTERPOLATION[interpolation], np.int32),
                                 handles=np.full(count, HANDLE_TYPES[handle_type], np.int32)))
    return curves


# The point attributes a merge reads and writes, with their widths and dtypes (foreach_get/set's).
KEY_ATTRIBUTES = (("co", 2, np.float32), ("interpolation", 1, np.int32), ("handle_left_type", 1, np.int32),
                  ("handle_right_type", 1, np.int32), ("handle_left", 2, np.float32), ("handle_right", 2, np.float32))


def merge_keys(old: dict[str, np.ndarray], keys: FCurveKeys, first: float, last: float) -> dict[str, np.ndarray]:
    """An F-curve's points after keying `keys` over scene frames `first`..`last` (inclusive): the
    `old` points (flat arrays by `KEY_ATTRIBUTES` name, as `foreach_get` reads them) outside that
    range are kept with their interpolation and handles, the new keys replace the rest, all sorted
    by frame (stable: an old key and a new one on the same frame keep that order). New keys'
    handles are their own positions, which `fcurve.update()` recomputes."""
    new = {"co": keys.co, "interpolation": keys.interpolation, "handle_left_type": keys.handles,
           "handle_right_type": keys.handles, "handle_left": keys.co, "handle_right": keys.co}
    if not len(old.get("interpolation", ())):
        return new
    frames = old["co"][0::2]
    keep = (frames < first - 1e-3) | (frames > last + 1e-3)
    merged = {name: np.concatenate([old[name][np.repeat(keep, width)], new[name]])
              for name, width, _ in KEY_ATTRIBUTES}
    order = np.argsort(merged["co"][0::2], kind="stable")
    pairs = np.stack([2 * order, 2 * order + 1], axis=1).ravel()
    return {name: merged[name][pairs if width == 2 else order] for name, width, _ in KEY_ATTRIBUTES}
