"""Readers: anything that turns perceived faces into the 52 ARKit units, emotion and intensity.

A reader takes `ReaderInput` (landmarks in pixels, MediaPipe's 52 scores, image sizes, and the
encoder features built from them) and returns a `Reading`: 52 ARKit units in [0, 1] (Apple's
order, `inference.perception.blendshapes.ARKIT_NAMES`), jaw and eye rotations when it has them, emotion
probabilities (`training.model.EMOTIONS` order) and intensity. `make_reader(name, train)` builds
one by name; readers that learn from data (the logistic baseline) fit on the `train` photos only,
so a new encoder slots in by adding one entry to `READERS`. Must not import bpy.

* `shipped`: the shipped encoder (`inference/models/encoder.onnx`) through ONNX Runtime; its
  output is the 52 ARKit units. `encoder=FOLDER` reads a trained run's encoder the same way (the
  ablations), `previous=PATH` the encoder shipped before issue 12 (the open mask head's parameters,
  turned into units through that head's ARKit table).
* `logistic`: multinomial, class-balanced logistic regression on MediaPipe's 52 scores (scikit-
  learn); its units are MediaPipe's scores unchanged (tongueOut, which MediaPipe lacks, is 0), and
  its intensity is 1 - P(neutral).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from inference.expression.features import N_GEOMETRY
from inference.perception.blendshapes import ARKIT_NAMES, MEDIAPIPE_NAMES

from .adapters import DataError
from .model import EMOTIONS

# Column of each ARKit unit among MediaPipe's scores (-1: MediaPipe has no such unit).
ARKIT_FROM_MEDIAPIPE = np.array([MEDIAPIPE_NAMES.index(n) if n in MEDIAPIPE_NAMES else -1 for n in ARKIT_NAMES])


@dataclass
class ReaderInput:
    landmarks: np.ndarray  # (N, 478, 3) pixels
    scores: np.ndarray  # (N, 52) MediaPipe's order
    size: np.ndarray  # (N, 2) width, height
    features: np.ndarray  # (N, 4046) `inference.expression.features.encoder_features`


@dataclass
class Reading:
    arkit: np.ndarray  # (N, 52) in [0, 1], ARKIT_NAMES order
    emotion_probs: np.ndarray  # (N, 8) EMOTIONS order
    intensity: np.ndarray  # (N,)
    jaw: np.ndarray | None = None  # (N, 3) axis-angle where the reader has it
    gaze: np.ndarray | None = None  # (N, 2, 3)

    @property
    def emotion(self) -> np.ndarray:
        return np.asarray(np.argmax(self.emotion_probs, axis=1))


class Reader(Protocol):
    name: str

    def read(self, faces: ReaderInput) -> Reading: ...


def mediapipe_arkit(scores: np.ndarray) -> np.ndarray:
    """MediaPipe's scores (N, 52) rearranged as ARKit units (N, 52)."""
    scores = np.asarray(scores, dtype=np.float64)
    out = np.where(ARKIT_FROM_MEDIAPIPE >= 0, scores[:, np.maximum(ARKIT_FROM_MEDIAPIPE, 0)], 0.0)
    return np.asarray(out)


class UnitsEncoder:
    """A FIELDS encoder whose output is the 52 ARKit units (ONNX Runtime, metadata checked)."""

    def __init__(self, path: Path | None = None, name: str = "") -> None:
        from inference.expression.encoder import MODEL_FILE, ExpressionEncoder

        self.encoder = ExpressionEncoder(path or MODEL_FILE)
        self.name = name or f"FIELDS encoder {path or MODEL_FILE}"

    def read(self, faces: ReaderInput) -> Reading:
        out = self.encoder.predict_arrays(faces.features)
        order = [self.encoder.emotions.index(e) for e in EMOTIONS]
        return Reading(arkit=np.clip(out["units"], 0.0, 1.0), emotion_probs=out["emotion_probs"][:, order],
                       intensity=out["intensity"][:, 0], jaw=out["jaw"], gaze=out["gaze"])


class PreviousEncoder:
    """The encoder shipped before issue 12 (outputs the old open mask head's parameters), read
    straight through ONNX Runtime and turned into ARKit units by that head's ARKit table. The
    baseline needs the mask head file, `inference/models/fields_head.npz`."""

    def __init__(self, path: Path) -> None:
        import json

        from inference.head.default_head import load_default_head
        from inference.perception.runtime import create_session

        onnx = path / "encoder.onnx" if path.is_dir() else path
        try:
            self.metadata = json.loads(onnx.with_suffix(".json").read_text())
            self.session = create_session(onnx.read_bytes())
        except (OSError, ValueError) as exc:
            raise DataError(f"Previous encoder '{onnx}' cannot be read ({exc})") from None
        model, self.mapping = load_default_head()
        if list(model.expression_names) != list(self.metadata["face_model"]["expression_names"]):
            raise DataError(f"Encoder '{onnx}' was trained for another head than the open mask head")
        self.names = [o["name"] for o in self.metadata["outputs"]]
        self.name = f"previously shipped encoder ({onnx}), open mask head's parameters"

    def read(self, faces: ReaderInput) -> Reading:
        from inference.head.default_head import EYE_L, EYE_R, JAW, HeadParams

        # It read feature layout 1: the geometry alone.
        geometry = faces.features[:, :N_GEOMETRY].astype(np.float32)
        out = dict(zip(self.names, self.session.run(self.names, {"features": geometry}), strict=True))
        arkit = np.zeros((len(faces.features), len(ARKIT_NAMES)))
        for i in range(len(arkit)):
            pose = np.zeros((5, 3))
            pose[JAW], pose[EYE_L], pose[EYE_R] = out["jaw"][i], out["gaze"][i, 0], out["gaze"][i, 1]
            params = HeadParams(expression=out["expression"][i].astype(np.float64), pose=pose,
                                eyelids=out["eyelids"][i].astype(np.float64))
            arkit[i] = self.mapping.from_params(params)
        logits = out["emotion_logits"]
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        order = [list(self.metadata["emotions"]).index(e) for e in EMOTIONS]
        return Reading(arkit=np.clip(arkit, 0.0, 1.0), emotion_probs=probs[:, order],
                       intensity=out["intensity"][:, 0], jaw=out["jaw"], gaze=out["gaze"])


class LogisticScores:
    """Multinomial, class-balanced logistic regression on MediaPipe's 52 scores."""

    def __init__(self, scores: np.ndarray, emotion: np.ndarray, c: float = 1.0) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.model = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=2000))
        self.model.fit(np.asarray(scores, np.float64), np.asarray(emotion))
        self.name = "logistic regression on MediaPipe's scores"

    def read(self, faces: ReaderInput) -> Reading:
        known = self.model.predict_proba(np.asarray(faces.scores, np.float64))
        probs = np.zeros((len(known), len(EMOTIONS)))
        probs[:, self.model.classes_] = known  # a class absent from training keeps probability 0
        return Reading(arkit=np.clip(mediapipe_arkit(faces.scores), 0.0, 1.0), emotion_probs=probs,
                       intensity=1.0 - probs[:, EMOTIONS.index("neutral")])


# name -> builder(train scores, train emotion labels); builders that do not learn ignore both
READERS: dict[str, Callable[[np.ndarray, np.ndarray], Reader]] = {
    "shipped": lambda scores, emotion: UnitsEncoder(name="shipped encoder (inference/models/encoder.onnx)"),
    "logistic": lambda scores, emotion: LogisticScores(scores, emotion),
}
# name=PATH readers: a trained run's folder (or its encoder.onnx), or the pre-issue-12 encoder.
PATH_READERS: dict[str, Callable[[Path], Reader]] = {
    "encoder": lambda path: UnitsEncoder(path / "encoder.onnx" if path.is_dir() else path),
    "previous": PreviousEncoder,
}


def make_reader(name: str, train_scores: np.ndarray, train_emotion: np.ndarray) -> Reader:
    """The reader called `name` (or `kind=PATH`), fitted (if it learns) on the training people's
    photos only."""
    kind, _, path = name.partition("=")
    if path and kind in PATH_READERS:
        if not Path(path).exists():
            raise DataError(f"Reader '{name}': '{path}' does not exist")
        return PATH_READERS[kind](Path(path))
    if name not in READERS:
        raise DataError(f"Unknown reader '{name}' (known: {', '.join(READERS)}, "
                        f"{', '.join(k + '=PATH' for k in PATH_READERS)})")
    return READERS[name](train_scores, train_emotion)
