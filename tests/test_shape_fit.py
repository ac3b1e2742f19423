"""Match face shape's fit (issue 11, item 5) without Blender: the numpy bounded solver agrees with
the unconstrained one inside its box and respects it outside; the fit recovers a known identity of
the ICT head through its embedding; failures name the problem; the CLI flag adds `shape`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference.head.face_model import load_face_model
from inference.head.forward import forward
from inference.head.ict import ICT_EMBEDDING_FILE, ICT_HEAD_FILE
from inference.head.shape_fit import LandmarkEmbedding, ShapeFitError, bounded_least_squares, match_shape

ROOT = Path(__file__).resolve().parents[1]


def test_bounded_least_squares() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(40, 6)), rng.normal(size=40)
    free = np.linalg.lstsq(a, b, rcond=None)[0]
    inf = np.full(6, np.inf)
    np.testing.assert_allclose(bounded_least_squares(a, b, -inf, inf), free, atol=1e-10)
    low, high = np.full(6, -0.05), np.full(6, 0.05)
    boxed = bounded_least_squares(a, b, low, high)
    assert np.all(boxed >= low - 1e-12) and np.all(boxed <= high + 1e-12)
    cost = np.sum((a @ boxed - b) ** 2)
    for _ in range(200):  # no feasible point nearby does better
        trial = np.clip(boxed + rng.normal(scale=0.01, size=6), low, high)
        assert np.sum((a @ trial - b) ** 2) >= cost - 1e-12


def test_match_shape_recovers_an_identity_of_the_ict_head() -> None:
    model = load_face_model(ICT_HEAD_FILE)
    embedding, ids = LandmarkEmbedding.load(ICT_EMBEDDING_FILE, model)
    truth = np.zeros(model.n_shape)
    truth[:5] = [1.5, -1.0, 0.8, 0.5, -0.4]
    expression = np.zeros(model.n_expr)
    expression[model.expression_names.index("mouthSmileLeft")] = 0.6
    rotation = np.linalg.qr(np.random.default_rng(4).normal(size=(3, 3)))[0]
    rotation *= np.sign(np.linalg.det(rotation))
    observed = 1.1 * embedding.apply(forward(model, truth, expression).vertices) @ rotation.T + 0.3
    fit = match_shape(model, embedding, observed, expression, ids=ids, ridge=1e-6)
    assert fit.after_mm["all"] < 0.05 < fit.before_mm["all"]
    np.testing.assert_allclose(fit.identity[:5], truth[:5], atol=0.05)
    with pytest.raises(ShapeFitError, match="no MediaPipe landmark embedding"):
        match_shape(model, None, observed)


def test_cli_match_shape_flag() -> None:
    run = subprocess.run([sys.executable, "-m", "inference", str(ROOT / "inference" / "samples" / "astronaut.jpg"),
                          "--match-shape"], capture_output=True, text=True, cwd=ROOT, check=True)
    shape = json.loads(run.stdout)["faces"][0]["shape"]
    assert len(shape["identity"]) == 50
    assert shape["residual_mm_after"]["all"] < shape["residual_mm_before"]["all"]
