"""The FIELDS expression/emotion encoder on ONNX Runtime: perception features in, the 52 ARKit units
and the emotion out; jaw and eye turns and eyelids follow from the units.

The model's contract is its metadata JSON (written by `training.export` beside the .onnx): input
size, named outputs with their shapes, the units' names in order (one output for every head),
emotion labels, the head it was trained for (name, file, sha256, its MediaPipe landmark embedding)
and the ONNX file's own sha256, which is checked before the session is made, so a truncated or
swapped file is refused by name. The units reach that head's parameters through the ARKit table
stored in its file (`arkit_expression`, `arkit_pose`, `arkit_eyelids`): the jaw and eye rotations
and the eyelids an `Expression` carries are derived there, not predicted. Nothing here hard-codes
478, 52 or 8. Must not import bpy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FileProblem
from ..head.default_head import EYE_L, EYE_R, JAW, ArkitMapping
from ..head.forward import axis_angle
from ..perception.blendshapes import ARKIT_NAMES
from ..perception.runtime import create_session, providers_in_use
from .features import FEATURE_VERSION, encoder_input

if TYPE_CHECKING:
    from ..perception.pipeline import Face
    from .calibration import Neutral

MODEL_FILE = Path(__file__).resolve().parent.parent / "models" / "encoder.onnx"


class EncoderFileError(FileProblem):
    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(path, problem, kind="Encoder model")


@dataclass(frozen=True)
class FaceModelContract:
    """The head an encoder was trained for, as its metadata states it: what a plan needs to tell
    whether a target is that head (name, sha256), its shape keys, and the landmark embedding that
    retargeting onto another FLAME head starts from."""

    name: str
    file: str  # the file's name, looked up beside the shipped models
    sha256: str
    expression_names: tuple[str, ...]
    embedding: str = ""  # its MediaPipe landmark embedding's file name, beside the models

    @classmethod
    def from_metadata(cls, entry: dict[str, Any], expression_names: tuple[str, ...]) -> FaceModelContract:
        return cls(str(entry["name"]), str(entry["file"]), str(entry["sha256"]), expression_names,
                   str(entry.get("embedding", {}).get("file", "")))


def head_tables(path: Path) -> tuple[tuple[str, ...], ArkitMapping]:
    """A head file's shape-key names and ARKit table, read without loading its meshes."""
    with np.load(path, allow_pickle=False) as archive:
        if tuple(str(n) for n in archive["arkit_names"]) != ARKIT_NAMES:
            raise ValueError("its ARKit table lists the units in another order")
        return (tuple(str(n) for n in archive["expression_names"]),
                ArkitMapping(np.asarray(archive["arkit_expression"], np.float64),
                             np.asarray(archive["arkit_pose"], np.float64),
                             np.asarray(archive["arkit_eyelids"], np.float64)))


@dataclass
class Expression:
    """One face's prediction: the 52 ARKit units, and the trained-for head's parameters they give."""

    expression: dict[str, float]  # the head's expression shape-key name -> coefficient (from the units)
    jaw: np.ndarray  # (3,) axis-angle, FLAME's jaw joint (from the units)
    eyelids: np.ndarray  # (2,) [left, right] in [0, 1] (from the units)
    gaze: np.ndarray  # (2, 3) axis-angle of eye.L, eye.R (from the units)
    emotion: str
    emotion_probs: dict[str, float]
    intensity: float  # 0..1
    units: dict[str, float] = field(default_factory=dict)  # ARKit name -> [0, 1], ARKIT_NAMES order
    head_pose: np.ndarray | None = None  # (3,) axis-angle of the head in the camera (the Face's metric pose)

    def to_json(self) -> dict[str, Any]:
        return {
            "units": {name: round(value, 5) for name, value in self.units.items()},
            "head_pose": None if self.head_pose is None else np.round(self.head_pose, 5).tolist(),
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
            self.units = [str(n) for n in self.metadata["units"]]
            head = self.metadata["head"]
            self.emotions = list(self.metadata["emotions"])
        except (ValueError, KeyError, TypeError) as exc:
            raise EncoderFileError(metadata_path, f"is not FIELDS encoder metadata ({exc})") from None
        if tuple(self.units) != ARKIT_NAMES:
            raise EncoderFileError(metadata_path, "does not output the 52 ARKit units in Apple's order")
        # A trained run's folder holds no head: the shipped one of that name is meant.
        head_file = path.parent / str(head["file"])
        if not head_file.is_file():
            head_file = MODEL_FILE.parent / str(head["file"])
        try:
            expression_names, self.mapping = head_tables(head_file)
        except (OSError, KeyError, ValueError) as exc:
            raise EncoderFileError(metadata_path, f"names the head '{head_file}', which has no usable ARKit "
                                   f"table ({exc})") from None
        self.face_model = FaceModelContract.from_metadata(head, expression_names)
        self._params = np.concatenate([self.mapping.expression, self.mapping.pose.reshape(len(ARKIT_NAMES), -1),
                                       self.mapping.eyelids], axis=1).astype(np.float32)
        self.expression_names = list(expression_names)
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
        outputs.update(self.parameters(outputs["units"]))
        return outputs

    def parameters(self, units: np.ndarray) -> dict[str, np.ndarray]:
        """`expression`, `jaw`, `gaze`, `eyelids` of the trained-for head for (N, 52) ARKit units: one
        product with its ARKit table ([expression | pose (5 x 3) | eyelids] per unit). What the
        encoder gives for its own units, what calibrated units become, and what a Live Link Face
        take's units become (`sequence.livelink`)."""
        params = np.atleast_2d(np.asarray(units, dtype=np.float32)) @ self._params
        n_expr = self.mapping.expression.shape[1]
        pose = params[:, n_expr:n_expr + 15].reshape(-1, 5, 3)
        return {"expression": params[:, :n_expr], "jaw": pose[:, JAW], "gaze": pose[:, [EYE_L, EYE_R]],
                "eyelids": params[:, n_expr + 15:]}

    def calibrated(self, expression: Expression, neutral: Neutral) -> Expression:
        """`expression` read relative to the actor's `neutral` (units rescaled, emotion and
        intensity relative to the rest); jaw, gaze and eyelids follow from the new units."""
        units = neutral.calibrate_units(np.array([expression.units[u] for u in ARKIT_NAMES]))
        probs = neutral.calibrate_probs(np.array([expression.emotion_probs[e] for e in self.emotions]),
                                        self.emotions)
        params = self.parameters(units[None])
        return Expression(
            expression=dict(zip(self.expression_names, map(float, params["expression"][0]), strict=True)),
            jaw=params["jaw"][0].astype(np.float64), eyelids=params["eyelids"][0].astype(np.float64),
            gaze=params["gaze"][0].astype(np.float64), emotion=self.emotions[int(probs.argmax())],
            emotion_probs=dict(zip(self.emotions, map(float, probs), strict=True)),
            intensity=float(neutral.calibrate_intensity(expression.intensity)),
            units=dict(zip(ARKIT_NAMES, map(float, units), strict=True)),
            head_pose=None if expression.head_pose is None else neutral.calibrate_head_pose(expression.head_pose))

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
                units=dict(zip(self.units, map(float, outputs["units"][i]), strict=True)),
            )
            for i in range(len(batch))
        ]

    def predict_face(self, face: Face) -> Expression:
        """One perceived face's prediction, with the face's head pose (axis-angle of its metric pose)."""
        expression = self.predict(encoder_input(face))[0]
        expression.head_pose = head_rotation(face.matrix)
        return expression

    def describe(self) -> dict[str, Any]:
        return {"name": "FIELDS encoder", "sha256": self.metadata["onnx_sha256"],
                "head": {"name": self.face_model.name, "file": self.face_model.file,
                         "sha256": self.face_model.sha256}, "units": "52 ARKit units (ARKIT_NAMES order)"}


def head_rotation(matrix: np.ndarray) -> np.ndarray:
    """(3,) axis-angle of the rotation in a similarity (s R | t)."""
    u, _, vt = np.linalg.svd(np.asarray(matrix, dtype=np.float64)[:3, :3])
    return axis_angle(u @ vt)
