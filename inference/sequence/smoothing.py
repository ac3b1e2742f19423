"""Per-frame parameter clean-up after a sequence run: gap filling, One-Euro smoothing, a jitter measure.

All functions take per-frame values as (T, C) arrays (any trailing shape is flattened to C) and
the frame times, so they serve expression coefficients, jaw and gaze angles, eyelids, emotion
probabilities and intensity alike, and run on the cached raw result each time the artist changes
a setting. The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) is written out here: it is
twenty lines, vectorised over channels, and no maintained library offers it for numpy arrays.
Must not import bpy, OpenCV or ONNX Runtime (the add-on calls it on every re-apply).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GAP_MODES = ("interpolate", "hold", "leave")


def fill_gaps(values: np.ndarray, found: np.ndarray, mode: str = "interpolate",
              times: np.ndarray | None = None) -> np.ndarray:
    """A copy of `values` (T, ...) with the rows where `found` is False replaced.

    "interpolate": linear in time between the found frames either side; "hold": the last found
    value; "leave": NaN (no key is written there). Before the first found frame both filling modes
    take the first found value (there is nothing to hold or interpolate from); with no found frame
    at all every row is NaN."""
    if mode not in GAP_MODES:
        raise ValueError(f"gap mode {mode!r} is not one of {', '.join(GAP_MODES)}.")
    values = np.asarray(values, dtype=np.float64)
    found = np.asarray(found, dtype=bool)
    flat = values.reshape(len(values), -1).copy()
    if not found.any():
        flat[:] = np.nan
        return flat.reshape(values.shape)
    if mode == "leave":
        flat[~found] = np.nan
    elif mode == "hold":
        # Index of the last found row at or before each row (the first found row before it).
        last = np.maximum.accumulate(np.where(found, np.arange(len(found)), -1))
        last[last < 0] = int(np.argmax(found))
        flat = flat[last]
    else:
        t = np.arange(len(found), dtype=np.float64) if times is None else np.asarray(times, dtype=np.float64)
        known = np.flatnonzero(found)
        for c in range(flat.shape[1]):  # np.interp is 1-D; C is tens, T the long axis
            flat[~found, c] = np.interp(t[~found], t[known], flat[known, c])
    return flat.reshape(values.shape)


@dataclass(frozen=True)
class OneEuroSettings:
    """The filter's three settings, in the artist's terms.

    min_cutoff (Hz): smoothing of a still face; lower removes more jitter but slows slow motions.
    beta: how fast the cutoff rises with speed; higher follows quick motions with less lag.
    d_cutoff (Hz): smoothing of the speed estimate itself; rarely changed.
    The defaults suit parameters of order 1 (coefficients, radians, probabilities) at 24-60 fps:
    on the still test clip they cut jitter about 5x, and a smile rising by 0.5 in 0.2 s is followed
    within 0.05 (measured; docs/ARCHITECTURE.md "Sequences")."""

    min_cutoff: float = 1.0  # Hz
    beta: float = 10.0  # cutoff Hz per (unit per second) of speed
    d_cutoff: float = 1.0  # Hz

    def __post_init__(self) -> None:
        if not (self.min_cutoff > 0 and self.d_cutoff > 0 and self.beta >= 0):
            raise ValueError(f"One-Euro settings {self} are not valid: cutoffs must be > 0 and beta >= 0.")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(values: np.ndarray, times: np.ndarray, settings: OneEuroSettings = OneEuroSettings()) -> np.ndarray:
    """One-Euro filter over the time axis of `values` (T, ...), every channel at once.

    `times` are seconds (frame number / fps), so a sequence taken with a step or with dropped
    frames is filtered in real time, not per sample. A NaN row (a gap left open) outputs NaN and
    restarts the filter after it, so a face returning after a cut does not glide in from its old
    value."""
    values = np.asarray(values, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    flat = values.reshape(len(values), -1)
    out = np.full_like(flat, np.nan)
    x_hat: np.ndarray | None = None
    dx_hat = np.zeros(flat.shape[1])
    previous_time = 0.0
    for i in range(len(flat)):
        x = flat[i]
        if np.isnan(x).any():
            x_hat = None
            continue
        if x_hat is None:
            x_hat, dx_hat = x.copy(), np.zeros_like(x)
        else:
            dt = max(times[i] - previous_time, 1e-6)
            dx_hat = dx_hat + _alpha(settings.d_cutoff, dt) * ((x - x_hat) / dt - dx_hat)
            cutoff = settings.min_cutoff + settings.beta * np.abs(dx_hat)
            x_hat = x_hat + _alpha(cutoff, dt) * (x - x_hat)
        previous_time = times[i]
        out[i] = x_hat
    return out.reshape(values.shape)


def jitter(values: np.ndarray, found: np.ndarray | None = None) -> float:
    """Mean absolute frame-to-frame change over all channels, counting only pairs of consecutive
    frames that both hold a face: on a still face this is pure noise, the number smoothing lowers."""
    flat = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    pairs = np.ones(len(flat) - 1, dtype=bool) if found is None else (found[1:] & found[:-1])
    steps = np.abs(np.diff(flat, axis=0))[pairs]
    return float(np.nanmean(steps)) if steps.size else float("nan")
