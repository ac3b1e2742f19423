"""Sequences: a video or an image folder in, per-frame expression, emotion and intensity arrays out.

`SequencePipeline` holds the networks (perception and encoder sessions, built once);
`pipeline.start(source, cache_dir=...)` returns a `SequenceJob` that the caller advances with
`job.step(budget_s)` (a Blender timer tick, or a worker thread) until it reports done, and may
`cancel()`; `pipeline.run(...)` does it all at once. Each frame goes through `Tracker` (video
mode), `encoder_input`, and the encoder in batches. The raw result (gaps as NaN, nothing
smoothed) is cached in an `.npz` keyed by the source's identity and the encoder's sha256, so
re-applying with other gap or smoothing settings, or onto another head, reads the cache and runs
no network; `SequenceResult.processed(...)` applies those settings. Must not import bpy and must
not hold decoded frames beyond the one being processed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CacheError
from ..expression.features import FEATURE_VERSION, encoder_input
from ..files import write_with
from ..perception.blendshapes import ARKIT_NAMES
from .frames import FrameSource
from .smoothing import OneEuroSettings, fill_gaps, one_euro

CACHE_VERSION = 2  # 2: head pose and face score per frame (issue 13)
# Rows per encoder call: one call per frame costs ~0.35 ms, a batch of 32 ~0.07 ms a row.
ENCODER_BATCH = 32
BLINKS = ("eyeBlinkLeft", "eyeBlinkRight")  # the eyelids' [left, right] as ARKit units
PARAMETERS = ("expression", "jaw", "eyelids", "gaze", "emotion_probs", "intensity", "head_pose")
DEFAULT_SMOOTHING = OneEuroSettings()
MAX_PROBLEMS_KEPT = 20  # messages about unreadable frames kept verbatim; the count is always exact


@dataclass
class SequenceResult:
    """Per-frame arrays, T rows in source order. Rows without a face (`found` False) are NaN in the
    raw result; `processed()` fills or keeps them."""

    frames: np.ndarray  # (T,) int64 source frame numbers (from 0)
    fps: float
    found: np.ndarray  # (T,) bool: a face was tracked in this frame
    unreadable: np.ndarray  # (T,) bool: the frame could not be decoded (skipped, never a crash)
    expression: np.ndarray  # (T, E) float32, `expression_names` order
    jaw: np.ndarray  # (T, 3) axis-angle, radians
    eyelids: np.ndarray  # (T, 2) [left, right], 0..1
    gaze: np.ndarray  # (T, 2, 3) axis-angle of eye.L, eye.R
    emotion_probs: np.ndarray  # (T, K) `emotions` order, rows sum to 1
    intensity: np.ndarray  # (T,) 0..1
    head_pose: np.ndarray  # (T, 3) axis-angle of the head in the camera (the Face's metric pose)
    score: np.ndarray  # (T,) the face's detection (or tracking presence) score, NaN without a face
    expression_names: list[str]
    emotions: list[str]
    source: dict[str, Any]  # the source's describe()
    model: dict[str, Any]  # the encoder's describe()
    problems: list[str] = field(default_factory=list)  # first messages about unreadable frames
    warnings: list[str] = field(default_factory=list)  # e.g. the cache could not be written
    from_cache: bool = False
    processing: dict[str, Any] | None = None  # gap mode and smoothing settings; None for the raw result

    @property
    def times(self) -> np.ndarray:
        return self.frames / self.fps

    @property
    def emotion_labels(self) -> list[str | None]:
        """The most probable emotion per frame (None where the row is NaN)."""
        return [None if np.isnan(row).any() else self.emotions[int(np.argmax(row))] for row in self.emotion_probs]

    def expression_at(self, row: int) -> Any:
        """Row `row` as the encoder's `Expression` (what photo mode produces), so per-frame planning
        such as `reconstruct.plan` or retargeting takes a sequence frame as it takes a photo."""
        from ..expression.encoder import Expression

        probs = self.emotion_probs[row].astype(np.float64)
        # The units come back exactly where the head's keys are the units themselves and the blinks
        # are its eyelids (the ICT head the encoder is trained for); otherwise they stay unknown.
        values = dict(zip(self.expression_names, map(float, self.expression[row]), strict=True))
        values.update(zip(BLINKS, map(float, self.eyelids[row]), strict=True))
        units = {u: values[u] for u in ARKIT_NAMES} if set(ARKIT_NAMES) <= set(values) else {}
        return Expression(units=units,
            expression=dict(zip(self.expression_names, map(float, self.expression[row]), strict=True)),
            jaw=self.jaw[row].astype(np.float64), eyelids=self.eyelids[row].astype(np.float64),
            gaze=self.gaze[row].astype(np.float64),
            emotion=self.emotions[int(np.nanargmax(probs))] if np.isfinite(probs).any() else "",
            emotion_probs=dict(zip(self.emotions, map(float, probs), strict=True)),
            intensity=float(self.intensity[row]), head_pose=self.head_pose[row].astype(np.float64))

    def units(self) -> np.ndarray:
        """(T, 52) ARKit units, read back from the head's keys and eyelids where the keys are the
        units themselves (the ICT head the encoder is trained for); ValueError otherwise."""
        columns = [*self.expression_names, *BLINKS]
        if not set(ARKIT_NAMES) <= set(columns):
            raise ValueError("this result's expression keys are not the ARKit units")
        values = np.concatenate([self.expression, self.eyelids], axis=1)
        return values[:, [columns.index(u) for u in ARKIT_NAMES]]

    def calibrated(self, neutral: Any, encoder: Any) -> SequenceResult:
        """A copy read relative to the actor's `neutral` (`expression.calibration.Neutral`): units
        rescaled, the head's parameters derived again through `encoder`'s ARKit table, emotion and
        intensity relative to the rest when it `reads_emotion`. Rows without a face stay NaN."""
        units = neutral.calibrate_units(self.units())
        params = encoder.parameters(np.nan_to_num(units))
        gaps = np.isnan(units).any(1)
        arrays: dict[str, Any] = {
            name: np.where(gaps.reshape(-1, *([1] * (value.ndim - 1))), np.nan, value).astype(np.float32)
            for name, value in params.items()}
        if self.reads_emotion:
            arrays["emotion_probs"] = neutral.calibrate_probs(self.emotion_probs, self.emotions).astype(np.float32)
            arrays["intensity"] = neutral.calibrate_intensity(self.intensity).astype(np.float32)
        arrays["head_pose"] = neutral.calibrate_head_pose(self.head_pose).astype(np.float32)
        return replace(self, **arrays)

    @property
    def reads_emotion(self) -> bool:
        """False for a Live Link Face take (`sequence.livelink`): it holds ARKit weights only, its
        emotion uniform and its intensity 1 by construction, which calibration must not turn into
        a reading (the rest's bias removed from a uniform distribution would invent an emotion)."""
        return self.source.get("kind") != "livelink"

    def confident(self, min_score: float) -> SequenceResult:
        """A copy where frames whose face score is below `min_score` count as frames without a face
        (their values NaN), so `processed()` fills them as gaps."""
        low = self.found & ~(np.nan_to_num(self.score, nan=0.0) >= min_score)
        if not low.any():
            return self
        arrays: dict[str, Any] = {name: np.where(low.reshape(-1, *([1] * (getattr(self, name).ndim - 1))), np.nan,
                                 getattr(self, name)).astype(np.float32) for name in PARAMETERS}
        return replace(self, found=self.found & ~low, **arrays)

    def channels(self) -> tuple[list[str], np.ndarray]:
        """Every driven value as one (T, C) float32 matrix with a name per column:
        `expression:<name>`, `jaw:<axis>`, `eyelids:<0|1>`, `gaze:<eye>:<axis>`, `emotion:<label>`,
        `intensity`. The keyframe helper takes these columns as they are."""
        names = ([f"expression:{n}" for n in self.expression_names] + [f"jaw:{i}" for i in range(3)]
                 + [f"eyelids:{i}" for i in range(2)] + [f"gaze:{e}:{i}" for e in range(2) for i in range(3)]
                 + [f"emotion:{label}" for label in self.emotions] + ["intensity"])
        t = len(self.frames)
        matrix = np.concatenate([self.expression, self.jaw, self.eyelids, self.gaze.reshape(t, 6),
                                 self.emotion_probs, self.intensity[:, None]], axis=1).astype(np.float32)
        return names, matrix

    def processed(self, gaps: str = "interpolate", smoothing: OneEuroSettings | None = DEFAULT_SMOOTHING,
                  ) -> SequenceResult:
        """A copy with face-less frames filled (`gaps`: "interpolate", "hold", "leave") and the
        parameters and intensity smoothed (None: not smoothed); `found` still says which frames
        held a face. Emotion probabilities are renormalised and bounded values clamped after
        smoothing, so every row stays valid."""
        arrays: dict[str, Any] = {}
        for name in PARAMETERS:
            values = fill_gaps(getattr(self, name), self.found, gaps, self.times)
            if smoothing is not None:
                values = one_euro(values, self.times, smoothing)
            arrays[name] = values.astype(np.float32)
        # The score is evidence, not motion: kept per frame as read (NaN where no face was seen).
        with np.errstate(invalid="ignore"):
            probs = np.clip(arrays["emotion_probs"], 0.0, None)
            arrays["emotion_probs"] = probs / probs.sum(1, keepdims=True)
        arrays["eyelids"] = np.clip(arrays["eyelids"], 0.0, 1.0)
        arrays["intensity"] = np.clip(arrays["intensity"], 0.0, 1.0)
        processing = {"gaps": gaps, "smoothing": None if smoothing is None else asdict(smoothing)}
        return replace(self, **arrays, processing=processing)

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "frames": len(self.frames), "fps": self.fps,
                "faces_found": int(self.found.sum()), "unreadable_frames": int(self.unreadable.sum()),
                "problems": self.problems, "warnings": self.warnings, "from_cache": self.from_cache,
                "processing": self.processing, "model": self.model}

    def to_json(self, digits: int = 5) -> dict[str, Any]:
        """Summary plus per-frame lists (NaN becomes null)."""
        def rows(array: np.ndarray) -> list[Any]:
            rounded = np.round(array.astype(np.float64), digits)
            cells = rounded.astype(object)
            cells[np.isnan(rounded)] = None
            return cells.tolist()  # type: ignore[no-any-return]

        return {**self.summary(), "expression_names": self.expression_names, "emotions": self.emotions,
                "frame_numbers": self.frames.tolist(), "found": self.found.tolist(), "score": rows(self.score),
                "emotion": self.emotion_labels, **{name: rows(getattr(self, name)) for name in PARAMETERS}}

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything as plain arrays (metadata as a JSON string), for `np.savez` without pickle."""
        meta = {"fps": self.fps, "expression_names": self.expression_names, "emotions": self.emotions,
                "source": self.source, "model": self.model, "problems": self.problems, "processing": self.processing}
        return {"frames": self.frames, "found": self.found, "unreadable": self.unreadable, "score": self.score,
                **{name: getattr(self, name) for name in PARAMETERS}, "meta": np.array(json.dumps(meta))}

    @classmethod
    def from_arrays(cls, data: Any) -> SequenceResult:
        meta = json.loads(str(data["meta"]))
        parameters: dict[str, Any] = {name: np.asarray(data[name], dtype=np.float32) for name in PARAMETERS}
        return cls(frames=np.asarray(data["frames"], dtype=np.int64), fps=float(meta["fps"]),
                   found=np.asarray(data["found"], dtype=bool), unreadable=np.asarray(data["unreadable"], dtype=bool),
                   score=np.asarray(data["score"], dtype=np.float32),
                   **parameters,
                   expression_names=list(meta["expression_names"]), emotions=list(meta["emotions"]),
                   source=meta["source"], model=meta["model"], problems=list(meta["problems"]),
                   processing=meta.get("processing"))


def load_result(path: str | os.PathLike[str]) -> SequenceResult:
    """A result written by `save_result` (or the command line's `--out`). Raises `SequenceError`
    naming the file when it is missing or not such a file."""
    from ..errors import SequenceError

    try:
        with np.load(path, allow_pickle=False) as data:
            return SequenceResult.from_arrays(data)
    except FileNotFoundError:
        raise SequenceError(path, "does not exist.", kind="Sequence result") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise SequenceError(path, f"is not a FIELDS sequence result ({type(error).__name__}).",
                            kind="Sequence result") from None


def save_result(result: SequenceResult, path: str | os.PathLike[str]) -> Path:
    """Write `result` (raw or processed) to an .npz atomically; `load_result` reads it back."""
    return write_npz(path, result.arrays())


def write_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> Path:
    """Write an .npz atomically (`files.write_with`), so a reader (or a crash half-way) never sees a
    half-written file; raises `CacheError` naming it when it cannot be written."""
    path = Path(path)

    def save(temporary: Path) -> None:
        with temporary.open("wb") as stream:
            np.savez(stream, **arrays)  # type: ignore[arg-type]

    try:
        write_with(path, save)
    except OSError as error:
        raise CacheError(path, f"cannot be written ({error.strerror or error}).") from error
    return path


class SequencePipeline:
    """The networks for sequences, built once and reused by every job (and by a re-apply).
    `face` picks which face to follow when several are tracked: 0 is the largest.
    `frames_perceived` counts frames sent through perception, over every job (a cache hit adds none)."""

    def __init__(self, *, face: int = 0, perception: Any = None, encoder: Any = None,
                 batch: int = ENCODER_BATCH) -> None:
        from ..expression.encoder import ExpressionEncoder
        from ..perception.pipeline import Perception

        if face < 0:
            raise ValueError(f"face index {face} is not valid: 0 is the largest face.")
        self.face = face
        self.perception = perception if perception is not None else Perception(max_faces=face + 1)
        self.encoder = encoder if encoder is not None else ExpressionEncoder()
        self.batch = batch
        self.frames_perceived = 0

    def cache_key(self, source: FrameSource) -> dict[str, Any]:
        return {"format": CACHE_VERSION, "source": source.identity(), "start": source.start, "end": source.end,
                "step": source.step, "face": self.face, "encoder_sha256": self.encoder.metadata["onnx_sha256"],
                "feature_version": FEATURE_VERSION}

    def cache_path(self, source: FrameSource, cache_dir: str | os.PathLike[str]) -> Path:
        """`<cache_dir>/<source name>-<20 hex digits of the key's sha256>.npz`."""
        key = json.dumps(self.cache_key(source), sort_keys=True)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", source.path.name)[:60] or "source"
        return Path(cache_dir) / f"{stem}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"

    def load_cached(self, source: FrameSource, cache_dir: str | os.PathLike[str]) -> SequenceResult | None:
        """The cached raw result for this source and settings, or None (absent, stale or damaged:
        a damaged file is simply recomputed and overwritten)."""
        path = self.cache_path(source, cache_dir)
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) != json.dumps(self.cache_key(source), sort_keys=True):
                    return None
                result = SequenceResult.from_arrays(data)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            return None
        # The rate is not part of the key (it changes no network output): take the source's.
        return replace(result, fps=source.fps, source=source.describe(), from_cache=True)

    def save_cached(self, result: SequenceResult, source: FrameSource, cache_dir: str | os.PathLike[str]) -> Path:
        arrays = {**result.arrays(), "key": np.array(json.dumps(self.cache_key(source), sort_keys=True))}
        return write_npz(self.cache_path(source, cache_dir), arrays)

    def start(self, source: FrameSource, cache_dir: str | os.PathLike[str] | None = None) -> SequenceJob:
        """A job for `source`; already finished when `cache_dir` holds its result."""
        if cache_dir is not None:
            cached = self.load_cached(source, cache_dir)
            if cached is not None:
                return SequenceJob(self, source, cache_dir, cached=cached)
        return SequenceJob(self, source, cache_dir)

    def run(self, source: FrameSource, cache_dir: str | os.PathLike[str] | None = None,
            progress: Callable[[SequenceJob], None] | None = None) -> SequenceResult:
        """The raw result for `source` (from the cache when there), calling `progress(job)` about
        ten times a second."""
        job = self.start(source, cache_dir)
        while not job.step(0.1):
            if progress is not None:
                progress(job)
        if progress is not None:
            progress(job)
        return job.result()


class SequenceJob:
    """One pass over a source, advanced by `step()`. `done` frames of `total` (None when the
    container does not say), `fps` and `eta_s` are for a progress display. `cancel()` stops it
    and keeps nothing: a cancelled job has no result and writes no cache."""

    def __init__(self, pipeline: SequencePipeline, source: FrameSource,
                 cache_dir: str | os.PathLike[str] | None, cached: SequenceResult | None = None) -> None:
        from ..perception.pipeline import Tracker

        self.pipeline, self.source, self.cache_dir = pipeline, source, cache_dir
        self.total = source.total
        self.done = 0
        self.unreadable_count = 0
        self.cancelled = False
        self._result = cached
        self.finished = cached is not None
        if cached is not None:
            self.done = len(cached.frames)
        self._frames = iter(source) if cached is None else None
        self._tracker = Tracker(pipeline.perception, max_faces=pipeline.face + 1)
        self._started = time.perf_counter()
        self._elapsed = 0.0
        self._problems: list[str] = []
        # Rows of the current chunk, flushed through the encoder every `batch` rows.
        self._numbers: list[int] = []
        self._found: list[bool] = []
        self._unreadable: list[bool] = []
        self._features: list[np.ndarray] = []
        self._poses: list[np.ndarray] = []
        self._scores: list[float] = []
        self._chunks: list[dict[str, np.ndarray]] = []

    @property
    def from_cache(self) -> bool:
        return self._result is not None and self._result.from_cache

    @property
    def fps(self) -> float:
        return self.done / self._elapsed if self._elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.total is None or self.fps <= 0:
            return None
        return max(self.total - self.done, 0) / self.fps

    def step(self, budget_s: float | None = None) -> bool:
        """Process frames for about `budget_s` seconds, at least one (None: to the end); True once finished
        (or cancelled). Errors from the source (mixed frame sizes) propagate."""
        if self.finished or self.cancelled:
            return True
        assert self._frames is not None
        began = time.perf_counter()
        try:
            while True:  # at least one frame per step, so a tiny budget still advances
                frame = next(self._frames, None)
                if frame is None:
                    self._finish()
                    break
                self._process(frame)
                if budget_s is not None and time.perf_counter() - began >= budget_s:
                    break
        finally:
            self._elapsed += time.perf_counter() - began
        return self.finished

    def cancel(self) -> None:
        self.cancelled = True
        if self._frames is not None and hasattr(self._frames, "close"):
            self._frames.close()  # releases the VideoCapture now, not at garbage collection
        self._chunks, self._features = [], []

    def result(self) -> SequenceResult:
        if self._result is None:
            raise RuntimeError("the sequence job has not finished" + (" (it was cancelled)" if self.cancelled else ""))
        return self._result

    def _process(self, frame: Any) -> None:
        self.done += 1
        self._numbers.append(frame.number)
        if frame.image is None:
            self.unreadable_count += 1
            if len(self._problems) < MAX_PROBLEMS_KEPT:
                self._problems.append(frame.problem or f"Frame {frame.number} could not be read.")
            self._found.append(False)
            self._unreadable.append(True)
            # An unreadable frame breaks the chain of crops: the face may have moved meanwhile.
            self._tracker.reset()
        else:
            self.pipeline.frames_perceived += 1
            perceived = self._tracker.run(frame.image)
            face_index = self.pipeline.face
            present = len(perceived.faces) > face_index
            self._found.append(present)
            self._unreadable.append(False)
            if present:
                from ..expression.encoder import head_rotation

                face = perceived.faces[face_index]
                self._features.append(encoder_input(face))
                self._poses.append(head_rotation(face.matrix))
                self._scores.append(face.score)
        if len(self._numbers) >= self.pipeline.batch:
            self._flush()

    def _flush(self) -> None:
        if not self._numbers:
            return
        encoder = self.pipeline.encoder
        found = np.array(self._found, dtype=bool)
        n = len(found)
        shapes = {"expression": (len(encoder.expression_names),), "jaw": (3,), "eyelids": (2,), "gaze": (2, 3),
                  "emotion_probs": (len(encoder.emotions),), "intensity": (), "head_pose": (3,), "score": ()}
        chunk = {name: np.full((n, *shape), np.nan, dtype=np.float32) for name, shape in shapes.items()}
        if found.any():
            outputs = encoder.predict_arrays(np.stack(self._features))
            outputs["head_pose"] = np.array(self._poses)
            outputs["score"] = np.array(self._scores)
            for name in (*PARAMETERS, "score"):
                chunk[name][found] = outputs[name].reshape(len(self._features), *shapes[name])
        chunk["frames"] = np.array(self._numbers, dtype=np.int64)
        chunk["found"] = found
        chunk["unreadable"] = np.array(self._unreadable, dtype=bool)
        self._chunks.append(chunk)
        self._numbers, self._found, self._unreadable, self._features = [], [], [], []
        self._poses, self._scores = [], []

    def _finish(self) -> None:
        self._flush()
        if not self._chunks:
            # Every selected frame lay past the end of the video.
            from ..errors import SequenceError

            raise SequenceError(self.source.path, "has no frames in the selected range.", kind="Video")
        joined: dict[str, Any] = {name: np.concatenate([c[name] for c in self._chunks]) for name in self._chunks[0]}
        self._chunks = []
        if self.unreadable_count > len(self._problems):
            self._problems.append(f"... {self.unreadable_count - len(self._problems)} more unreadable frames.")
        result = SequenceResult(
            frames=joined["frames"], fps=self.source.fps, found=joined["found"], unreadable=joined["unreadable"],
            **{name: joined[name] for name in PARAMETERS}, score=joined["score"],
            expression_names=list(self.pipeline.encoder.expression_names),
            emotions=list(self.pipeline.encoder.emotions), source=self.source.describe(),
            model=self.pipeline.encoder.describe(), problems=self._problems)
        if self.cache_dir is not None:
            try:
                self.pipeline.save_cached(result, self.source, self.cache_dir)
            except CacheError as error:  # losing the cache must not lose the run
                result.warnings.append(str(error))
        self._result = result
        self.finished = True
