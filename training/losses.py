"""The FIELDS losses, for an encoder whose expression output is the 52 ARKit units.

(a) Direct supervision on synthetic faces: the units' squared error, and the landmark error (cm)
    they cause on the ICT head (linearised: the head's landmark change per unit at weight 1), so
    each unit's error is weighted by what it does to the face.
(b) 2D consistency on real faces (`Consistency`): the ICT head driven by the predicted units must
    reproduce the observed landmarks (pose-normalised, so the head pose is already removed) after
    a similarity alignment, with the face's identity solved in closed form (ridge) inside the loss;
    mouth, eyes and brows weigh more. Linearised in the units (secant at weight 1), exact in the
    identity; the alignment's rotation is linearised about a fixed frame alignment found once.
(c) Emotion on real labels: class-balanced cross-entropy with label smoothing (the labels are
    noisy; smoothing caps how far one mislabelled photo can push the logits).
(d) Intensity-aware emotion on synthetic faces: soft targets that mix neutral and the labelled
    class by the labelled intensity, an intensity regression, and a penalty on expressions
    stronger than the labelled intensity implies (the units' projection onto the class prototype).
Plus a weak pseudo-label: MediaPipe's own scores on real faces, which fixes the units' scale there.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from .head_fit import REGIONS
from .ict import CM, IctLandmarks

REGION_WEIGHT = 3.0  # mouth, eyes and brows count three times the rest of the face
IDENTITY_RIDGE = 0.005  # as the per-photo fit's (training.head_fit): identity must not absorb expression
ROTATION_UNITS = ("eyeLook", "jaw")  # units the head turns joints for (the rest are shape keys)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the samples that carry the label (zero, with a gradient, when none do)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def direct_3d(units: torch.Tensor, target: torch.Tensor, unit_basis: torch.Tensor) -> dict[str, torch.Tensor]:
    """`unit_basis` (52, 478, 3) cm: the ICT head's landmark change per unit (secant at weight 1).
    Linear in the units, so the face's identity cancels from the difference; the exact forward
    (`TorchIctLandmarks`) costs ~50x more per step on the CPU and is kept for evaluation."""
    gap = torch.einsum("bu,uld->bld", units - target, unit_basis)
    return {"units": (units - target).square().mean(1), "landmarks_3d": gap.norm(dim=-1).mean(1)}


def _similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    from .head_fit import similarity

    return similarity(source, target)


class Consistency(nn.Module):
    """(b): per-face landmark residual (cm) of the ICT head driven by predicted units."""

    neutral: torch.Tensor
    units: torch.Tensor
    residual: torch.Tensor
    weights: torch.Tensor
    frame_rotation: torch.Tensor
    frame_translation: torch.Tensor

    def __init__(self, head: IctLandmarks, observed_mean_cm: np.ndarray) -> None:
        super().__init__()
        neutral = head.neutral * CM
        # MediaPipe's canonical frame and the head's differ by a fixed similarity: found once on the
        # mean real face, so the per-face rotation left to solve is small and linearises well.
        scale, rotation, translation = _similarity(observed_mean_cm, neutral)
        weights = np.ones(len(neutral))
        for ids in REGIONS.values():
            weights[list(ids)] = REGION_WEIGHT
        centred = neutral - neutral.mean(0)
        identity = head.identity_basis * CM
        identity = identity - identity.mean(1, keepdims=True)
        rotations = np.stack([np.cross(axis, centred) for axis in np.eye(3)])
        columns = np.concatenate([identity, rotations]).reshape(len(identity) + 3, -1).T  # (3L, S + 3)
        w = np.repeat(weights, 3)
        normal = columns.T @ (columns * w[:, None])
        ridge = np.zeros(len(normal))
        ridge[: len(identity)] = IDENTITY_RIDGE * np.diag(normal)[: len(identity)].mean()
        solve = np.linalg.solve(normal + np.diag(ridge), columns.T * w[None])
        for name, value in (("neutral", neutral), ("units", head.unit_basis * CM),
                            ("residual", np.eye(len(columns)) - columns @ solve), ("weights", weights / weights.sum()),
                            ("frame_rotation", scale * rotation.T), ("frame_translation", translation)):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32), persistent=False)

    def forward(self, units: torch.Tensor, observed_cm: torch.Tensor) -> torch.Tensor:
        seen = observed_cm @ self.frame_rotation + self.frame_translation
        model = self.neutral + torch.einsum("bu,uld->bld", units, self.units)
        seen = seen - seen.mean(1, keepdim=True)
        model = model - model.mean(1, keepdim=True)
        scale = (model * seen).sum((1, 2), keepdim=True) / seen.square().sum((1, 2), keepdim=True).clamp_min(1e-9)
        gap = (scale * seen - model).reshape(len(units), -1)  # what identity and a small turn must explain
        left = (gap @ self.residual.T).reshape(len(units), -1, 3)
        return (left.norm(dim=-1) * self.weights).sum(1)


def real_emotion(logits: torch.Tensor, label: torch.Tensor, class_weights: torch.Tensor,
                 smoothing: float) -> torch.Tensor:
    """(c) Per-sample class-balanced, label-smoothed cross-entropy (label -1: no label, zero)."""
    known = label >= 0
    safe = torch.where(known, label, torch.zeros_like(label))
    loss = F.cross_entropy(logits, safe, reduction="none", label_smoothing=smoothing) * class_weights[safe]
    return loss * known


def emotion(logits: torch.Tensor, intensity: torch.Tensor, units: torch.Tensor, label: torch.Tensor,
            label_intensity: torch.Tensor, prototypes: torch.Tensor) -> dict[str, torch.Tensor]:
    """(d) Per-sample terms. `label` in 0..7 (0 = neutral), `label_intensity` in [0, 1], `prototypes`
    (8, 52): each class's full-intensity units (neutral's are zero)."""
    classes = logits.shape[1]
    s = torch.where(label == 0, torch.ones_like(label_intensity), label_intensity)
    soft = F.one_hot(label, classes).float() * s[:, None]
    soft[:, 0] += 1 - s
    cross_entropy = -(soft * F.log_softmax(logits, dim=1)).sum(1)
    regression = (intensity[:, 0] - torch.where(label == 0, torch.zeros_like(s), s)).abs()
    proto = prototypes[label]
    norm = proto.square().sum(1).clamp_min(1e-9)
    strength = (units * proto).sum(1) / norm  # 1.0 = the full prototype
    exaggeration = torch.where(label == 0, torch.zeros_like(s), F.relu(strength - label_intensity)).square()
    return {"emotion": cross_entropy, "intensity": regression, "exaggeration": exaggeration}
