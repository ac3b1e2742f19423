"""The FIELDS expression/emotion encoder on ONNX Runtime: perception features in, the face model's
parameters and the emotion out.

The model's contract is its metadata JSON (written by `training.export` beside the .onnx): input
size, named outputs with their shapes, emotion labels, the face model it was trained for (name,
sha256, expression names) and the ONNX file's own sha256, which is checked before the session is
made, so a truncated or swapped file is refused by name. Nothing here hard-codes 478, 52 or 8.
Must not import bpy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FileProblem
from ..perception.runtime import create_session, providers_in_use
from .features import FEATURE_VERSION, encoder_input

if TYPE_CHECKING:
    from ..perception.pipeline import Face

MODEL_FILE = Path(__file__).resolve().parent.parent / "models" / "encoder.onnx"


class EncoderFileError(FileProblem):
    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(path, problem, kind="Encoder model")


@dataclass(frozen=True)
class FaceModelContract:
    """The face model an encoder was trained for, as its metadata states it: what a plan needs to
    tell whether a target is that model (name, sha256) and to read the prediction (names)."""

    name: str
    file: str  # the file's name, looked up beside the shipped models
    sha256: str
    expression_names: tuple[str, ...]

    @classmethod
    def from_metadata(cls, entry: dict[str, Any]) -> FaceModelContract:
        return cls(str(entry["name"]), str(entry["file"]), str(entry["sha256"]),
                   tuple(str(n) for n in entry["expression_names"]))


@dataclass
class Expression:
    """One face's prediction, in the face model's own parameters."""

    expression: dict[str, float]  # expression shape-key name -> coefficient
    jaw: np.ndarray  # (3,) axis-angle, FLAME's jaw joint
    eyelids: np.ndarray  # (2,) [left, right] in [0, 1]
    gaze: np.ndarray  # (2, 3) axis-angle of eye.L, eye.R
    emotion: str
    emotion_probs: dict[str, float]
    intensity: float  # 0..1

    def to_json(self) -> dict[str, Any]:
        return {
            "expression": {name: round(value, 5) for name, value in self.expression.items()},
            "jaw": np.round(self.jaw, 5).tolist(),
            "eyelids": np.round(self.eyelids, 5).tolist(),
            "gaze": np.round(self.gaze, 5).tolist(),
            "emotion": {"label": self.emotion, "probs": {k: round(v, 5) for k, v in self.emotion_probs.items()},
                        "intensity": round(self.intensity, 5)},
        }


class ExpressionEncoder:
    def __init__(self, path: str | Path = MODEL_FILE, threads: int = 1) -> None:
        path = Path(path)
        metadata_path = path.with_suffix(".json")
        for required in (path, metadata_path):
            if not required.is_file():
                raise EncoderFileError(required, "is missing: reinstall the add-on, or train one with "
                                       "`python -m training train --ship`")
        try:
            self.metadata = json.loads(metadata_path.read_text())
            expected = self.metadata["onnx_sha256"]
            names = [output["name"] for output in self.metadata["outputs"]]
            self.face_model = FaceModelContract.from_metadata(self.metadata["face_model"])
            self.expression_names = list(self.face_model.expression_names)
            self.emotions = list(self.metadata["emotions"])
        except (ValueError, KeyError, TypeError) as exc:
            raise EncoderFileError(metadata_path, f"is not FIELDS encoder metadata ({exc})") from None
        if self.metadata.get("feature_version", FEATURE_VERSION) != FEATURE_VERSION:
            raise EncoderFileError(metadata_path, "was trained on another feature layout; retrain it")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != expected:
            raise EncoderFileError(path, "does not match the checksum in its metadata (damaged or replaced)")
        self.session = create_session(data, intra_op_threads=threads)
        self.output_names = names

    @property
    def providers(self) -> list[str]:
        return providers_in_use(self.session)

    def predict_arrays(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """The named outputs for a batch (N, F), as arrays with N leading, plus `emotion_probs`
        (softmax of the logits): what a sequence keeps per frame, without per-face objects."""
        batch = np.atleast_2d(np.asarray(features, dtype=np.float32))
        outputs = dict(zip(self.output_names, self.session.run(self.output_names, {"features": batch}), strict=True))
        logits = outputs["emotion_logits"]
        probs = np.exp(logits - logits.max(1, keepdims=True))
        outputs["emotion_probs"] = probs / probs.sum(1, keepdims=True)
        return outputs

    def predict(self, features: np.ndarray) -> list[Expression]:
        batch = np.atleast_2d(np.asarray(features, dtype=np.float32))
        outputs = self.predict_arrays(batch)
        probs = outputs["emotion_probs"]
        return [
            Expression(
                expression=dict(zip(self.expression_names, map(float, outputs["expression"][i]), strict=True)),
                jaw=outputs["jaw"][i].astype(np.float64),
                eyelids=outputs["eyelids"][i].astype(np.float64),
                gaze=outputs["gaze"][i].astype(np.float64),
                emotion=self.emotions[int(probs[i].argmax())],
                emotion_probs=dict(zip(self.emotions, map(float, probs[i]), strict=True)),
                intensity=float(outputs["intensity"][i, 0]),
            )
            for i in range(len(batch))
        ]

    def predict_face(self, face: Face) -> Expression:
        """One perceived face's prediction."""
        return self.predict(encoder_input(face))[0]

    def describe(self) -> dict[str, Any]:
        return {"name": "FIELDS encoder", "sha256": self.metadata["onnx_sha256"],
                "face_model": {"name": self.face_model.name, "file": self.face_model.file,
                               "sha256": self.face_model.sha256}}
