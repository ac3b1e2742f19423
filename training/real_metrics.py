"""The numbers `evaluate-real` reports, as plain functions of arrays (no data, no models here).

Emotion: confusion matrix (rows true, columns read), balanced accuracy (mean per-class recall over
the classes given, by default those present), the share of non-neutral faces read as neutral.
Expression: per-unit Pearson r and least-squares slope of a reader's unit against MediaPipe's score
(slope 0.25 = the reader moves a quarter as far); a unit "varies" when MediaPipe's score has a
standard deviation of at least `VARY_STD` on the set measured. Clips: a frame is *still* when, in
the `STILL_WINDOW_S` around it, no MediaPipe score (3-frame median, to ignore its own flicker) moves
over a range of more than `STILL_RANGE`; still stretches are runs of still tracked frames at least
`MIN_STILL_S` long; jitter is `inference.smoothing.jitter` (mean absolute frame-to-frame change)
of the 52 units over pairs inside still stretches. Lag is the shift (ms, positive = the reader is
late) within +-`MAX_LAG_S` that maximises the correlation of a reader's unit with MediaPipe's raw
score, taken per clip and varying unit and reported as the median. Must not import bpy.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter

from inference.smoothing import jitter

VARY_STD = 0.05
STILL_WINDOW_S = 0.4
STILL_RANGE = 0.1
MIN_STILL_S = 0.5
MAX_LAG_S = 0.5


def confusion(true: np.ndarray, read: np.ndarray, n_classes: int) -> np.ndarray:
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true, np.int64), np.asarray(read, np.int64)), 1)
    return matrix


def balanced_accuracy(matrix: np.ndarray, classes: list[int] | None = None) -> float:
    """Mean recall over `classes` (default: every class with at least one true sample)."""
    totals = matrix.sum(1)
    classes = [c for c in range(len(matrix)) if totals[c]] if classes is None else classes
    if not classes:
        return float("nan")
    return float(np.mean([matrix[c, c] / totals[c] if totals[c] else 0.0 for c in classes]))


def recall(matrix: np.ndarray, label: int) -> float:
    total = matrix[label].sum()
    return float(matrix[label, label] / total) if total else float("nan")


def read_as_neutral(matrix: np.ndarray, neutral: int = 0) -> float:
    """Share of faces labelled non-neutral that were read as neutral."""
    others = [c for c in range(len(matrix)) if c != neutral]
    total = matrix[others].sum()
    return float(matrix[others, neutral].sum() / total) if total else float("nan")


def pearson_and_slope(read: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: Pearson r and the slope of `read` regressed on `reference` (NaN for a constant column)."""
    a = np.asarray(read, np.float64) - np.mean(read, axis=0)
    b = np.asarray(reference, np.float64) - np.mean(reference, axis=0)
    covariance = (a * b).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = covariance / np.sqrt((a * a).sum(0) * (b * b).sum(0))
        slope = covariance / (b * b).sum(0)
    return r, slope


def varying(reference: np.ndarray, threshold: float = VARY_STD) -> np.ndarray:
    return np.asarray(np.std(reference, axis=0) >= threshold)


def still_frames(scores: np.ndarray, found: np.ndarray, fps: float) -> np.ndarray:
    """Per frame: inside a still stretch (see the module docstring)."""
    n = len(scores)
    filled = np.where(found[:, None], scores, np.nan)
    filled = median_filter(np.nan_to_num(filled, nan=-10.0), size=(3, 1), mode="nearest")
    half = max(1, round(STILL_WINDOW_S * fps / 2))
    still = np.zeros(n, dtype=bool)
    for t in range(n):
        window = slice(max(0, t - half), min(n, t + half + 1))
        if found[window].all():
            values = filled[window]
            still[t] = bool((values.max(0) - values.min(0)).max() <= STILL_RANGE)
    out = np.zeros(n, dtype=bool)
    start = None
    for t in range(n + 1):
        if t < n and still[t]:
            start = t if start is None else start
        elif start is not None:
            if (t - start) / fps >= MIN_STILL_S:
                out[start:t] = True
            start = None
    return out


def still_jitter(values: np.ndarray, still: np.ndarray) -> float:
    """`inference.smoothing.jitter` over consecutive pairs that are both inside still stretches."""
    return jitter(values, still)


def lag_ms(read: np.ndarray, reference: np.ndarray, found: np.ndarray, fps: float) -> float:
    """Shift (ms) of `read` behind `reference` that best correlates them (see module docstring)."""
    best, best_r = 0, -np.inf
    max_shift = max(1, round(MAX_LAG_S * fps))
    for shift in range(-max_shift, max_shift + 1):
        a = read[max(shift, 0): len(read) + min(shift, 0)]
        b = reference[max(-shift, 0): len(reference) + min(-shift, 0)]
        keep = found[max(shift, 0): len(found) + min(shift, 0)] & found[max(-shift, 0): len(found) + min(-shift, 0)]
        if keep.sum() < 10 or np.std(a[keep]) == 0 or np.std(b[keep]) == 0:
            continue
        r = float(np.corrcoef(a[keep], b[keep])[0, 1])
        if r > best_r:
            best, best_r = shift, r
    return 1000.0 * best / fps
