"""The FIELDS expression/emotion encoder: perception features in, the 52 ARKit units out.

Input: one feature vector per face (pose-normalised landmarks, blendshape scores and the face's
appearance, built by `inference.expression.features`, the one normalisation shared with inference).
A small MLP trunk reads the geometry (landmarks and scores) and feeds the units head (52 ARKit units
in [0, 1], Apple's order: one output for every head; jaw and eye turns and eyelids follow from the
units through a head's ARKit mapping) and the auxiliary emotion branch (8 logits and an intensity
in [0, 1]). The appearance adds a linear term to the emotion logits only, so the units never depend
on it. Synthetic faces have no appearance (they are landmarks, never rendered): a geometry-only input
(1486 wide) leaves that term out, and the term starts at zero, so an encoder trained without real
faces ignores appearance. The input standardisation (mean, std) is part of the module, so the
exported ONNX takes raw features.
"""

from __future__ import annotations

import torch
from torch import nn

from inference.expression.emotions import EMOTIONS
from inference.expression.features import N_APPEARANCE, N_FEATURES, N_GEOMETRY
from inference.perception.blendshapes import ARKIT_NAMES

OUTPUT_NAMES = ("units", "emotion_logits", "intensity")


class Encoder(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, hidden: int = 512, layers: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(N_FEATURES))
        self.register_buffer("std", torch.ones(N_FEATURES))
        blocks: list[nn.Module] = []
        width = N_GEOMETRY
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        self.trunk = nn.Sequential(*blocks)
        self.units = nn.Linear(hidden, len(ARKIT_NAMES))
        # The auxiliary emotion branch: 8 class logits and one intensity.
        self.emotion = nn.Sequential(nn.Linear(hidden, hidden // 2), nn.GELU(),
                                     nn.Linear(hidden // 2, len(EMOTIONS) + 1))
        self.appearance = nn.Linear(N_APPEARANCE, len(EMOTIONS))
        nn.init.zeros_(self.appearance.weight)
        nn.init.zeros_(self.appearance.bias)

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-6))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(N, 4046) faces, or (N, 1486) faces without appearance -> units, emotion logits, intensity."""
        x = (features - self.mean[: features.shape[1]]) / self.std[: features.shape[1]]
        h = self.trunk(x[:, :N_GEOMETRY])
        emotion = self.emotion(h)
        logits = emotion[:, : len(EMOTIONS)]
        if features.shape[1] > N_GEOMETRY:
            logits = logits + self.appearance(x[:, N_GEOMETRY:])
        return torch.sigmoid(self.units(h)), logits, torch.sigmoid(emotion[:, len(EMOTIONS):])

    def named(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(OUTPUT_NAMES, self(features), strict=True))
