"""Benchmark "Apply to sequence" in real Blender: bulk keying, and a clip to keyed animation.

1. Keying: 1000 frames x 60 custom properties on a fresh object through `apply.key_channels`
   (action, slot, channelbag, 60 F-curves: add + foreach_set + one update each). Target < 0.5 s.
2. End to end: a 640x480 MJPG clip of --frames frames (the astronaut moving, tests/sequence_fixtures)
   to keyed animation on the default head, through the operator as the button runs it (EXEC,
   whole run: decode, tracking perception, encoder, gaps, One-Euro, per-frame plans, keying).
   Sessions are created by a warm-up on a short clip first (reported); the timed run has an empty
   cache. Target >= 30 frames/s. Also split into inference vs finish (plan + keying), and the
   re-apply from the cache. MediaPipe's own FaceLandmarker in VIDEO mode alone on the same decoded
   frames (tools/mediapipe_referee.py through `.venv-mediapipe`) gives the baseline ratio.
A script, not a timed test: this shared 2-core VM varies. Development tool: it imports bpy.

    .venv/bin/python tools/bench_apply_sequence.py [--frames 300] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tools"))
from bench_sequence import decoded  # noqa: E402
from checkout_blender import MODULE, enable_checkout, use_throwaway_user_folder  # noqa: E402

use_throwaway_user_folder("fields-bench-")
import bpy  # noqa: E402


def enable() -> None:
    enable_checkout(bpy)


def bench_keying(frames: int = 1000, channels: int = 60, runs: int = 5) -> dict[str, float]:
    from inference.sequence.keyframes import fcurve_keys, scene_frames

    apply = importlib.import_module(MODULE + ".fields_addon.apply")
    values = np.random.default_rng(0).random((frames, channels), dtype=np.float32)
    columns = [(f"fields_w_bench{c}", 0) for c in range(channels)]
    times, replace = [], []
    for _ in range(runs):
        mesh = bpy.data.meshes.new("bench")
        obj = bpy.data.objects.new("bench", mesh)
        bpy.context.scene.collection.objects.link(obj)
        for prop, _index in columns:
            obj[prop] = 0.0
        began = time.perf_counter()
        keys = fcurve_keys(scene_frames(np.arange(frames), 24.0, 1.0), values, [p for p, _ in columns])
        apply.key_channels(obj, columns, keys, 1.0, float(frames))
        times.append(time.perf_counter() - began)
        began = time.perf_counter()  # again: every key is in the range, read back and replaced
        apply.key_channels(obj, columns, keys, 1.0, float(frames))
        replace.append(time.perf_counter() - began)
        bpy.data.objects.remove(obj)
    return {"keying_s": statistics.median(times), "keying_min_s": min(times),
            "rekeying_s": statistics.median(replace)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    from perception_fixtures import mediapipe_python, run_referee
    from sequence_fixtures import moving_frame, write_video

    enable()
    figures: dict[str, Any] = {"frames": args.frames, "blender": bpy.app.version_string}
    figures.update(bench_keying())

    sequence = importlib.import_module(MODULE + ".fields_addon.sequence")
    common = importlib.import_module(MODULE + ".fields_addon.common")
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        clip = write_video(work / "clip.avi", (moving_frame(i, args.frames) for i in range(args.frames)), fps=30.0)
        warm = write_video(work / "warm.avi", (moving_frame(i, 10) for i in range(10)), fps=30.0)
        enable()
        bpy.context.scene.render.fps = 30
        bpy.ops.fields.add_head()
        head = bpy.context.active_object
        settings = bpy.context.scene.fields
        settings.seq_source = "VIDEO"
        cache = work / "cache"
        common.cache_dir = lambda: cache  # a fresh cache: the timed run must infer

        settings.seq_filepath = str(warm)
        began = time.perf_counter()
        assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
        figures["warmup_10_frames_s"] = time.perf_counter() - began  # sessions created here

        settings.seq_filepath = str(clip)
        began = time.perf_counter()
        assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
        total = time.perf_counter() - began
        figures["end_to_end_fps"] = args.frames / total
        figures["end_to_end_s"] = total
        began = time.perf_counter()
        assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
        figures["reapply_from_cache_s"] = time.perf_counter() - began

        # The same run split, through the operator's own parts (new cache again).
        common.cache_dir = lambda: work / "cache2"
        run = sequence.SequenceRun(bpy.context)
        began = time.perf_counter()
        while not run.step(0.25):
            pass
        figures["inference_s"] = time.perf_counter() - began
        began = time.perf_counter()
        run.finish(bpy.context)
        figures["finish_s"] = time.perf_counter() - began  # gaps, smoothing, per-frame plans, keying
        curves = head.animation_data.action
        figures["keyed_channels"] = len([k for k in head.keys() if k.startswith("fields_w_")])
        assert curves is not None

        python = mediapipe_python()
        if python is not None:
            reference = run_referee(decoded(clip), "video", work / "referee", python)
            figures["mediapipe_video_fps"] = len(reference["latency"]) / float(reference["latency"].sum())
            figures["ratio_vs_mediapipe"] = figures["end_to_end_fps"] / figures["mediapipe_video_fps"]

    print(f"Blender {figures['blender']}")
    print(f"keying 1000 frames x 60 values: {figures['keying_s'] * 1e3:.1f} ms median "
          f"(min {figures['keying_min_s'] * 1e3:.1f}; target < 500 ms); re-keying over them "
          f"{figures['rekeying_s'] * 1e3:.1f} ms")
    print(f"end to end, {args.frames} frames 640x480 MJPG -> keyed default head: {figures['end_to_end_fps']:.1f} "
          f"frames/s ({figures['end_to_end_s']:.2f} s; target >= 30); warm-up with sessions "
          f"{figures['warmup_10_frames_s']:.2f} s")
    print(f"  split: inference {figures['inference_s']:.2f} s, finish (gaps, One-Euro, plans, keying) "
          f"{figures['finish_s'] * 1e3:.0f} ms; re-apply from the cache {figures['reapply_from_cache_s'] * 1e3:.0f} ms")
    if "mediapipe_video_fps" in figures:
        print(f"  MediaPipe FaceLandmarker VIDEO mode alone (no decode, no keying): "
              f"{figures['mediapipe_video_fps']:.1f} frames/s; ours end to end / MediaPipe = "
              f"{figures['ratio_vs_mediapipe']:.2f}")
    else:
        print("  mediapipe not importable (.venv-mediapipe missing): ratio skipped")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
