"""Command line: `python -m inference PHOTO... [--photos FOLDER]`, `python -m inference VIDEO_OR_FOLDER --out p.npz`,
or `python -m inference batch INPUTS... --out DIR` (many inputs on Ray: `inference/batch/`).

For pipelines and render farms. Photo mode prints, per photo, one JSON object on one line (JSON
Lines; the models load once for all of them) holding `faces` (each `bbox`,
`score`, `landmarks_px` 478x3, `blendshapes` name -> score, `matrix` 4x4, and from the FIELDS
encoder `expression` name -> value, `jaw`, `eyelids`, `gaze`, `emotion` {`label`, `probs`,
`intensity`}), `model` (the encoder's name, sha256 and face model), `providers`, and the image's
`width`/`height`. `--photos FOLDER` adds every image of a folder, in natural order. With several
photos, one that cannot be read prints `{"image": ..., "error": ...}` in its place, the rest go
on, and the exit status is 1. A folder or a video file (by suffix) runs the sequence pipeline (video-mode
tracking, encoder, gap filling, One-Euro smoothing): `--out` writes the per-frame arrays as an
.npz (`inference.sequence.load_result` reads it), stdout gets a JSON summary, or with `--json`
the per-frame values too (`--out take.csv` writes a Live Link Face CSV instead, by the suffix; a
Live Link Face `.csv` input is read as a take, resampled at `--fps` (default: its timecode rate) and
processed like a video); a progress bar goes to stderr when it is a terminal (or with
`--progress`). `--neutral PHOTO|START:END|auto` reads every expression relative to the actor at rest
(`expression.calibration`), for a CSV take too; `--min-confidence` turns frames with a weak face score
into gaps (a CSV row has no score and counts as confident); the head pose and the per-frame face score
are in the output. Exit status 0 on success (also when no face is found), 2 on a usage error, 1 with
a one-line message naming the file on any other failure. Must not import bpy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from .errors import FieldsError
from .payloads import add_neutral_options, add_sequence_options, photo_payload, smoothing_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inference",
                                     description="FIELDS face perception on a photo, a video or a folder of images.")
    parser.add_argument("sources", metavar="PHOTO|VIDEO|FOLDER", nargs="*",
                        help="image files (JPEG, PNG, TIFF, WebP, BMP...), or one video file or folder of images")
    parser.add_argument("--photos", metavar="FOLDER",
                        help="also read every image in this folder as a separate photo (natural order)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (photo: the default; sequence: adds per-frame values)")
    parser.add_argument("--max-faces", type=int, default=None,
                        help="photo: keep at most this many faces, largest first")
    parser.add_argument("--indent", type=int, default=None, help="indent the JSON for reading")
    parser.add_argument("--perception-only", action="store_true", help="photo: skip the expression/emotion encoder")
    parser.add_argument("--match-shape", action="store_true",
                        help="photo: also fit the ICT head's identity to each face (adds `shape`: identity and "
                        "the landmark residual in mm before and after)")
    sequence = parser.add_argument_group("sequences (video file, image folder or Live Link Face .csv)")
    add_neutral_options(parser, sequence)
    sequence.add_argument("--out", help="write the per-frame parameters to this .npz, or to this .csv as a "
                          "Live Link Face take (chosen by the suffix)")
    sequence.add_argument("--start", type=int, default=0, help="first source frame, counted from 0 (default 0)")
    sequence.add_argument("--end", type=int, default=None, help="last source frame, inclusive (default: the last)")
    add_sequence_options(sequence)
    sequence.add_argument("--timecode-fps", type=int, default=None,
                          help="Live Link Face CSV: the rate its timecodes count frames at, in and out "
                          "(default 60, the app's)")
    sequence.add_argument("--cache", metavar="DIR", help="reuse or store the raw per-frame result in this folder")
    sequence.add_argument("--progress", action="store_true", help="progress lines on stderr even when not a terminal")
    sequence.add_argument("--quiet", action="store_true", help="no progress and no warnings on stderr")
    return parser


def photo_paths(args: argparse.Namespace) -> list[str]:
    """The photos named, then the images of --photos in natural order."""
    paths = list(args.sources)
    if args.photos:
        from .sequence.frames import FolderSource

        paths += [str(path) for path in FolderSource(args.photos).files]
    return paths


def photo_main(args: argparse.Namespace, paths: list[str]) -> int:
    """One JSON line per photo; a failed photo fails alone when there are several."""
    from .perception.pipeline import Perception

    perception = Perception(max_faces=args.max_faces)
    encoder = None
    if not args.perception_only:
        from .expression.encoder import ExpressionEncoder

        encoder = ExpressionEncoder()
    shape_of = shape_matcher(encoder) if args.match_shape and encoder is not None else None
    neutral = None
    if args.neutral:
        from .expression.calibration import parse_neutral
        from .payloads import photo_neutral

        spec = parse_neutral(args.neutral)
        if spec.kind != "photo" or encoder is None:
            raise UsageError("--neutral for photos is a photo of the actor at rest (and needs the encoder)")
        neutral = photo_neutral(perception, encoder, spec.photo)
    failed = 0
    for path in paths:
        try:
            payload = photo_payload(perception, encoder, path, shape_of, neutral)
        except FieldsError as error:
            if len(paths) == 1:
                raise
            failed += 1
            print(json.dumps({"image": path, "error": str(error)}), flush=True)
            continue
        print(json.dumps(payload, indent=args.indent), flush=True)
    return 1 if failed else 0


def shape_matcher(encoder: Any) -> Any:
    """(face, expression) -> ShapeFit on the ICT head, the expression held fixed as Reconstruct shows it."""
    from .expression.features import pose_normalised
    from .head.default_head import HEAD_FILE, arkit_mapping
    from .head.face_model import load_face_model
    from .head.ict import ICT_EMBEDDING_FILE, ICT_HEAD_FILE
    from .head.shape_fit import LandmarkEmbedding, match_shape
    from .retarget.plan import source_parameters

    source = arkit_mapping(load_face_model(HEAD_FILE.with_name(encoder.face_model.file)))
    model = load_face_model(ICT_HEAD_FILE)
    target = arkit_mapping(model)
    embedding, ids = LandmarkEmbedding.load(ICT_EMBEDDING_FILE, model)

    def fit(face: Any, expression: Any) -> Any:
        params = target.to_params(source.from_params(source_parameters(expression, encoder.expression_names)))
        observed = pose_normalised(face.metric_landmarks, face.matrix) / 100.0
        return match_shape(model, embedding, observed, params.expression, params.pose, params.eyelids, ids)

    return fit


class Progress:
    """A one-line bar redrawn in place on a terminal; whole lines every 10% otherwise."""

    def __init__(self, stream: Any, in_place: bool) -> None:
        self.stream, self.in_place = stream, in_place
        self.last_draw = 0.0
        self.last_decile = -1

    def __call__(self, job: Any) -> None:
        now = time.monotonic()
        total = job.total
        fraction = job.done / total if total else None
        if self.in_place:
            if now - self.last_draw < 0.1 and not job.finished:
                return
            self.last_draw = now
        else:
            decile = int(fraction * 10) if fraction is not None else job.done // 500
            if decile == self.last_decile and not job.finished:
                return
            self.last_decile = decile
        width = 30
        bar = "#" * int(width * fraction) + "-" * (width - int(width * fraction)) if fraction is not None else ""
        eta = f" eta {job.eta_s:4.0f}s" if job.eta_s is not None and not job.finished else ""
        counts = f"{job.done}/{total}" if total else f"{job.done}"
        line = f"[{bar}] {counts} frames {job.fps:5.1f} fps{eta}"
        if self.in_place:
            self.stream.write("\r" + line + ("\n" if job.finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


class UsageError(Exception):
    """A combination of options that makes no sense; reported as argparse reports its own."""


def sequence_main(args: argparse.Namespace, path: str) -> dict[str, Any]:
    from .expression.calibration import parse_neutral
    from .payloads import photo_neutral, read_livelink, sequence_neutral
    from .sequence.frames import open_source
    from .sequence.livelink import DEFAULT_TIMECODE_FPS, write_result
    from .sequence.pipeline import SequencePipeline, save_result

    spec = parse_neutral(args.neutral) if args.neutral else None
    timecode_fps = args.timecode_fps or DEFAULT_TIMECODE_FPS
    smoothing = smoothing_settings(args.no_smoothing, args.min_cutoff, args.beta, args.d_cutoff)
    if is_livelink_path(path):
        from .expression.encoder import ExpressionEncoder

        encoder = ExpressionEncoder()
        raw = read_livelink(path, args.fps, timecode_fps, args.start, args.end, args.step, encoder=encoder)
    else:
        source = open_source(path, args.start, args.end, args.step, args.fps)
        pipeline = SequencePipeline(face=args.face)
        encoder = pipeline.encoder
        show = not args.quiet and (args.progress or sys.stderr.isatty())
        progress = Progress(sys.stderr, in_place=sys.stderr.isatty()) if show else None
        raw = pipeline.run(source, cache_dir=args.cache, progress=progress)
    if args.min_confidence > 0:
        raw = raw.confident(args.min_confidence)
    neutral = None
    if spec is not None:
        from .perception.pipeline import Perception

        neutral = sequence_neutral(spec, raw, f"'{path}'",
                                   lambda: photo_neutral(Perception(max_faces=1), encoder, spec.photo))
        raw = raw.calibrated(neutral, encoder)
    result = raw.processed(gaps=args.gaps, smoothing=smoothing)
    if not args.quiet:
        for message in raw.warnings:
            print(f"warning: {message}", file=sys.stderr)
        if raw.unreadable.any():
            print(f"warning: {int(raw.unreadable.sum())} unreadable frame(s) skipped, first: {raw.problems[0]}",
                  file=sys.stderr)
    if args.out and is_livelink_path(args.out):
        write_result(args.out, result, timecode_fps)
    elif args.out:
        save_result(result, args.out)
    payload = result.to_json() if args.json or not args.out else result.summary()
    if neutral is not None:
        payload["neutral"] = {"source": neutral.source}
    return {**payload, "out": args.out}


def is_livelink_path(path: str) -> bool:
    return path.lower().endswith(".csv")


def main(argv: list[str] | None = None) -> int:
    # FFmpeg prints its own complaint ("moov atom not found") before ours; the contract is one line.
    # OpenCV reads this when it first opens a video; a user's own setting wins.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "0")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["batch"]:  # a file really named "batch" is read as ./batch
        from .batch.cli import main as batch_main

        return batch_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.sources and not args.photos:
        parser.error("give a photo, a video or a folder of images (or --photos FOLDER)")
    try:
        from .sequence.frames import is_sequence_path

        if any(is_sequence_path(source) or is_livelink_path(source) for source in args.sources):
            if len(args.sources) > 1 or args.photos:
                parser.error("a video, an image folder or a CSV is read alone; use --photos FOLDER for separate "
                             "photos")
            if args.step < 1 or args.start < 0 or (args.end is not None and args.end < args.start):
                parser.error("--start must be >= 0, --end >= --start, --step >= 1")
            if not 0.0 <= args.min_confidence <= 1.0:
                parser.error("--min-confidence must be between 0 and 1")
            payload = sequence_main(args, args.sources[0])
        else:
            if args.out:
                parser.error("--out is for a video or a folder of images; a photo prints JSON")
            return photo_main(args, photo_paths(args))
    except UsageError as error:
        parser.error(str(error))
    except FieldsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # one line for the farm's log, whatever broke
        named = " ".join(args.sources) or args.photos
        print(f"error: '{named}' could not be processed: {type(error).__name__}: {error}".splitlines()[0],
              file=sys.stderr)
        return 1
    print(json.dumps(payload, indent=args.indent))
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
