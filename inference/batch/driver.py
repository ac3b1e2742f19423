"""One batch from start to summary: plan, skip what is finished, run the rest, write the summary.

`run_batch` plans the inputs (`inputs.plan`: keys by content hash, unusable inputs failed by
name), drops those an earlier run finished with the same key before Ray is even imported, runs
the rest on Ray (`run.run_on_ray`) or, with `plain=True`, in this one process with the same
`Worker` (the benchmark's baseline), and writes `DIR/batch-summary.json` atomically: every input's
outcome (`done`, `skipped`, `failed`, or `not run` after an interruption), its time and frames.
An interruption (Ctrl-C) still writes the summary, then propagates. Must not import bpy or Ray.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..files import write_atomic
from .inputs import SUMMARY, BatchInput, BatchSettings, finished_record, plan, sweep_temporaries
from .run import Progress, failed_record


def run_batch(paths: list[str], out: str | Path, settings: BatchSettings | None = None, workers: int | None = None,
              address: str | None = None, report: Callable[[Progress], None] | None = None,
              plain: bool = False, announce: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Process every input into `out`; the summary (also written to `out/batch-summary.json`).
    `workers` None: this machine's cores, or the cluster's CPUs with `address`. `announce(record)`
    is called as each input finishes, skipped or failed (the command line names failures at once)."""
    settings = settings or BatchSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    items = plan(paths, out, settings)
    records: dict[str, dict[str, Any]] = {}
    progress = Progress(inputs_total=len(items), frames_total=sum(item.frames for item in items))
    finished_frames = 0

    def done(item: BatchInput, record: dict[str, Any]) -> None:
        nonlocal finished_frames
        records[item.name] = record
        progress.inputs_done += 1
        progress.failed += record["status"] == "failed"
        frames = record.get("frames", 0) if record["status"] != "failed" else item.frames
        finished_frames += frames
        if record["status"] == "done":
            progress.frames_run += frames
        if announce is not None:
            announce(record)

    def show(progress: Progress) -> None:
        progress.frames_done = finished_frames + sum(state["frames"] for state in progress.workers)
        if report is not None:
            report(progress)

    todo = []
    for item in items:
        earlier = finished_record(item, out)
        if item.error is not None:
            done(item, failed_record(item, item.error))
        elif earlier is not None:
            done(item, {**earlier, "input": item.path, "status": "skipped", "seconds_earlier": earlier["seconds"],
                        "seconds": 0.0})
        else:
            sweep_temporaries(item, out)
            todo.append(item)
    show(progress)
    ray_used = False
    try:
        if todo and plain:
            from .work import Worker

            worker = Worker(settings, str(out))
            for item in todo:
                done(item, worker.process(item))
                show(progress)
        elif todo:
            from .run import run_on_ray

            ray_used = True
            workers = run_on_ray(todo, settings, out, workers, address, progress, show, done)
    finally:
        progress.workers = []
        progress.finished = True
        show(progress)
        summary = {
            "out": str(out), "inputs": len(items),
            **{status: sum(r["status"] == status for r in records.values())
               for status in ("done", "skipped", "failed")},
            "not_run": len(items) - len(records), "frames": progress.frames_run,
            "seconds": round(time.perf_counter() - began, 3),
            "workers": 1 if plain else (workers if ray_used else None),
            "ray": None if not ray_used else (address or "local"), "settings": asdict(settings),
            "results": [records.get(item.name) or {"input": item.path, "name": item.name, "kind": item.kind,
                                                   "status": "not run", "seconds": 0.0} for item in items]}
        write_atomic(out / SUMMARY, json.dumps(summary, indent=1).encode())
    return summary
