"""Benchmark the Ray batch (issue 15): N Ray workers against one plain process, same inputs, side by side.

Generates --clips 640x480 MJPG clips of --frames frames (the astronaut moving, tests/sequence_fixtures),
then processes them all, alternating for --repeats rounds:
* plain: `run_batch(plain=True)`, one ordinary process, the same `Worker` (models loaded once, inputs
  one after another): the best a single `python -m inference` process can do;
* ray: `run_batch(workers=N)` on a local Ray with N CPUs. Ray's own start (`ray.init`, a few seconds
  once per batch) is timed apart and shown; worker start and model loading are inside both timings.
Prints frames/s of each, the ratio with and without Ray's start, CPU time per frame and cores kept
busy (Ray: the workers' own CPU time per input, from the summary), the 1-minute load average
before and after each run (this VM is shared), and checks that both wrote identical results.
Target: ratio >= 1.7 with 2 workers on 2 cores. A script, not a timed test. Usage:
    .venv/bin/python tools/bench_batch.py [--clips 8] [--frames 200] [--workers 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def load() -> float:
    return os.getloadavg()[0]


def cpu_seconds() -> float:
    """User plus system time of this process and all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def same_results(a: Path, b: Path, names: list[str]) -> bool:
    for name in names:
        with np.load(a / f"{name}.npz") as first, np.load(b / f"{name}.npz") as second:
            if sorted(first.files) != sorted(second.files):
                return False
            if not all(np.array_equal(first[key], second[key]) for key in first.files):
                return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    import ray
    from sequence_fixtures import moving_frame, write_video

    from inference.batch.driver import run_batch

    work = Path(tempfile.mkdtemp(prefix="fields-bench-batch-"))
    try:
        return bench(args, work, ray, run_batch, moving_frame, write_video)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(args, work, ray, run_batch, moving_frame, write_video) -> int:  # type: ignore[no-untyped-def]
    paths = [str(write_video(work / f"clip{k}.avi", (moving_frame(i, args.frames, seed=k)
                                                      for i in range(args.frames)))) for k in range(args.clips)]
    total = args.clips * args.frames
    print(f"{args.clips} clips x {args.frames} frames (640x480 MJPG) = {total} frames; {os.cpu_count()} cores; "
          f"{args.workers} Ray workers")
    plain_s: list[float] = []
    ray_s: list[float] = []
    init_s: list[float] = []
    cpu = {"plain": 0.0, "ray": 0.0}  # CPU seconds spent on the inputs, all rounds
    for round_ in range(args.repeats):
        before = load()
        began, cpu_began = time.perf_counter(), cpu_seconds()
        plain = run_batch(paths, work / f"plain{round_}", plain=True)
        plain_s.append(time.perf_counter() - began)
        cpu["plain"] += cpu_seconds() - cpu_began
        print(f"  round {round_ + 1} plain: {plain_s[-1]:6.1f} s  {total / plain_s[-1]:6.1f} frames/s  "
              f"(load {before:.2f} -> {load():.2f})", flush=True)

        before = load()
        began = time.perf_counter()
        ray.init(address="local", num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
        init_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        on_ray = run_batch(paths, work / f"ray{round_}", workers=args.workers)
        ray_s.append(time.perf_counter() - began)
        ray.shutdown()
        cpu["ray"] += sum(record["cpu_seconds"] for record in on_ray["results"])
        print(f"  round {round_ + 1} ray:   {ray_s[-1]:6.1f} s  {total / ray_s[-1]:6.1f} frames/s  "
              f"+ ray.init {init_s[-1]:.1f} s  (load {before:.2f} -> {load():.2f})", flush=True)
        assert plain["done"] == on_ray["done"] == args.clips, (plain, on_ray)
        assert same_results(work / f"plain{round_}", work / f"ray{round_}", [Path(p).stem for p in paths])

    plain_m, ray_m, init_m = (statistics.median(v) for v in (plain_s, ray_s, init_s))
    print(f"\n{'':28}{'1 process':>12}{f'{args.workers} Ray workers':>18}")
    print(f"{'seconds (median)':28}{plain_m:12.1f}{ray_m:18.1f}")
    print(f"{'frames/s':28}{total / plain_m:12.1f}{total / ray_m:18.1f}")
    print(f"{'ratio, Ray started':28}{'1.00x':>12}{f'{plain_m / ray_m:.2f}x':>18}")
    print(f"{'ratio, with ray.init':28}{'1.00x':>12}{f'{plain_m / (ray_m + init_m):.2f}x':>18}"
          f"   (ray.init {init_m:.1f} s)")
    runs = total * args.repeats
    print(f"{'CPU ms per frame':28}{1000 * cpu['plain'] / runs:12.1f}{1000 * cpu['ray'] / runs:18.1f}")
    print(f"{'cores busy (CPU s / wall s)':28}{cpu['plain'] / sum(plain_s):12.2f}{cpu['ray'] / sum(ray_s):18.2f}")
    print(f"results identical: yes; load average now {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
