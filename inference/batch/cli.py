"""`python -m inference batch INPUTS... --out DIR [--workers N] [--ray ADDRESS]`: the batch's command line.

Parses the options (the sequence options mean what they mean for one input, with the same
defaults), shows whole-batch progress on stderr (inputs and frames done, frames per second, ETA;
redrawn in place on a terminal, a line per finished input otherwise), prints each failed input's
message, then the summary's counts as one JSON line on stdout. Exit status 0 when every input is
done or skipped, 1 when any failed, 2 on a usage error, 130 when interrupted. Must not import bpy
or Ray (the driver imports Ray only when there is work for it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..payloads import add_neutral_options, add_sequence_options, smoothing_settings
from .inputs import BatchSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m inference batch",
        description="Many videos, image folders and photos at once on Ray (this machine, or a cluster with --ray).")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="video files, folders of images (each one sequence) and photos")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the results and batch-summary.json")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: this machine's cores, or the cluster's CPUs with --ray)")
    parser.add_argument("--ray", metavar="ADDRESS", default=None,
                        help="join this Ray cluster (e.g. 10.0.0.5:6379, or 'auto') instead of starting Ray here")
    parser.add_argument("--csv", action="store_true", help="sequences: also write <name>.csv (one row per frame)")
    parser.add_argument("--json", action="store_true", help="sequences: also write <name>.json (per-frame values)")
    parser.add_argument("--max-faces", type=int, default=None, help="photos: keep at most this many faces")
    add_sequence_options(parser)
    add_neutral_options(parser, parser)
    parser.add_argument("--progress", action="store_true", help="progress lines on stderr even when not a terminal")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


class ProgressLine:
    """Whole-batch progress: redrawn about ten times a second on a terminal; otherwise one line
    whenever an input finishes (a farm's log gets a line per input, not a stream of redraws)."""

    def __init__(self, stream: Any, in_place: bool) -> None:
        self.stream, self.in_place = stream, in_place
        self.last_draw = 0.0
        self.last_count = -1

    def __call__(self, progress: Any) -> None:
        now = time.monotonic()
        if self.in_place and now - self.last_draw < 0.1 and not progress.finished:
            return
        if not self.in_place and not progress.finished and progress.inputs_done in (
                self.last_count, progress.inputs_total):  # the last input's line is the final one
            return
        self.last_draw, self.last_count = now, progress.inputs_done
        remaining = progress.inputs_done < progress.inputs_total
        eta = f", eta {progress.eta_s:.0f}s" if progress.eta_s is not None and remaining else ""
        failed = f", {progress.failed} failed" if progress.failed else ""
        line = (f"{progress.inputs_done}/{progress.inputs_total} inputs, {progress.frames_done}/"
                f"{progress.frames_total} frames, {progress.fps:.1f} fps{eta}{failed}")
        if self.in_place:
            self.stream.write("\r" + line.ljust(78) + ("\n" if progress.finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.step < 1 or args.face < 0 or (args.workers is not None and args.workers < 1)
            or (args.fps is not None and args.fps <= 0) or (args.max_faces is not None and args.max_faces < 1)):
        parser.error("--step, --workers and --max-faces must be >= 1, --face >= 0, --fps > 0")
    if not 0.0 <= args.min_confidence <= 1.0:
        parser.error("--min-confidence must be between 0 and 1")
    neutral_sha256 = None
    if args.neutral:
        from ..expression.calibration import NeutralError, parse_neutral

        try:
            spec = parse_neutral(args.neutral)
            if spec.kind == "photo":  # its content is part of every result's key
                neutral_sha256 = hashlib.sha256(Path(spec.photo).read_bytes()).hexdigest()
        except NeutralError as error:
            parser.error(str(error))
        except OSError as error:
            parser.error(f"the neutral photo '{args.neutral}' cannot be read ({error.strerror or error})")
    smoothing = smoothing_settings(args.no_smoothing, args.min_cutoff, args.beta, args.d_cutoff)
    settings = BatchSettings(face=args.face, step=args.step, fps=args.fps, gaps=args.gaps,
                             smoothing=None if smoothing is None else asdict(smoothing), max_faces=args.max_faces,
                             csv=args.csv, json=args.json, neutral=args.neutral, neutral_sha256=neutral_sha256,
                             min_confidence=args.min_confidence)
    show = not args.quiet and (args.progress or sys.stderr.isatty())
    report = ProgressLine(sys.stderr, in_place=sys.stderr.isatty()) if show else None
    from .driver import run_batch

    def announce(record: dict[str, Any]) -> None:
        if record["status"] == "failed":  # at once, not at the end: a farm log shows it as it happens
            clear = "\r" + " " * 78 + "\r" if report is not None and report.in_place else ""
            print(f"{clear}failed: {record['error']}", file=sys.stderr, flush=True)

    try:
        summary = run_batch(args.inputs, Path(args.out), settings, workers=args.workers, address=args.ray,
                            report=report, announce=announce)
    except KeyboardInterrupt:
        print(f"interrupted: finished inputs are kept; run the same command again to resume "
              f"({Path(args.out) / 'batch-summary.json'})", file=sys.stderr)
        return 130
    except Exception as error:  # e.g. the cluster cannot be reached or the folder written: one line
        print(f"error: batch into '{args.out}' stopped: {type(error).__name__}: {error}".splitlines()[0],
              file=sys.stderr)
        return 1
    counts = {key: summary[key] for key in ("inputs", "done", "skipped", "failed", "frames", "seconds")}
    print(json.dumps({**counts, "summary": str(Path(args.out) / "batch-summary.json")}))
    return 1 if summary["failed"] else 0

