"""Model sessions kept for the Blender session: scratch state, never saved in a .blend.

Creating the ONNX Runtime sessions costs far more than running them, so Perception and the
encoder are created on the first Reconstruct and reused. A cache entry is keyed by the file and
its size and modification time, so a replaced file is loaded (and checksum-verified) again;
failures are not cached, so fixing a file and pressing Reconstruct again works. Heavy imports
happen on first use, never at enable time. Takes file paths, never a Blender context; must not
import from operators or panels.
"""

from __future__ import annotations

import os
from typing import Any

_cache: dict[str, tuple[Any, Any]] = {}


def _stamp(*paths: str | os.PathLike[str]) -> tuple:
    stamp: list[tuple[str, int | None, int | None]] = []
    for path in paths:
        try:
            info = os.stat(path)
            stamp.append((os.fspath(path), info.st_size, info.st_mtime_ns))
        except OSError:
            stamp.append((os.fspath(path), None, None))
    return tuple(stamp)


def _cached(name: str, stamp: tuple, make: Any) -> Any:
    entry = _cache.get(name)
    if entry is not None and entry[0] == stamp:
        return entry[1]
    value = make()
    _cache[name] = (stamp, value)
    return value


def perception() -> Any:
    from ..inference.errors import FileProblem
    from ..inference.perception.blendshapes import MODEL_FILE as BLENDSHAPES
    from ..inference.perception.detector import MODEL_FILE as DETECTOR
    from ..inference.perception.landmarks import MODEL_FILE as LANDMARKS
    from ..inference.perception.pipeline import Perception

    def make() -> Any:
        for path in (DETECTOR, LANDMARKS, BLENDSHAPES):
            if not os.path.isfile(path):
                raise FileProblem(path, "is missing: reinstall the add-on.", kind="Perception model")
        return Perception()

    return _cached("perception", _stamp(DETECTOR, LANDMARKS, BLENDSHAPES), make)


def encoder(path: str = "") -> Any:
    """The encoder at `path` (empty: the shipped one); raises EncoderFileError naming the file."""
    from pathlib import Path

    from ..inference.expression.encoder import MODEL_FILE, ExpressionEncoder

    onnx = Path(path) if path else MODEL_FILE
    return _cached("encoder", _stamp(onnx, onnx.with_suffix(".json")), lambda: ExpressionEncoder(onnx))


def sequence_pipeline(face: int, encoder_path: str = "") -> Any:
    """A SequencePipeline following face `face` (0 the largest) with the encoder at `encoder_path`;
    its own Perception, since tracking keeps per-run state and wants `face + 1` faces."""
    from ..inference.sequence.pipeline import SequencePipeline

    model = encoder(encoder_path)
    return _cached(f"sequence:{face}", (id(model),), lambda: SequencePipeline(face=face, encoder=model))


def arkit_mapping(face_model_file: str) -> Any:
    """The ARKit table of the encoder's face model (the open head ships one)."""
    from ..inference.head.default_head import HEAD_FILE, arkit_mapping
    from ..inference.head.face_model import load_face_model

    path = HEAD_FILE.with_name(face_model_file)
    return _cached(f"arkit:{path}", _stamp(path), lambda: arkit_mapping(load_face_model(path)))


def cached_value(name: str, files: tuple, make: Any) -> Any:
    """`make()` once per version of `files` (reloaded when one changes, failures not cached)."""
    return _cached(name, _stamp(*files), make)


def face_model(path: str | os.PathLike[str]) -> Any:
    """A face-model file loaded once per Blender session (and again when the file changes)."""
    from ..inference.head.face_model import load_face_model

    return _cached(f"model:{path}", _stamp(path), lambda: load_face_model(path))


def digest(path: str | os.PathLike[str]) -> str:
    """The file's sha256, computed once per version of the file."""
    from ..inference.head.face_model import file_sha256

    return str(_cached(f"sha256:{path}", _stamp(path), lambda: file_sha256(path)))


def head_tables(sha256: str) -> Any:
    """The shape-key names and ARKit table of the shipped head file whose sha256 is `sha256`, or
    None (a FLAME head, or a head file that carries no ARKit table)."""
    from ..inference.expression.encoder import head_tables as read_tables
    from ..inference.head.default_head import HEAD_FILE

    if not sha256:
        return None
    heads = sorted(HEAD_FILE.parent.glob("*.npz"))

    def find() -> Any:
        for path in heads:
            if digest(path) == sha256:
                try:
                    return read_tables(path)
                except (KeyError, ValueError):
                    return None
        return None

    return _cached(f"tables:{sha256}", _stamp(*heads), find)


def retargeter(source_file: str, flame_path: str, embedding_path: str, flame_sha256: str = "",
               source_embedding: str = "") -> Any:
    """A Retargeter from the encoder's head to the FLAME model at `flame_path`. The source's points
    are its own landmark embedding when it has one (the ICT head), else landmark i = vertex i (the
    open head); the target's are the user's embedding file, or (none set) our automatic embedding
    of the FLAME file, cached by its `flame_sha256` (computed on first use: renders in this Blender)."""
    from ..inference.head.default_head import HEAD_FILE
    from ..inference.head.face_model import load_face_model
    from ..inference.retarget.correspondence import Correspondence, load_mediapipe_embedding, open_head_landmarks
    from ..inference.retarget.embedding import N_FACE_MESH
    from ..inference.retarget.solver import Retargeter

    source_path = HEAD_FILE.with_name(source_file)

    def make() -> Any:
        source, target = load_face_model(source_path), load_face_model(flame_path)
        if embedding_path:
            points = load_mediapipe_embedding(embedding_path, target)
        else:
            from . import landmark_embedding

            points = landmark_embedding.automatic(target, flame_sha256, perception(), _warnings.append)
            # The irises turn with the gaze, which is copied, not solved: like FLAME's own embedding, none.
            points = points.select(points.labels[points.labels < N_FACE_MESH])
        source_points = (load_mediapipe_embedding(HEAD_FILE.with_name(source_embedding), source) if source_embedding
                         else open_head_landmarks())
        return target, Retargeter(source, target, Correspondence.by_label(source_points, points))

    key = embedding_path or f"automatic:{flame_sha256}"
    return _cached(f"retarget:{source_file}:{flame_path}", _stamp(source_path, flame_path, embedding_path) + (key,),
                   make)


def flame_retargeting(source_file: str, target_name: str, target_sha256: str, flame_path: str,
                      embedding_path: str, source_embedding: str = "") -> Any:
    """The FLAME route's `retarget` callable for `reconstruct.plan` (source parameters -> ({key:
    expression value}, pose, eyelids)). The files are checked and the solver built only when it is
    called: only a FLAME head of another face model needs them. Raises ReconstructError naming
    what to set when the FLAME file is not the one the head was built from; without an embedding
    file, the automatic embedding is computed (first use) or read from its cache."""
    from ..inference.errors import FieldsError
    from ..inference.retarget.plan import ReconstructError

    def solve(params: Any) -> Any:
        # Called per frame in a sequence: the checksum is cached per version of the file.
        if not flame_path or not os.path.isfile(flame_path) or digest(flame_path) != target_sha256:
            raise ReconstructError(f"'{target_name}' is a FLAME head: set the FLAME file it was built from "
                                   "in the add-on's preferences to retarget onto it.")
        try:
            model, solver = retargeter(source_file, flame_path, embedding_path, target_sha256, source_embedding)
        except ValueError as error:
            raise FieldsError(f"Cannot retarget onto '{target_name}': {error}.") from None
        solved = solver.retarget(params.expression, params.pose, params.eyelids)
        return dict(zip(model.expression_names, solved.expression, strict=True)), solved.pose, solved.eyelids

    return solve


_warnings: list[str] = []


def take_warnings() -> list[str]:
    """Warnings raised while building sessions (an unwritable embedding cache), each once."""
    taken = _warnings[:]
    _warnings.clear()
    return taken


def clear() -> None:
    _cache.clear()
