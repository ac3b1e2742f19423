"""Benchmark the perception stage against MediaPipe's own FaceLandmarker on the same frames.

Per-frame latency on 640x480 frames (median over --frames, after a warm-up), photo mode
(`Perception.run`: detector on every frame) and video mode (`Tracker.run`: crops from the
previous landmarks), side by side with MediaPipe's Tasks API in IMAGE and VIDEO modes, run by
tools/mediapipe_referee.py in `.venv-mediapipe` (or $FIELDS_MEDIAPIPE_PYTHON). Prints the ratios
(target: at most 1.2x MediaPipe) and this process's peak resident memory (target: under 500 MB).
A script, not a timed test: timings depend on the machine. Usage:
    .venv/bin/python tools/bench_perception.py [--frames 120] [--threads 0]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def make_frames(count: int) -> np.ndarray:
    """A webcam-like sequence: the astronaut's face (about 190 px wide) moving and turning slightly
    in a 640x480 frame, with sensor noise."""
    import cv2
    from skimage import data

    photo = cv2.resize(data.astronaut(), (1024, 1024), interpolation=cv2.INTER_LINEAR)
    centre = (450.0, 260.0)  # the face in the enlarged photo
    rng = np.random.default_rng(0)
    frames = np.empty((count, 480, 640, 3), np.uint8)
    for i in range(count):
        t = i / max(count - 1, 1)
        matrix = np.asarray(cv2.getRotationMatrix2D(centre, 8 * np.sin(2 * np.pi * t), 1.0), dtype=np.float64)
        matrix[:, 2] += (320 - centre[0] + 60 * np.sin(2 * np.pi * t), 220 - centre[1] + 20 * np.cos(2 * np.pi * t))
        frame = cv2.warpAffine(photo, matrix, (640, 480), borderValue=(96, 110, 120))
        frames[i] = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
    return frames


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kilobytes


def time_ours(run, frames: np.ndarray, warmup: int) -> np.ndarray:
    for frame in frames[:warmup]:
        run(frame)
    latency = np.empty(len(frames))
    for i, frame in enumerate(frames):
        start = time.perf_counter()
        run(frame)
        latency[i] = time.perf_counter() - start
    return latency


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX Runtime intra-op threads for every network (default: the pipeline's own choice)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    from perception_fixtures import mediapipe_python, run_referee

    from inference.perception.blendshapes import MODEL_FILE as BLENDSHAPES_FILE
    from inference.perception.blendshapes import BlendshapeNetwork
    from inference.perception.detector import MODEL_FILE as DETECTOR_FILE
    from inference.perception.detector import FaceDetector
    from inference.perception.landmarks import MODEL_FILE as LANDMARKS_FILE
    from inference.perception.landmarks import FaceLandmarkNetwork
    from inference.perception.pipeline import Perception, Tracker
    from inference.perception.runtime import create_session

    frames = make_frames(args.frames)
    baseline = peak_rss_mb()

    def session(path: Path):
        return create_session(path, intra_op_threads=args.threads or 0)

    if args.threads is None:
        perception = Perception(max_faces=1)
    else:
        perception = Perception(max_faces=1, detector=FaceDetector(session(DETECTOR_FILE)),
                                landmarker=FaceLandmarkNetwork(session(LANDMARKS_FILE)),
                                blendshapes=BlendshapeNetwork(session(BLENDSHAPES_FILE)))
    photo = time_ours(perception.run, frames, args.warmup)
    tracker = Tracker(perception)
    video = time_ours(tracker.run, frames, args.warmup)
    peak = peak_rss_mb()

    figures: dict[str, object] = {
        "frames": args.frames, "providers": perception.providers,
        "ours_photo_ms": float(np.median(photo) * 1e3), "ours_video_ms": float(np.median(video) * 1e3),
        "tracker_detector_runs": tracker.detector_runs, "peak_rss_mb": peak, "rss_before_models_mb": baseline,
    }
    python = mediapipe_python()
    if python is None:
        print("mediapipe not importable (.venv-mediapipe missing): MediaPipe columns skipped")
    else:
        with tempfile.TemporaryDirectory() as work:
            for mode in ("image", "video"):
                reference = run_referee(frames, mode, Path(work), python)
                figures[f"mediapipe_{mode}_ms"] = float(np.median(reference["latency"][args.warmup:]) * 1e3)
        figures["ratio_photo"] = figures["ours_photo_ms"] / figures["mediapipe_image_ms"]  # type: ignore[operator]
        figures["ratio_video"] = figures["ours_video_ms"] / figures["mediapipe_video_ms"]  # type: ignore[operator]

    print(f"{'mode':<8}{'ours (ms)':>12}{'MediaPipe (ms)':>16}{'ratio':>8}   target <= 1.2")
    for mode, ours, theirs, ratio in (("photo", "ours_photo_ms", "mediapipe_image_ms", "ratio_photo"),
                                      ("video", "ours_video_ms", "mediapipe_video_ms", "ratio_video")):
        theirs_text = f"{figures[theirs]:>16.2f}" if theirs in figures else f"{'-':>16}"
        ratio_text = f"{figures[ratio]:>8.2f}" if ratio in figures else f"{'-':>8}"
        print(f"{mode:<8}{figures[ours]:>12.2f}{theirs_text}{ratio_text}")
    print(f"peak resident memory of the pipeline process: {peak:.0f} MB (target < 500 MB; "
          f"{baseline:.0f} MB before the models were loaded); providers {figures['providers']}; "
          f"detector ran on {tracker.detector_runs} of {args.frames} tracked frames")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
