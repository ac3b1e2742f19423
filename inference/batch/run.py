"""The batch on Ray: N worker actors, one input at a time each, progress polled from them.

Ray is imported here and only here, inside `run_on_ray`, so `inference` imports and runs without
it (the Blender add-on bundles `inference/` without Ray). Locally Ray starts a private instance
with N CPUs (`address="local"`, never someone else's cluster by accident); with an address it
joins that cluster and ships the `inference` package to it (`runtime_env` `py_modules`). Ray
supplies the fault tolerance: a worker process that dies is restarted by Ray, models loaded again,
and the input it was on is retried (`max_restarts`, `max_task_retries`). The dispatch loop is ours
and small: an idle actor takes the next input, so each input's outcome stays tied to its name
even when an actor is lost for good (Ray's `ActorPool` raises without saying which input failed).
Must not import bpy.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .inputs import BatchInput, BatchSettings

RESTARTS = 3  # a worker killed this many times in one batch is given up on
POLL_S = 0.5


@dataclass
class Progress:
    """The whole batch as the driver sees it, passed to the progress callback."""

    inputs_total: int
    frames_total: int
    inputs_done: int = 0  # finished, skipped or failed
    frames_done: int = 0  # in finished inputs plus the frames of inputs being processed
    failed: int = 0
    started: float = field(default_factory=time.monotonic)
    frames_run: int = 0  # frames processed in this run (not skipped): the rate's numerator
    workers: list[dict[str, Any]] = field(default_factory=list)  # each actor's latest `progress()`
    finished: bool = False

    @property
    def fps(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.frames_run / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        return max(self.frames_total - self.frames_done, 0) / self.fps if self.fps > 0 else None


def failed_record(item: BatchInput, error: str) -> dict[str, Any]:
    return {"input": item.path, "name": item.name, "kind": item.kind, "key": item.key, "outputs": item.outputs,
            "status": "failed", "error": error, "seconds": 0.0}


def start_ray(workers: int, address: str | None) -> Any:
    """Connect to `address`, or start a private local Ray with `workers` CPUs; None if already connected."""
    import ray

    if ray.is_initialized():  # e.g. a test session or a notebook that set Ray up itself
        return None
    if address is None:
        # ERROR: a private local instance need not warn about cluster authentication on every run.
        return ray.init(address="local", num_cpus=workers, include_dashboard=False,
                        logging_level=logging.ERROR, log_to_driver=False)
    package = Path(__file__).resolve().parents[1]  # the `inference` folder, shipped whole to the cluster
    return ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                    runtime_env={"py_modules": [str(package)], "excludes": ["__pycache__"]})


def run_on_ray(items: list[BatchInput], settings: BatchSettings, out: Path, workers: int | None,
               address: str | None, progress: Progress, report: Callable[[Progress], None],
               done: Callable[[BatchInput, dict[str, Any]], None]) -> int:
    """Process `items` on Ray, calling `done(item, record)` as each finishes (in any order) and
    `report(progress)` about twice a second; the number of workers used (None: this machine's
    cores, or the cluster's CPUs). Shuts Ray down afterwards if it started it here."""
    import ray

    from .work import Worker

    if workers is None and address is None:
        workers = os.cpu_count() or 1
    started = start_ray(workers or 1, address)
    if workers is None:  # asked only now, so a batch with nothing to do never connects
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
    actors: list[Any] = []
    completed = False
    try:
        # Two concurrent calls per actor: `process` and the driver's `progress` polls.
        actor_class = ray.remote(Worker).options(num_cpus=1, max_restarts=RESTARTS, max_task_retries=RESTARTS,
                                                 max_concurrency=2)
        # Handles typed Any: Ray's stubs type an actor's methods as the plain class's.
        actors = [actor_class.remote(settings, str(out)) for _ in range(min(workers, len(items)))]
        queue = deque(items)
        idle = list(actors)
        pending: dict[Any, tuple[Any, BatchInput]] = {}
        polls: list[Any] = []
        polled = 0.0
        while queue or pending:
            while idle and queue:
                actor = idle.pop()
                item = queue.popleft()
                pending[actor.process.remote(item)] = (actor, item)
            if not pending:  # every actor lost for good: the rest cannot run
                for item in queue:
                    done(item, failed_record(item, f"Input '{item.path}' was not run: every worker was lost."))
                break
            # Back as soon as one input is done, so no worker idles while inputs wait (photos take ~0.1 s).
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            if ready:  # and any others that are done too
                ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
            for ref in ready:
                actor, item = pending.pop(ref)
                try:
                    record = ray.get(ref)
                    idle.append(actor)
                except ray.exceptions.RayActorError as error:  # died more often than Ray restarts it
                    record = failed_record(item, f"Input '{item.path}' was not finished: its worker died "
                                                 f"{RESTARTS + 1} times ({type(error).__name__}).")
                except ray.exceptions.RayError as error:
                    record = failed_record(item, f"Input '{item.path}' could not be processed: "
                                                 f"{type(error).__name__}.")
                    idle.append(actor)
                done(item, record)
            if time.monotonic() - polled >= POLL_S:
                # Collect the answers to the previous round's polls without waiting for them: a
                # worker still loading its models or being restarted just misses this round.
                answered = ray.wait(polls, num_returns=len(polls), timeout=0)[0] if polls else []
                states = []
                for ref in answered:
                    try:
                        states.append(ray.get(ref))
                    except ray.exceptions.RayError:
                        pass  # that worker died since; Ray restarts it
                if answered or not polls:
                    # A poll answered before its input finished would count those frames twice.
                    in_flight = {item.name for _, item in pending.values()}
                    progress.workers = [state for state in states if state["input"] in in_flight]
                polls = [actor.progress.remote() for actor in actors]
                polled = time.monotonic()
            report(progress)  # the display throttles itself
        completed = True
        return workers
    finally:
        if not completed:  # interrupted: stop the inputs in flight now (their temporaries are swept next run)
            for actor in actors:
                ray.kill(actor)
        if started is not None:
            ray.shutdown()
