"""Real-photo checks of a trained encoder: the astronaut photo (public domain, a smiling face) and
augmented copies of it, read through the full pipeline (perception, features, encoder).

Reports the emotion read on the untouched photo, and how well the predicted expression agrees with
MediaPipe's own blendshape scores where their meanings coincide (the encoder's outputs
are the 52 ARKit units, so unit u's value is compared with MediaPipe's score for u): Spearman rank
correlation across units, per photo, averaged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from inference.expression.emotions import EMOTIONS
from inference.expression.features import encoder_input
from inference.perception.blendshapes import MEDIAPIPE_NAMES
from inference.perception.image import load_image

from .model import Encoder

SAMPLE = Path(__file__).resolve().parent.parent / "inference" / "samples" / "astronaut.jpg"


def _augmented(image: np.ndarray, count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    copies = [image, np.ascontiguousarray(image[:, ::-1])]
    for _ in range(count):
        matrix = cv2.getRotationMatrix2D((image.shape[1] / 2, image.shape[0] / 2), rng.uniform(-15, 15),
                                         rng.uniform(0.8, 1.2))
        copies.append(cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT))
    return copies


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks_a, ranks_b = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


@torch.no_grad()
def real_photo_metrics(encoder: Encoder, expression_names: tuple[str, ...], copies: int = 8) -> dict[str, Any]:
    from inference.perception.pipeline import Perception

    perception = Perception(max_faces=1)
    encoder = encoder.eval().cpu()
    shared = [name for name in expression_names if name in MEDIAPIPE_NAMES]
    expression_index = [expression_names.index(n) for n in shared]
    score_index = [MEDIAPIPE_NAMES.index(n) for n in shared]
    correlations: list[float] = []
    first: dict[str, Any] = {}
    for i, image in enumerate(_augmented(load_image(SAMPLE), copies)):
        result = perception.run(image)
        if not result.faces:
            continue
        face = result.faces[0]
        scores = face.scores
        pred = encoder.named(torch.as_tensor(encoder_input(face))[None])
        expression = pred["units"][0].numpy()
        if shared:  # a FLAME head's exp_NNN components have no MediaPipe counterpart
            correlations.append(_spearman(expression[expression_index], scores[score_index]))
        if i == 0:
            probs = torch.softmax(pred["emotion_logits"][0], 0).numpy()
            first = {"astronaut_emotion": EMOTIONS[int(probs.argmax())],
                     "astronaut_confidence": float(probs.max()),
                     "astronaut_intensity": float(pred["intensity"][0, 0])}
    return {**first, "units_compared": len(shared), "photos": len(correlations) if shared else 0,
            "rank_correlation_with_mediapipe": float(np.mean(correlations)) if correlations else float("nan")}
