"""The batch's plan: which inputs there are, what each is called in DIR, and which are already done.

Runs in the driver before Ray starts. Each input gets a kind (`video`, `folder`, `photo`, or
`livelink` for a Live Link Face CSV, see `input_kind`), a name unique
in DIR, a frame count for progress, and a key: the sha256 of its content (a file's bytes, a
folder's image names and bytes in natural order) together with every setting that changes the
result and the encoder's checksum. An input whose state record in `DIR/.fields-batch/` holds the
same key, and whose result files are all there, is finished and is skipped; anything else is run
again from scratch. Inputs that cannot be used at all (missing, not a video) fail here, by name.
Must not import bpy or Ray.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FieldsError, SequenceError
from ..files import write_atomic
from ..sequence.smoothing import OneEuroSettings

STATE_DIR = ".fields-batch"  # per-input state records, written after the input's results
SUMMARY = "batch-summary.json"
KEY_VERSION = 1  # bump when a change in the code changes what an input's result holds
CHUNK = 1 << 20


@dataclass(frozen=True)
class BatchSettings:
    """Everything that shapes a result; the defaults are the single-input command line's."""

    face: int = 0
    step: int = 1
    fps: float | None = None
    gaps: str = "interpolate"
    smoothing: dict[str, float] | None = field(default_factory=lambda: asdict(OneEuroSettings()))  # None: off
    max_faces: int | None = None  # photos
    csv: bool = False  # sequences: also <name>.csv
    json: bool = False  # sequences: also <name>.json (per-frame values, as `--json` prints)
    neutral: str | None = None  # `--neutral`: a photo of the actor at rest, START:END or auto (per sequence)
    neutral_sha256: str | None = None  # the neutral photo's content: another photo runs the batch again
    min_confidence: float = 0.0  # sequences: frames whose face score is lower become gaps


@dataclass
class BatchInput:
    path: str  # as given on the command line (results record it as given)
    kind: str
    name: str = ""
    key: str = ""
    frames: int = 1  # for progress: a photo is one frame; a video's count may be approximate
    outputs: list[str] = field(default_factory=list)  # file names in DIR
    error: str | None = None  # set when the input is unusable before any work

    def state_path(self, out: Path) -> Path:
        return out / STATE_DIR / f"{self.name}.json"


def input_kind(path: str) -> str:
    """`folder`, `video` (by suffix), `livelink` (.csv) or `photo` (anything else: the photo reader
    names the file if it is not an image). A CSV is read as a take (`sequence.livelink`) at its
    timecode rate (60) unless `--fps` says otherwise."""
    from ..sequence.frames import VIDEO_SUFFIXES

    p = Path(path)
    if p.is_dir():
        return "folder"
    suffix = p.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return "livelink" if suffix == ".csv" else "photo"


def content_digest(path: str, kind: str) -> str:
    """sha256 of what the input holds: a file's bytes, or a folder's images (name and bytes, in
    the order the sequence reads them). Renaming or moving an input keeps its key; editing it does not."""
    digest = hashlib.sha256()
    if kind == "folder":
        from ..sequence.frames import FolderSource

        files = FolderSource(path).files
    else:
        files = [Path(path)]
    for file in files:
        if kind == "folder":
            digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as stream:
            while block := stream.read(CHUNK):
                digest.update(block)
    return digest.hexdigest()


def encoder_sha256() -> str:
    from ..expression.encoder import MODEL_FILE

    return str(json.loads(Path(MODEL_FILE).with_suffix(".json").read_text())["onnx_sha256"])


def unique_names(paths: list[str]) -> list[str]:
    """Each input's stem; stems shared by several inputs get 8 hex digits of the resolved path,
    so the names do not depend on the order the inputs were given in."""
    stems = [Path(os.path.normpath(p)).stem or "input" for p in paths]
    clashes = {stem for stem in stems if stems.count(stem) > 1 or stem == Path(SUMMARY).stem}
    return [f"{stem}-{hashlib.sha256(str(Path(p).resolve()).encode()).hexdigest()[:8]}" if stem in clashes else stem
            for p, stem in zip(paths, stems, strict=True)]


def plan(paths: list[str], out: Path, settings: BatchSettings) -> list[BatchInput]:
    """One `BatchInput` per path, in order, with its key and outputs; unusable ones carry `error`."""
    encoder = encoder_sha256()
    items = []
    for path, name in zip(paths, unique_names(paths), strict=True):
        kind = input_kind(path)
        item = BatchInput(path=path, kind=kind, name=name)
        items.append(item)
        if kind == "photo":
            item.outputs = [f"{name}.json"]
        else:
            item.outputs = [f"{name}.npz"] + [f"{name}.{ext}" for ext, on in (("csv", settings.csv),
                                                                              ("json", settings.json)) if on]
        try:
            if kind == "livelink":
                from ..sequence.livelink import read_take

                # Reading checks the whole file now (one message naming the line, no Ray); rows size the bar.
                item.frames = len(read_take(path).times)
            elif kind != "photo":
                from ..sequence.frames import open_source

                # Opening checks the source now (one message, no Ray) and sizes the progress bar.
                source = open_source(path, 0, None, settings.step, settings.fps)
                item.frames = source.total or 0
            elif not Path(path).is_file():
                raise SequenceError(path, "does not exist." if not Path(path).exists() else "is not a file.",
                                    kind="Photo")
            # Which extra files are written is not in the key: a missing one already makes the input unfinished.
            shaping = {k: v for k, v in asdict(settings).items() if k not in ("csv", "json")}
            key = {"version": KEY_VERSION, "kind": kind, "content": content_digest(path, kind),
                   "settings": shaping, "encoder_sha256": encoder}
            item.key = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        except FieldsError as error:
            item.error = str(error)
        except OSError as error:
            item.error = f"Input '{path}' cannot be read ({error.strerror or error})."
        if item.error is not None:
            item.frames = 0
    return items


def finished_record(item: BatchInput, out: Path) -> dict[str, Any] | None:
    """The state record of an earlier run that finished this input with the same key, or None."""
    if item.error is not None:
        return None
    try:
        record = json.loads(item.state_path(out).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != item.key or record.get("status") != "done":
        return None
    if not all((out / name).is_file() for name in item.outputs):
        return None
    return record


def sweep_temporaries(item: BatchInput, out: Path) -> None:
    """Remove temporaries an interrupted or killed run left beside this input's results
    (`files.write_with` names them `.<file>.<random>.tmp`); the results themselves are never partial."""
    for name in [*item.outputs, f"{STATE_DIR}/{item.name}.json"]:
        target = out / name
        for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
            leftover.unlink(missing_ok=True)


def write_record(item: BatchInput, out: Path, record: dict[str, Any]) -> None:
    """Written after the input's results, so a record always vouches for complete files."""
    write_atomic(item.state_path(out), json.dumps(record, indent=1).encode())
