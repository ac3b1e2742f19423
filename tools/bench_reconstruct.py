"""Benchmark "Reconstruct" on a 12-megapixel photo, from the button to an updated viewport state.

The astronaut photo is upscaled to 3000x3000 and padded to 4000x3000 (12 MP, written as a JPEG, so
decoding a real 12 MP file is part of the cost), and a mirrored copy alternates with it so every
run changes the head. Each run calls the operator (what the panel's button does) and then
evaluates the depsgraph (drivers, shape keys, armature: what the viewport draws). The first call,
which creates the ONNX Runtime sessions, is reported separately from the median of the rest.
Development tool: it imports bpy, which only fields_addon/ does at run time.

    .venv/bin/python tools/bench_reconstruct.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from checkout_blender import enable_checkout, use_throwaway_user_folder  # noqa: E402

use_throwaway_user_folder("fields-bench-")

import bpy  # noqa: E402


def photos(folder: Path) -> list[Path]:
    image = cv2.imread(str(ROOT / "inference" / "samples" / "astronaut.jpg"))
    big = cv2.resize(image, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, 0, 0, 500, 500, cv2.BORDER_REPLICATE)
    paths = []
    for name, pixels in (("astronaut_12mp.jpg", big), ("astronaut_12mp_mirrored.jpg", big[:, ::-1])):
        paths.append(folder / name)
        cv2.imwrite(str(paths[-1]), np.ascontiguousarray(pixels), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed calls after the first")
    args = parser.parse_args(argv)
    enable_checkout(bpy)
    bpy.ops.fields.add_head()
    settings = bpy.context.scene.fields
    with tempfile.TemporaryDirectory() as folder:
        paths = photos(Path(folder))
        shape = cv2.imread(str(paths[0])).shape
        times = []
        for run in range(args.runs + 1):
            settings.filepath = str(paths[run % 2])
            start = time.perf_counter()
            bpy.ops.fields.reconstruct_photo()
            bpy.context.evaluated_depsgraph_get().update()
            times.append(time.perf_counter() - start)
    rest = times[1:]
    print(f"photo {shape[1]}x{shape[0]} ({shape[0] * shape[1] / 1e6:.0f} MP), {settings.result_providers}, "
          f"emotion read: {settings.result_emotion}")
    print(f"first call (sessions created): {times[0] * 1000:.0f} ms")
    print(f"after: median {statistics.median(rest) * 1000:.0f} ms, min {min(rest) * 1000:.0f} ms, "
          f"max {max(rest) * 1000:.0f} ms over {len(rest)} calls (target < 500 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
