"""Live capture: a camera (an index or a URL, through OpenCV) read and tracked off the caller's
thread, the newest expression always ready, and a recording that becomes a raw `SequenceResult`.

Two threads. The camera thread reads frames as they come and keeps only the newest in a one-frame
slot (a frame the worker has not taken yet is replaced and counted as dropped), so the preview
never falls behind the camera: latency stays one frame of work, whatever the load. The worker
thread takes the slot, runs `Tracker` (video mode: the detector runs only while no face is
tracked) and the encoder, and publishes a `LiveFrame` with the capture and publish times. The
caller (Blender's modal timer) only reads `latest()`. While recording, every published frame is
kept; `stop_recording(fps)` resamples them at the scene's rate by capture time (`livelink.resample`:
nearest frame within half a frame, others are gaps), so a recording goes through the same
`processed()` gap filling and smoothing, and the same per-frame planning, as Apply to Sequence.

A video file stands in for a camera in tests and benchmarks: `pace=True` (the default for a file)
releases its frames at its own frame rate, as a camera would; `pace=False` hands every frame to
the worker without dropping any, so a run is deterministic. OpenCV's ONNX Runtime and decoder calls
release the GIL, which is what lets the two threads and the caller's thread share two cores.
Must not import bpy.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import FileProblem

DEFAULT_CAMERA_FPS = 30.0  # when a camera does not report its rate


class CameraError(FileProblem):
    """A camera (index or URL) or a stand-in video that cannot be opened or read."""

    def __init__(self, camera: str, problem: str) -> None:
        super().__init__(camera, problem, kind="Camera")


@dataclass
class LiveFrame:
    number: int  # frames read from the camera since it was opened, from 0
    captured: float  # time.perf_counter() when the camera handed the frame over
    stamp: float  # seconds on the source's clock: the capture time for a camera, number / fps for a file
    published: float  # time.perf_counter() when its expression was ready
    expression: Any  # the encoder's `Expression` (with its head pose), None when no face was found
    score: float = float("nan")  # the face's score (detector, or tracker presence), NaN without a face

    @property
    def latency_s(self) -> float:
        return self.published - self.captured


def parse_camera(text: str | int) -> int | str:
    """A camera index ("0", 1) or a URL / file path as OpenCV takes it."""
    if isinstance(text, int):
        return text
    stripped = text.strip()
    return int(stripped) if stripped.isdigit() else stripped


def open_camera(camera: int | str) -> tuple[Any, float, bool]:
    """(VideoCapture, frames per second, is a file). Raises `CameraError` when it cannot be opened or
    gives no first frame; nothing stays open then."""
    import cv2

    name = str(camera)
    is_file = isinstance(camera, str) and os.path.isfile(camera)
    if isinstance(camera, str) and not is_file and "://" not in camera:
        raise CameraError(name, "is neither a camera number (0, 1, ...), a URL (rtsp://, http://) nor a video file.")
    capture = cv2.VideoCapture(camera)
    if not capture.isOpened():
        capture.release()
        what = "is not connected or is in use by another program" if isinstance(camera, int) else "cannot be opened"
        raise CameraError(name, f"{what}: no frames could be read.")
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    return capture, fps if 1.0 <= fps <= 240.0 else DEFAULT_CAMERA_FPS, is_file


class LiveCapture:
    """One camera, tracked. `start()` opens it (raising `CameraError`) and starts both threads;
    `latest()` is the newest `LiveFrame`; `stop()` ends both threads and releases the camera (safe
    to call twice). `ended` is True once a stand-in file has no more frames. `stats()` gives the
    sustained rate and latency of the last second or so of frames."""

    def __init__(self, camera: int | str, perception: Any, encoder: Any, *, face: int = 0,
                 pace: bool | None = None) -> None:
        self.camera = parse_camera(camera)
        self.perception, self.encoder, self.face = perception, encoder, face
        self._pace = pace
        self.fps = DEFAULT_CAMERA_FPS
        self._capture: Any = None
        self._threads: list[threading.Thread] = []
        self._condition = threading.Condition()
        self._slot: tuple[int, float, float, np.ndarray] | None = None
        self._stopping = False
        self.ended = False
        self.error: str | None = None  # a failure inside a thread, for the caller to report
        self.dropped = 0
        self.read = 0
        self._latest: LiveFrame | None = None
        self._recent: deque[LiveFrame] = deque(maxlen=60)
        self._recording: list[LiveFrame] | None = None
        self._recording_started = 0.0
        self._tracker: Any = None
        self._is_file = False

    # -- lifecycle
    def start(self) -> LiveCapture:
        from ..perception.pipeline import Tracker

        self._capture, self.fps, self._is_file = open_camera(self.camera)
        pace = self._is_file if self._pace is None else self._pace
        self._tracker = Tracker(self.perception, max_faces=self.face + 1)
        self._threads = [threading.Thread(target=self._read_loop, args=(pace,), name="fields-camera", daemon=True),
                         threading.Thread(target=self._work_loop, name="fields-live-worker", daemon=True)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout=5.0)
        self._threads = []
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    # -- what the caller reads
    def latest(self) -> LiveFrame | None:
        return self._latest

    def stats(self) -> dict[str, float]:
        """`fps` (frames published per second over the recent ones), `latency_ms` (their median
        capture-to-publish time), `dropped` and `read` (camera frames) so far."""
        recent = list(self._recent)
        fps = ((len(recent) - 1) / (recent[-1].published - recent[0].published)
               if len(recent) > 1 and recent[-1].published > recent[0].published else 0.0)
        latency = float(np.median([f.latency_s for f in recent])) * 1000 if recent else 0.0
        return {"fps": fps, "latency_ms": latency, "dropped": float(self.dropped), "read": float(self.read)}

    # -- recording
    @property
    def recording(self) -> bool:
        return self._recording is not None

    def start_recording(self) -> None:
        self._recording_started = time.perf_counter()
        self._recording = []

    def stop_recording(self, fps: float) -> Any:
        """The recording as a raw `SequenceResult` at `fps` (the scene's rate), or None when it
        holds no frame. Recording stops."""
        frames, self._recording = self._recording or [], None
        if not frames:
            return None
        return recording_result(frames, fps, self.encoder, {"kind": "camera", "camera": str(self.camera)})

    # -- threads
    def _read_loop(self, pace: bool) -> None:
        import cv2

        began = time.perf_counter()
        number = 0
        try:
            while not self._stopping:
                ok, frame = self._capture.read()
                captured = time.perf_counter()
                if not ok or frame is None:
                    break
                if pace:  # a file stands in for a camera: hand frames over at its rate
                    due = began + number / self.fps
                    if due > captured:
                        time.sleep(due - captured)
                        captured = time.perf_counter()
                image = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                with self._condition:
                    if not pace:  # every frame is processed: wait for the worker to take the last one
                        while self._slot is not None and not self._stopping:
                            self._condition.wait(0.1)
                    if self._slot is not None:
                        self.dropped += 1
                    stamp = number / self.fps if self._is_file else captured
                    self._slot = (number, captured, stamp, image)
                    self.read += 1
                    self._condition.notify_all()
                number += 1
        except Exception as error:  # reported by the caller, never lost in a thread
            self.error = f"Camera '{self.camera}' failed: {type(error).__name__}: {error}"
        finally:
            with self._condition:
                self.ended = True
                self._condition.notify_all()

    def _work_loop(self) -> None:
        try:
            while True:
                with self._condition:
                    while self._slot is None and not self._stopping and not self.ended:
                        self._condition.wait(0.1)
                    if self._stopping or (self._slot is None and self.ended):
                        return
                    assert self._slot is not None
                    number, captured, stamp, image = self._slot
                    self._slot = None
                    self._condition.notify_all()
                faces = self._tracker.run(image).faces
                face = faces[self.face] if len(faces) > self.face else None
                expression = self.encoder.predict_face(face) if face is not None else None
                live = LiveFrame(number, captured, stamp, time.perf_counter(), expression,
                                 float(face.score) if face is not None else float("nan"))
                self._latest = live
                self._recent.append(live)
                if self._recording is not None and captured >= self._recording_started:
                    self._recording.append(live)
        except Exception as error:
            self.error = f"Live tracking failed: {type(error).__name__}: {error}"
            with self._condition:
                self.ended = True


def recording_result(frames: list[LiveFrame], fps: float, encoder: Any, source: dict[str, Any]) -> Any:
    """Recorded frames as a raw `SequenceResult` at `fps`: frame k takes the frame whose stamp is
    nearest to k / fps after the first (within half a frame); frames with none, or without a face,
    are gaps. Each frame keeps its head pose and face score, as a video's do (issue 13), so Min
    confidence and calibration treat a recording as they treat a video."""
    from .livelink import resample
    from .pipeline import SequenceResult

    times = np.array([f.stamp for f in frames], dtype=np.float64)
    numbers, rows = resample(times - times[0], fps)
    t = len(numbers)
    names, emotions = list(encoder.expression_names), list(encoder.emotions)
    shapes = {"expression": (len(names),), "jaw": (3,), "eyelids": (2,), "gaze": (2, 3),
              "emotion_probs": (len(emotions),), "intensity": (), "head_pose": (3,), "score": ()}
    arrays: dict[str, Any] = {name: np.full((t, *shape), np.nan, np.float32) for name, shape in shapes.items()}
    found = np.zeros(t, dtype=bool)
    for k, row in enumerate(rows):
        expression = frames[row].expression if row >= 0 else None
        if expression is None:
            continue
        found[k] = True
        arrays["expression"][k] = [expression.expression[n] for n in names]
        arrays["jaw"][k], arrays["eyelids"][k], arrays["gaze"][k] = expression.jaw, expression.eyelids, expression.gaze
        arrays["emotion_probs"][k] = [expression.emotion_probs[e] for e in emotions]
        arrays["intensity"][k] = expression.intensity
        arrays["head_pose"][k] = expression.head_pose if expression.head_pose is not None else np.nan
        arrays["score"][k] = frames[row].score
    return SequenceResult(frames=numbers, fps=float(fps), found=found, unreadable=np.zeros(t, dtype=bool), **arrays,
                          expression_names=names, emotions=emotions, source={**source, "captured": len(frames)},
                          model=encoder.describe())
