"""The FIELDS expression/emotion encoder: perception features in, named face-model parameters out.

Input: one feature vector per face (pose-normalised landmarks and blendshape scores, built by
`inference.features`, the one normalisation shared with inference). A small MLP trunk feeds
parameter heads and the auxiliary emotion branch. Outputs are named and physically clamped
(SMIRK's convention): eyelids in [0, 1], a jaw that cannot open backwards, gaze within the eye's
range, intensity in [0, 1]. The input standardisation (mean, std) is part of the module, so the
exported ONNX takes raw features.
"""

from __future__ import annotations

import torch
from torch import nn

from inference.expression.emotions import EMOTIONS

OUTPUT_NAMES = ("expression", "jaw", "eyelids", "gaze", "emotion_logits", "intensity")
MAX_GAZE_RAD = 0.6  # about 35 degrees, the eye's comfortable range
MAX_JAW_RAD = 0.6


class Encoder(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor
    jaw_open_sign: torch.Tensor

    def __init__(self, n_features: int, n_expr: int, hidden: int = 512, layers: int = 3, dropout: float = 0.1,
                 jaw_open_sign: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.register_buffer("jaw_open_sign", torch.tensor(float(jaw_open_sign)))
        blocks: list[nn.Module] = []
        width = n_features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        self.trunk = nn.Sequential(*blocks)
        self.expression = nn.Linear(hidden, n_expr)
        self.jaw = nn.Linear(hidden, 3)
        self.eyelids = nn.Linear(hidden, 2)
        self.gaze = nn.Linear(hidden, 6)
        # The auxiliary emotion branch: 8 class logits and one intensity.
        self.emotion = nn.Sequential(nn.Linear(hidden, hidden // 2), nn.GELU(),
                                     nn.Linear(hidden // 2, len(EMOTIONS) + 1))

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-6))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.trunk((features - self.mean) / self.std)
        jaw = self.jaw(h)
        # The opening axis is x (FLAME's and the open head's); it only opens one way.
        opening = self.jaw_open_sign * nn.functional.softplus(jaw[:, :1]).clamp(max=MAX_JAW_RAD)
        jaw = torch.cat([opening, MAX_JAW_RAD * 0.3 * torch.tanh(jaw[:, 1:])], dim=1)
        emotion = self.emotion(h)
        return (
            self.expression(h),
            jaw,
            torch.sigmoid(self.eyelids(h)),
            (MAX_GAZE_RAD * torch.tanh(self.gaze(h))).reshape(-1, 2, 3),
            emotion[:, : len(EMOTIONS)],
            torch.sigmoid(emotion[:, len(EMOTIONS):]),
        )

    def named(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(OUTPUT_NAMES, self(features), strict=True))
