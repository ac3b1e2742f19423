"""`python -m training evaluate-real`: every real-data metric of issue 12, for each reader, on the
held-out people and clips of `training/real_split.json`.

For each reader (`training.readers`): the 8-class confusion matrix; balanced accuracy over the
classes with held-out photos and over those with at least `MIN_CLASS_PHOTOS`, fear and contempt
recall apart; the share of non-neutral faces read as neutral; per ARKit unit Pearson r and slope
against MediaPipe's scores with their medians over the units that vary; the mouth, eye and brow
landmark residuals (mm) of the shipped ICT head (read at our MediaPipe landmark embedding) driven by
the reader next to the same head's per-photo least-squares fit (`training.head_fit`); on the held-out
clips, jitter on still stretches and lag behind
MediaPipe's raw scores, raw and after the add-on's default One-Euro smoothing, with MediaPipe's own
jitter as the floor. Learning readers fit on the training people only. Must not import bpy.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from inference.files import write_atomic
from inference.perception.blendshapes import ARKIT_NAMES
from inference.perception.landmarks import N_LANDMARKS

from .head_fit import REGIONS, LandmarkHead, drive_photo, fit_photo
from .ict import landmark_head
from .model import EMOTIONS
from .readers import ARKIT_FROM_MEDIAPIPE, ReaderInput, Reading, make_reader, mediapipe_arkit
from .real_data import Clip, PerceptionCache, PhotoSet, load_clips, load_photos
from .real_metrics import (
    VARY_STD,
    balanced_accuracy,
    confusion,
    label_changes,
    lag_ms,
    pearson_and_slope,
    read_as_neutral,
    recall,
    still_frames,
    still_jitter,
    varying,
)
from .real_split import RealSplit, load_split

MIN_CLASS_PHOTOS = 10
FIT_VERSION = 2  # bump when head_fit's fitting changes: cached per-photo fits are then recomputed
SHARED_UNITS = np.flatnonzero(ARKIT_FROM_MEDIAPIPE >= 0)  # the 51 ARKit units MediaPipe scores


def photo_input(photos: PhotoSet) -> ReaderInput:
    return ReaderInput(landmarks=photos.landmarks, scores=photos.scores, size=photos.size,
                       features=photos.features())


def observed_metres(photos: PhotoSet) -> np.ndarray:
    """(N, 478, 3) landmarks in the canonical face's frame, metres: what a head is compared with."""
    # The encoder's input starts with exactly these, in centimetres.
    return photos.features()[:, : N_LANDMARKS * 3].reshape(len(photos), N_LANDMARKS, 3).astype(np.float64) / 100.0


def emotion_metrics(true: np.ndarray, reading: Reading) -> dict[str, Any]:
    matrix = confusion(true, reading.emotion, len(EMOTIONS))
    counts = matrix.sum(1)
    common = [c for c in range(len(EMOTIONS)) if counts[c] >= MIN_CLASS_PHOTOS]
    return {"confusion": matrix.tolist(), "held_out_per_class": dict(zip(EMOTIONS, counts.tolist(), strict=True)),
            "balanced_accuracy": balanced_accuracy(matrix),
            "balanced_accuracy_common": balanced_accuracy(matrix, common),
            "common_classes": [EMOTIONS[c] for c in common],
            "fear_recall": recall(matrix, EMOTIONS.index("fear")),
            "contempt_recall": recall(matrix, EMOTIONS.index("contempt")),
            "non_neutral_read_as_neutral": read_as_neutral(matrix, EMOTIONS.index("neutral"))}


def unit_metrics(reading: Reading, scores: np.ndarray) -> dict[str, Any]:
    reference = mediapipe_arkit(scores)[:, SHARED_UNITS]
    r, slope = pearson_and_slope(reading.arkit[:, SHARED_UNITS], reference)
    moving = varying(reference)
    names = [ARKIT_NAMES[u] for u in SHARED_UNITS]
    return {"units": {n: {"mediapipe_std": float(s), "r": float(a), "slope": float(b)}
                      for n, s, a, b in zip(names, reference.std(0), r, slope, strict=True)},
            "varying_units": int(moving.sum()),
            "median_r": float(np.nanmedian(r[moving])), "median_slope": float(np.nanmedian(slope[moving]))}


def per_photo_fits(head: LandmarkHead, observed: np.ndarray, cache: PerceptionCache) -> np.ndarray:
    """(N, regions) residuals (mm) of the head's per-photo fit, cached under the perception cache
    by a hash of the head and the observed landmarks (a few minutes to compute, reused by every
    later run on the same split)."""
    key = hashlib.sha256(f"{head.key}:{FIT_VERSION}:".encode() + observed.astype(np.float64).tobytes()).hexdigest()
    entry = cache.folder / "fits" / f"{key}.npz"
    stored = cache.read_entry(entry)
    if stored is not None:
        return stored["residuals"]
    fits = [fit_photo(head, observed[i]) for i in range(len(observed))]
    residuals = np.array([[fit[2][region] for region in REGIONS] for fit in fits])
    cache.write_entry(entry, {"residuals": residuals, "units": np.array([fit[0] for fit in fits]),
                              "identity": np.array([fit[1] for fit in fits])})
    return residuals


def residual_metrics(head: LandmarkHead, observed: np.ndarray, arkit: np.ndarray) -> dict[str, float]:
    rows = [drive_photo(head, observed[i], arkit[i]) for i in range(len(observed))]
    return {region: float(np.mean([row[region] for row in rows])) for region in REGIONS}


def clip_metrics(reader: Any, clips: list[Clip]) -> dict[str, Any]:
    from inference.sequence.pipeline import DEFAULT_SMOOTHING
    from inference.sequence.smoothing import fill_gaps, one_euro

    per_clip, lags_raw, lags_smooth = {}, [], []
    for clip in clips:
        found = clip.found
        arkit = np.full((len(found), len(ARKIT_NAMES)), np.nan)
        features = clip.features()
        reading = reader.read(ReaderInput(clip.landmarks[found], clip.scores[found],
                                          np.tile(clip.size, (int(found.sum()), 1)), features[found]))
        arkit[found] = reading.arkit
        labels = np.full(len(found), -1)
        labels[found] = reading.emotion
        smooth = one_euro(fill_gaps(arkit, found, "interpolate", clip.times), clip.times, DEFAULT_SMOOTHING)
        reference = np.full_like(arkit, np.nan)
        reference[found] = mediapipe_arkit(clip.scores[found])
        still = np.zeros(arkit.shape, dtype=bool)
        still[:, SHARED_UNITS] = still_frames(reference[:, SHARED_UNITS], found, clip.fps)
        moving = [u for u in SHARED_UNITS if np.nanstd(reference[:, u]) >= VARY_STD]
        raw_lags = [lag_ms(np.nan_to_num(arkit[:, u]), np.nan_to_num(reference[:, u]), found, clip.fps) for u in moving]
        smooth_lags = [lag_ms(smooth[:, u], np.nan_to_num(reference[:, u]), found, clip.fps) for u in moving]
        lags_raw += raw_lags
        lags_smooth += smooth_lags
        per_clip[clip.name] = {"frames": len(found), "tracked": int(found.sum()),
                               "still_frames": int(still.any(1).sum()), "still_unit_frames": int(still.sum()),
                               "jitter_raw": still_jitter(arkit, still), "jitter_smoothed": still_jitter(smooth, still),
                               "jitter_mediapipe": still_jitter(reference, still), "varying_units": len(moving),
                               "emotion_changes_per_100": label_changes(labels, found)}
    still_total = sum(c["still_unit_frames"] for c in per_clip.values())

    def weighted(key: str) -> float:
        total = sum(c[key] * c["still_unit_frames"] for c in per_clip.values() if c["still_unit_frames"])
        return float(total / max(still_total, 1))  # each clip weighted by its still unit-frames

    return {"clips": per_clip, "jitter_raw": weighted("jitter_raw"), "jitter_smoothed": weighted("jitter_smoothed"),
            "jitter_mediapipe": weighted("jitter_mediapipe"),
            "lag_ms_raw": float(np.median(lags_raw)) if lags_raw else float("nan"),
            "lag_ms_smoothed": float(np.median(lags_smooth)) if lags_smooth else float("nan")}


def evaluate_real(readers: list[str], cache: PerceptionCache | None = None, split: RealSplit | None = None,
                  photos: PhotoSet | None = None, clips: list[Clip] | None = None) -> dict[str, Any]:
    cache = cache or PerceptionCache()
    split = split or load_split()
    photos = photos if photos is not None else load_photos(cache=cache)
    held = np.array(split.photo_mask(photos.people))
    train, test = photos.subset(~held), photos.subset(held)
    clips = clips if clips is not None else load_clips(cache=cache, names=list(split.held_out_clips))
    head = landmark_head()
    observed = observed_metres(test)
    started = time.perf_counter()
    fit = dict(zip(REGIONS, map(float, per_photo_fits(head, observed, cache).mean(0)), strict=True))
    report: dict[str, Any] = {
        "split": {"train_people": len(set(train.people)), "held_out_people": len(set(test.people)),
                  "train_photos": len(train), "held_out_photos": len(test), "skipped_photos": dict(photos.skipped),
                  "held_out_clips": list(split.held_out_clips)},
        "files_perceived": cache.files_perceived, "head": head.name,
        "per_photo_fit_mm": fit, "fit_seconds": time.perf_counter() - started, "readers": {}}
    inputs = photo_input(test)
    for name in readers:
        reader = make_reader(name, train.scores, train.emotion)
        reading = reader.read(inputs)
        driven = residual_metrics(head, observed, reading.arkit)
        report["readers"][name] = {
            "description": reader.name, **emotion_metrics(test.emotion, reading),
            **unit_metrics(reading, test.scores), "residual_mm": driven,
            "residual_over_fit": {k: driven[k] / fit[k] for k in REGIONS}, **clip_metrics(reader, clips)}
    return report


def format_report(report: dict[str, Any]) -> str:
    s = report["split"]
    lines = [f"Held out: {s['held_out_people']} people, {s['held_out_photos']} photos (train: {s['train_people']} "
             f"people, {s['train_photos']} photos; skipped {s['skipped_photos']}); clips {s['held_out_clips']}; "
             f"files perceived this run: {report['files_perceived']} (0: all from the cache)",
             f"Per-photo least-squares fit of the {report['head']}: " +
             ", ".join(f"{k} {v:.2f} mm" for k, v in report["per_photo_fit_mm"].items())]
    short = [e[:4] for e in EMOTIONS]
    for name, r in report["readers"].items():
        lines += ["", f"== {name}: {r['description']}", "confusion (rows: label, columns: read)",
                  "          " + " ".join(f"{c:>5}" for c in short) + "      n"]
        for label, row in zip(EMOTIONS, r["confusion"], strict=True):
            lines.append(f"{label:>10}" + " ".join(f"{v:5d}" for v in row) + f" {sum(row):6d}")
        lines += [f"balanced accuracy, all 8 classes: {r['balanced_accuracy']:.3f}; over classes with >= "
                  f"{MIN_CLASS_PHOTOS} held-out photos ({', '.join(r['common_classes'])}): "
                  f"{r['balanced_accuracy_common']:.3f}",
                  f"fear recall {r['fear_recall']:.3f} (n={r['held_out_per_class']['fear']}), contempt recall "
                  f"{r['contempt_recall']:.3f} (n={r['held_out_per_class']['contempt']})",
                  f"non-neutral faces read as neutral: {100 * r['non_neutral_read_as_neutral']:.1f}%",
                  f"units vs MediaPipe: median r {r['median_r']:.3f}, median slope {r['median_slope']:.3f} over "
                  f"{r['varying_units']} units with std >= 0.05",
                  "  " + "; ".join(f"{n} r {u['r']:.2f} k {u['slope']:.2f}" for n, u in r["units"].items()
                                   if u["mediapipe_std"] >= 0.05),
                  "landmark residual of the driven head: " + ", ".join(
                      f"{k} {v:.2f} mm ({r['residual_over_fit'][k]:.2f}x fit)" for k, v in r["residual_mm"].items()),
                  f"clips: jitter on still stretches raw {r['jitter_raw']:.4f}, smoothed {r['jitter_smoothed']:.4f} "
                  f"(MediaPipe's own {r['jitter_mediapipe']:.4f}); lag behind MediaPipe raw {r['lag_ms_raw']:.0f} ms, "
                  f"smoothed {r['lag_ms_smoothed']:.0f} ms",
                  "  " + "; ".join(f"{c}: {v['still_unit_frames'] / v['frames']:.1f} of 51 units still per frame"
                                   for c, v in r["clips"].items()),
                  "  emotion label changes per 100 frames (raw): " + ", ".join(
                      f"{c} {v['emotion_changes_per_100']:.1f}" for c, v in r["clips"].items())]
    return "\n".join(lines)


def run(readers: list[str], cache_dir: Path | None, json_out: Path | None) -> str:
    report = evaluate_real(readers, PerceptionCache(cache_dir))
    if json_out is not None:
        write_atomic(json_out, (json.dumps(report, indent=1) + "\n").encode())
    return format_report(report)
