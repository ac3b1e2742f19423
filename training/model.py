"""The FIELDS expression/emotion encoder: perception features in, the 52 ARKit units out.

Input: one feature vector per face (pose-normalised landmarks and blendshape scores, built by
`inference.expression.features`, the one normalisation shared with inference). A small MLP trunk
feeds the units head (52 ARKit units in [0, 1], Apple's order: one output for every head; jaw and
eye turns and eyelids follow from the units through a head's ARKit mapping) and the auxiliary
emotion branch (8 logits and an intensity in [0, 1]). The input standardisation (mean, std) is part
of the module, so the exported ONNX takes raw features.
"""

from __future__ import annotations

import torch
from torch import nn

from inference.expression.emotions import EMOTIONS
from inference.perception.blendshapes import ARKIT_NAMES

OUTPUT_NAMES = ("units", "emotion_logits", "intensity")


class Encoder(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, n_features: int, hidden: int = 512, layers: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        blocks: list[nn.Module] = []
        width = n_features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        self.trunk = nn.Sequential(*blocks)
        self.units = nn.Linear(hidden, len(ARKIT_NAMES))
        # The auxiliary emotion branch: 8 class logits and one intensity.
        self.emotion = nn.Sequential(nn.Linear(hidden, hidden // 2), nn.GELU(),
                                     nn.Linear(hidden // 2, len(EMOTIONS) + 1))

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-6))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.trunk((features - self.mean) / self.std)
        emotion = self.emotion(h)
        return torch.sigmoid(self.units(h)), emotion[:, : len(EMOTIONS)], torch.sigmoid(emotion[:, len(EMOTIONS):])

    def named(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(OUTPUT_NAMES, self(features), strict=True))
