"""The FIELDS losses.

1. Direct 3D supervision: the parameter error, and the vertex error it causes through the face
   model's basis (so each error is weighted by what it does to the face), plus jaw, eyelids, gaze.
2. 2D consistency: the model's landmarks under the predicted parameters, in the pose-normalised
   frame the features live in (the observed head pose already removed), aligned by scale and
   translation, against the observed landmarks' x, y. It needs no labels, so it applies to any
   image; without the observed pose it would be confounded by rotation, which is why the frame is
   normalised first.
3. Intensity-aware emotion: soft targets that mix neutral and the labelled class by the labelled
   intensity, an intensity regression, and a penalty on expressions stronger than the labelled
   intensity implies (the predicted expression's projection onto the class prototype beyond the
   label's intensity).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F  # noqa: N812

from .flame_torch import TorchFlame

CM = 100.0  # the face model is in metres; losses are read in centimetres


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the samples that carry the label (zero, with a gradient, when none do)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def flame_pose(jaw: torch.Tensor, gaze: torch.Tensor) -> torch.Tensor:
    """(B, 5, 3) FLAME pose with the head unrotated: the encoder predicts jaw and eyes only."""
    batch = jaw.shape[0]
    zeros = jaw.new_zeros(batch, 1, 3)
    return torch.cat([zeros, zeros, jaw[:, None], gaze], dim=1)


def direct_3d(pred: dict[str, torch.Tensor], target: dict[str, torch.Tensor], flame: TorchFlame,
              vertex_ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    shape = target.get("shape")
    predicted, _ = flame(pred["expression"], flame_pose(pred["jaw"], pred["gaze"]), shape, pred["eyelids"])
    actual, _ = flame(target["expression"], flame_pose(target["jaw"], target["gaze"]), shape, target["eyelids"])
    if vertex_ids is not None:
        predicted, actual = predicted[:, vertex_ids], actual[:, vertex_ids]
    return {
        "params": (pred["expression"] - target["expression"]).square().mean(1),
        "vertices": (predicted - actual).norm(dim=-1).mean(1) * CM,
        "jaw": (pred["jaw"] - target["jaw"]).abs().mean(1),
        "eyelids": (pred["eyelids"] - target["eyelids"]).abs().mean(1),
        "gaze": (pred["gaze"] - target["gaze"]).abs().mean((1, 2)),
    }


def landmark_consistency(pred: dict[str, torch.Tensor], observed: torch.Tensor, flame: TorchFlame,
                         points: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                         shape: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample mean 2D distance (cm) between observed pose-normalised landmarks (B, 478, 3) and
    the model's corresponding surface points under the prediction, after the best scale and
    translation. `points` = (triangles (N, 3) vertex ids, barycentric weights (N, 3), the
    MediaPipe ids (N,) they stand for); the open head's are its first 478 vertices themselves."""
    triangles, bary, ids = points
    vertices, _ = flame(pred["expression"], flame_pose(pred["jaw"], pred["gaze"]), shape, pred["eyelids"])
    model_xy = torch.einsum("bnkd,nk->bnd", vertices[:, triangles, :2], bary) * CM
    seen_xy = observed[:, ids, :2]
    model_c = model_xy - model_xy.mean(1, keepdim=True)
    seen_c = seen_xy - seen_xy.mean(1, keepdim=True)
    scale = (model_c * seen_c).sum((1, 2), keepdim=True) / model_c.square().sum((1, 2), keepdim=True).clamp_min(1e-9)
    return (scale * model_c - seen_c).norm(dim=-1).mean(1)


def emotion(logits: torch.Tensor, intensity: torch.Tensor, expression: torch.Tensor, label: torch.Tensor,
            label_intensity: torch.Tensor, prototypes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample terms. `label` in 0..7 (0 = neutral), `label_intensity` in [0, 1] or NaN where
    unknown (the class still trains, as if at full intensity), `prototypes` (8, n_expr): each
    class's full-intensity expression in the model's parameters (neutral's is zero)."""
    known = ~torch.isnan(label_intensity)
    label_intensity = torch.where(known, label_intensity, torch.ones_like(label_intensity))
    classes = logits.shape[1]
    s = torch.where(label == 0, torch.ones_like(label_intensity), label_intensity)
    soft = F.one_hot(label, classes).float() * s[:, None]
    soft[:, 0] += 1 - s
    cross_entropy = -(soft * F.log_softmax(logits, dim=1)).sum(1)
    regression = (intensity[:, 0] - torch.where(label == 0, torch.zeros_like(s), s)).abs() * known
    proto = prototypes[label]
    norm = proto.square().sum(1).clamp_min(1e-9)
    strength = (expression * proto).sum(1) / norm  # 1.0 = the full prototype
    exaggeration = torch.where(label == 0, torch.zeros_like(s), F.relu(strength - label_intensity)).square() * known
    return {"emotion": cross_entropy, "intensity": regression, "exaggeration": exaggeration}
