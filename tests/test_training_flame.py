"""The PyTorch FLAME twin equals the numpy reference (issue 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from inference.head.face_model import load_face_model  # noqa: E402
from inference.head.forward import forward  # noqa: E402
from training.flame_torch import TorchFlame, rodrigues  # noqa: E402


def test_matches_numpy_forward(flame_pickle: Path) -> None:
    model = load_face_model(flame_pickle)
    flame = TorchFlame(model, dtype=torch.float64)
    rng = np.random.default_rng(0)
    shape, expression = rng.normal(size=(3, 300)), rng.normal(size=(3, 100))
    pose, eyelids = rng.normal(0, 0.4, (3, 5, 3)), rng.uniform(0, 1, (3, 2))
    vertices, joints = flame(torch.tensor(expression), torch.tensor(pose), torch.tensor(shape), torch.tensor(eyelids))
    for b in range(3):
        expected = forward(model, shape[b], expression[b], pose[b], eyelids[b])
        np.testing.assert_allclose(vertices[b].numpy(), expected.vertices, atol=1e-10)
        np.testing.assert_allclose(joints[b].numpy(), expected.joints, atol=1e-10)


def test_gradients_are_finite_at_zero_pose(flame_pickle: Path) -> None:
    flame = TorchFlame(load_face_model(flame_pickle))
    pose = torch.zeros(2, 5, 3, requires_grad=True)
    expression = torch.zeros(2, 100, requires_grad=True)
    vertices, _ = flame(expression, pose)
    vertices.square().sum().backward()
    assert torch.isfinite(pose.grad).all() and torch.isfinite(expression.grad).all()
    assert rodrigues(torch.zeros(3)).allclose(torch.eye(3))
