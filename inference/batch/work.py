"""One batch worker: models loaded once, then inputs processed one at a time into DIR.

`Worker` is a plain class; `run.py` makes it a Ray actor (one per worker process) and the
benchmark runs it in one ordinary process, so both paths process an input with the same code as
the single-input command line: `open_source`, `SequencePipeline.run`, `confident` and
`calibrated` (`--min-confidence`, `--neutral`: a range or auto is each sequence's own), `processed(gaps, smoothing)`,
`save_result` for a sequence (`payloads.read_livelink` in place of the pipeline for a Live Link
Face CSV), `photo_payload` for a photo. Every file is written atomically
(`inference.files`), the state record last; an input that fails returns a record naming it and
the worker goes on. Must not import bpy or Ray.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import FieldsError
from ..files import write_atomic
from .inputs import BatchInput, BatchSettings, write_record


def csv_text(result: Any) -> str:
    """`frame,time,found,<channel>...` with one row per frame (`result.channels()` columns)."""
    names, matrix = result.channels()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["frame", "time", "found", *names])
    for frame, seconds, found, row in zip(result.frames, result.times, result.found, matrix, strict=True):
        writer.writerow([int(frame), f"{seconds:.6f}", int(found), *(f"{value:.6g}" for value in row)])
    return buffer.getvalue()


class Worker:
    """Holds the networks (built on first use: a worker that only sees photos never builds the
    sequence pipeline) and processes one input per `process` call. `progress()` may be called from
    another thread while `process` runs (the Ray actor allows two concurrent calls for that)."""

    def __init__(self, settings: BatchSettings, out: str) -> None:
        # FFmpeg's own complaint would precede ours in the worker log; the record carries the message.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "0")
        self.settings, self.out = settings, Path(out)
        self._sequence: Any = None
        self._perception: Any = None
        self._encoder: Any = None
        self._neutral: Any = None  # the neutral photo's reading, once
        self._lock = threading.Lock()
        self._current: tuple[str, int] | None = None  # (input name, frames done) while processing

    def encoder(self) -> Any:
        if self._encoder is None:
            from ..expression.encoder import ExpressionEncoder

            self._encoder = ExpressionEncoder()
        return self._encoder

    def progress(self) -> dict[str, Any]:
        """This worker's process id and the input it is on, with its frames done so far."""
        with self._lock:
            current = self._current
        return {"pid": os.getpid(), "input": current[0] if current else None, "frames": current[1] if current else 0}

    def _count(self, name: str, frames: int) -> None:
        with self._lock:
            self._current = (name, frames)

    def process(self, item: BatchInput) -> dict[str, Any]:
        """Process `item`, write its results and state record; the record (status `done` or `failed`)."""
        began, cpu_began = time.perf_counter(), time.process_time()
        self._count(item.name, 0)
        record: dict[str, Any] = {"input": item.path, "name": item.name, "kind": item.kind, "key": item.key,
                                  "outputs": item.outputs, "worker_pid": os.getpid()}
        try:
            record["frames"] = self._photo(item) if item.kind == "photo" else self._sequence_input(item)
            # CPU seconds beside wall seconds: on a shared machine they tell waiting from working.
            record.update(status="done", seconds=round(time.perf_counter() - began, 3),
                          cpu_seconds=round(time.process_time() - cpu_began, 3))
            write_record(item, self.out, record)  # last: a record vouches for complete results
        except FieldsError as error:
            record.update(status="failed", error=str(error))
        except Exception as error:  # one broken input must not stop the batch
            message = f"Input '{item.path}' could not be processed: {type(error).__name__}: {error}"
            record.update(status="failed", error=message.splitlines()[0])
        finally:
            with self._lock:
                self._current = None
        record["seconds"] = round(time.perf_counter() - began, 3)
        return record

    def _neutral_photo(self, path: str) -> Any:
        """The `Neutral` of the batch's neutral photo, read once per worker."""
        if self._neutral is None:
            from ..payloads import photo_neutral
            from ..perception.pipeline import Perception

            self._neutral = photo_neutral(Perception(max_faces=1), self.encoder(), path)
        return self._neutral

    def _photo(self, item: BatchInput) -> int:
        from ..payloads import photo_payload

        if self._perception is None:
            from ..perception.pipeline import Perception

            self._perception = Perception(max_faces=self.settings.max_faces)
        neutral = None
        if self.settings.neutral:
            from ..expression.calibration import NeutralError, parse_neutral

            spec = parse_neutral(self.settings.neutral)
            if spec.kind != "photo":
                raise NeutralError(f"'{item.path}' is a photo: --neutral {self.settings.neutral} needs a sequence's "
                                   "frames; give a photo of the actor at rest to calibrate photos.")
            neutral = self._neutral_photo(spec.photo)
        payload = photo_payload(self._perception, self.encoder(), item.path, neutral=neutral)
        # The photo command line's JSON line, as one file.
        write_atomic(self.out / item.outputs[0], (json.dumps(payload) + "\n").encode())
        return 1

    def _sequence_input(self, item: BatchInput) -> int:
        from ..sequence.frames import open_source
        from ..sequence.pipeline import SequencePipeline, save_result
        from ..sequence.smoothing import OneEuroSettings

        settings = self.settings
        if self._sequence is None:
            self._sequence = SequencePipeline(face=settings.face, encoder=self.encoder())
        if item.kind == "livelink":
            from ..payloads import read_livelink
            from ..sequence.livelink import DEFAULT_TIMECODE_FPS

            raw = read_livelink(item.path, settings.fps, DEFAULT_TIMECODE_FPS, 0, None, settings.step,
                                encoder=self.encoder())
        else:
            source = open_source(item.path, 0, None, settings.step, settings.fps)
            raw = self._sequence.run(source, progress=lambda job: self._count(item.name, job.done))
        if settings.min_confidence > 0:
            raw = raw.confident(settings.min_confidence)
        if settings.neutral:
            from ..expression.calibration import parse_neutral
            from ..payloads import sequence_neutral

            spec = parse_neutral(settings.neutral)
            neutral = sequence_neutral(spec, raw, f"'{item.path}'", lambda: self._neutral_photo(spec.photo))
            raw = raw.calibrated(neutral, self.encoder())
        smoothing = None if settings.smoothing is None else OneEuroSettings(**settings.smoothing)
        result = raw.processed(gaps=settings.gaps, smoothing=smoothing)
        save_result(result, self.out / f"{item.name}.npz")
        if settings.csv:
            write_atomic(self.out / f"{item.name}.csv", csv_text(result).encode())
        if settings.json:
            write_atomic(self.out / f"{item.name}.json", json.dumps(result.to_json()).encode())
        return len(result.frames)
