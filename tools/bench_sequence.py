"""Benchmark the sequence pipeline end to end, against MediaPipe's VIDEO-mode landmarker alone.

1. Throughput: a 640x480 MJPG clip of --frames frames (the astronaut moving, tests/sequence_fixtures)
   from the file to final smoothed per-frame parameters: decode + Tracker + features + batched
   encoder + gap filling + One-Euro (Blender's keying is measured by the add-on's benchmark).
   Target: at least 30 frames/s. MediaPipe's Tasks API in VIDEO mode runs on the same decoded
   frames through tools/mediapipe_referee.py (`.venv-mediapipe`); the ratio is printed.
2. Jitter: a still-face clip (sub-pixel shifts, sensor noise, JPEG re-encoding per frame), mean
   absolute frame-to-frame change per parameter group, raw and smoothed with the defaults.
3. Memory: --long frames generated on the fly (never stored) through the same pipeline, resident
   memory sampled every 1000 frames; it must stay flat.
A script, not a timed test: timings on this shared 2-core VM vary. Usage:
    .venv/bin/python tools/bench_sequence.py [--frames 300] [--long 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def rss_mb() -> float:
    """Current resident memory (not the peak) from /proc: what per-frame growth would raise."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class GeneratedSource:
    """A FrameSource whose frames are made when asked for: the face drifting, noise from a fixed
    pattern rolled per frame (cheap, so the pipeline dominates), RSS sampled every 1000 frames."""

    kind = "generated"

    def __init__(self, count: int) -> None:
        from sequence_fixtures import moving_frame

        self.count, self.path = count, Path("generated")
        self.start, self.end, self.step, self.fps = 0, count - 1, 1, 30.0
        self.samples: list[tuple[int, float]] = []
        self._moving_frame = moving_frame

    @property
    def total(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Any]:
        import cv2

        from inference.sequence.frames import Frame

        pattern = np.random.default_rng(0).integers(0, 7, (480 + 64, 640, 3), dtype=np.uint8)
        for i in range(self.count):
            if i % 1000 == 0:
                self.samples.append((i, rss_mb()))
            # A 300-frame loop of motion plus sensor noise that differs every frame (a window of
            # a fixed pattern: Gaussian noise per frame would cost more than perception); no frame
            # is kept once yielded.
            offset = (i * 7) % 64
            frame = self._moving_frame(i % 300, 300, noise=0)
            yield Frame(i, cv2.add(frame, pattern[offset:offset + 480]))
        self.samples.append((self.count, rss_mb()))

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "frames": self.count}


def decoded(clip: Path) -> np.ndarray:
    """Every frame of `clip` as RGB, decoded by the pipeline's own source (for the referee)."""
    from inference.sequence.frames import VideoSource

    return np.stack([frame.image for frame in VideoSource(clip) if frame.image is not None])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--long", type=int, default=10000, help="frames for the memory run (0: skip)")
    parser.add_argument("--still", type=int, default=150, help="frames of the still clip for the jitter figures")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    from perception_fixtures import mediapipe_python, run_referee
    from sequence_fixtures import moving_frame, still_frame, write_folder, write_video

    from inference.sequence.frames import open_source
    from inference.sequence.pipeline import SequencePipeline
    from inference.sequence.smoothing import jitter

    figures: dict[str, Any] = {"frames": args.frames}
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        clip = write_video(work / "clip.avi", (moving_frame(i, args.frames) for i in range(args.frames)), fps=30.0)
        began = time.perf_counter()
        pipeline = SequencePipeline()
        figures["model_load_s"] = time.perf_counter() - began

        for attempt in ("first", "second"):
            began = time.perf_counter()
            raw = pipeline.run(open_source(clip))
            inferred = time.perf_counter()
            final = raw.processed()
            done = time.perf_counter()
            figures[f"{attempt}_fps"] = args.frames / (done - began)
            figures[f"{attempt}_postprocess_ms"] = (done - inferred) * 1e3
        assert final.found.all(), "the benchmark clip lost the face"
        figures["faces_found"] = int(raw.found.sum())

        # MediaPipe alone on the same decoded frames (its latency excludes decoding).
        python = mediapipe_python()
        if python is not None:
            reference = run_referee(decoded(clip), "video", work / "referee", python)
            figures["mediapipe_video_fps"] = len(reference["latency"]) / float(reference["latency"].sum())
            figures["ratio_vs_mediapipe"] = figures["second_fps"] / figures["mediapipe_video_fps"]

        # Jitter on a still face, per parameter group.
        write_folder(work / "still", [still_frame(i) for i in range(args.still)])
        still = pipeline.run(open_source(work / "still", fps=30.0))
        smoothed = still.processed()
        figures["jitter"] = {name: {"raw": jitter(getattr(still, name)), "smoothed": jitter(getattr(smoothed, name))}
                             for name in ("expression", "jaw", "eyelids", "gaze", "emotion_probs", "intensity")}

    if args.long:
        source = GeneratedSource(args.long)
        began = time.perf_counter()
        long_raw = pipeline.run(source)  # type: ignore[arg-type]
        long_raw.processed()
        figures["long_fps"] = args.long / (time.perf_counter() - began)
        figures["long_rss_mb"] = source.samples
        figures["long_faces_found"] = int(long_raw.found.sum())

    print(f"end to end, {args.frames} frames 640x480 MJPG at 30 fps (decode, tracking, encoder, gaps, One-Euro):")
    print(f"  first run  {figures['first_fps']:6.1f} frames/s   second run {figures['second_fps']:6.1f} frames/s"
          f"   (target >= 30; models loaded once in {figures['model_load_s']:.2f} s; "
          f"gaps + smoothing {figures['second_postprocess_ms']:.1f} ms)")
    if "mediapipe_video_fps" in figures:
        print(f"  MediaPipe FaceLandmarker VIDEO mode alone (no decode): {figures['mediapipe_video_fps']:6.1f} "
              f"frames/s; throughput ours end to end / MediaPipe = {figures['ratio_vs_mediapipe']:.2f} "
              f"({1e3 / figures['second_fps']:.1f} vs {1e3 / figures['mediapipe_video_fps']:.1f} ms a frame)")
    else:
        print("  mediapipe not importable (.venv-mediapipe missing): ratio skipped")
    print(f"jitter on a still face ({args.still} frames), mean |frame-to-frame change|:")
    for name, pair in figures["jitter"].items():
        factor = f"{pair['raw'] / pair['smoothed']:.1f}x less" if pair["smoothed"] > 0 else "both zero" \
            if pair["raw"] == 0 else "all removed"
        print(f"  {name:<14} raw {pair['raw']:.5f}   smoothed {pair['smoothed']:.5f}   ({factor})")
    if args.long:
        samples = figures["long_rss_mb"]
        print(f"memory over {args.long} generated frames ({figures['long_fps']:.1f} frames/s, "
              f"face in {figures['long_faces_found']}): resident MB at frame")
        print("  " + "  ".join(f"{i}:{mb:.0f}" for i, mb in samples))
        after_warmup = [mb for i, mb in samples if i >= 1000]
        print(f"  growth from frame 1000 to the end: {after_warmup[-1] - after_warmup[0]:+.1f} MB")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
