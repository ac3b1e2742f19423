"""The numbers `evaluate-real` reports, as plain functions of arrays (no data, no models here).

Emotion: confusion matrix (rows true, columns read), balanced accuracy (mean per-class recall over
the classes given, by default those present), the share of non-neutral faces read as neutral.
Expression: per-unit Pearson r and least-squares slope of a reader's unit against MediaPipe's score
(slope 0.25 = the reader moves a quarter as far); a unit "varies" when MediaPipe's score has a
standard deviation of at least `VARY_STD` on the set measured. Clips (people talk, so stillness is
per unit): frame t is *still* for a unit when, in the `STILL_WINDOW_S` around it, MediaPipe's score
for that unit (3-frame median, to ignore its own flicker) spans no more than `STILL_RANGE`; still
stretches are runs of such tracked frames at least `MIN_STILL_S` long; jitter is the mean absolute
frame-to-frame change (`inference.smoothing.jitter`'s measure) of each unit over the pairs inside
its still stretches, pooled over the units MediaPipe scores. Lag is the shift (ms, positive = the reader is
late) within +-`MAX_LAG_S` that maximises the correlation of a reader's unit with MediaPipe's raw
score, taken per clip and varying unit and reported as the median. Must not import bpy.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter

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
    # a constant column leaves rounding noise after centring: it has no correlation, not a tiny one
    r[np.ptp(read, axis=0) == 0] = np.nan
    still = np.ptp(reference, axis=0) == 0
    r[still], slope[still] = np.nan, np.nan
    return r, slope


def varying(reference: np.ndarray, threshold: float = VARY_STD) -> np.ndarray:
    return np.asarray(np.std(reference, axis=0) >= threshold)


def still_frames(scores: np.ndarray, found: np.ndarray, fps: float) -> np.ndarray:
    """(T, C): frame t is inside a still stretch of channel c (see the module docstring)."""
    n, channels = scores.shape
    filled = median_filter(np.where(found[:, None], scores, -10.0), size=(3, 1), mode="nearest")
    half = max(1, round(STILL_WINDOW_S * fps / 2))
    still = np.zeros((n, channels), dtype=bool)
    for t in range(n):
        window = slice(max(0, t - half), min(n, t + half + 1))
        if found[window].all():
            values = filled[window]
            still[t] = values.max(0) - values.min(0) <= STILL_RANGE
    out = np.zeros_like(still)
    shortest = MIN_STILL_S * fps
    for c in range(channels):
        edges = np.flatnonzero(np.diff(np.r_[0, still[:, c].astype(np.int8), 0]))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            if stop - start >= shortest:
                out[start:stop, c] = True
    return out


def still_jitter(values: np.ndarray, still: np.ndarray) -> float:
    """Mean absolute frame-to-frame change of each channel over its pairs of consecutive frames
    that are both inside its still stretches, pooled over channels (`inference.smoothing.jitter`
    applied channel by channel and weighted by the pairs each contributes)."""
    pairs = still[1:] & still[:-1]
    steps = np.abs(np.diff(np.asarray(values, dtype=np.float64), axis=0))[pairs]
    return float(np.nanmean(steps)) if steps.size else float("nan")


def label_changes(labels: np.ndarray, found: np.ndarray) -> float:
    """How often the read emotion label changes between consecutive frames with a face, per 100
    such pairs (before any smoothing): a flickering label is what an artist sees jump."""
    pairs = found[1:] & found[:-1]
    changed = (np.asarray(labels)[1:] != np.asarray(labels)[:-1])[pairs]
    return float(100.0 * changed.mean()) if changed.size else float("nan")


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
