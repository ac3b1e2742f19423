"""The FLAME forward model in PyTorch, batched and differentiable: the twin of `inference.forward`.

Training needs gradients through the model (vertex-space errors, reprojected landmarks), so this
repeats the numpy reference in torch; a test holds the two equal to 1e-10 in float64. Keep the two
in step: the numpy one is the specification.
"""

from __future__ import annotations

import torch
from torch import nn

from inference.head.face_model import FaceModel


def rodrigues(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) from axis-angle (..., 3); smooth at zero."""
    angle = torch.linalg.norm(axis_angle, dim=-1, keepdim=True).clamp_min(1e-12)
    axis = axis_angle / angle
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*axis.shape[:-1], 3, 3)
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + s * k + (1 - c) * (k @ k)


class TorchFlame(nn.Module):
    v_template: torch.Tensor
    shapedirs: torch.Tensor
    exprdirs: torch.Tensor
    posedirs: torch.Tensor
    j_regressor: torch.Tensor
    weights: torch.Tensor
    eyelids: torch.Tensor

    def __init__(self, model: FaceModel, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()

        def buffer(name: str, array) -> None:  # type: ignore[no-untyped-def]
            self.register_buffer(name, torch.as_tensor(array, dtype=dtype), persistent=False)

        buffer("v_template", model.v_template)
        buffer("shapedirs", model.shapedirs)
        buffer("exprdirs", model.exprdirs)
        buffer("posedirs", model.posedirs.reshape(-1, model.posedirs.shape[2]).T)  # (36, V*3)
        buffer("j_regressor", model.j_regressor)
        buffer("weights", model.weights)
        buffer("eyelids", model.eyelids if model.eyelids is not None else torch.zeros(2, model.n_verts, 3))
        self.parents = [int(p) for p in model.parents]

    def forward(self, expression: torch.Tensor, pose: torch.Tensor, shape: torch.Tensor | None = None,
                eyelids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices (B, V, 3) and posed joints (B, 5, 3). `pose` is (B, 5, 3) axis-angle."""
        batch = expression.shape[0]
        shaped = self.v_template + torch.einsum("vdk,bk->bvd", self.exprdirs[..., : expression.shape[1]], expression)
        if shape is not None:
            shaped = shaped + torch.einsum("vdk,bk->bvd", self.shapedirs[..., : shape.shape[1]], shape)
        joints = torch.einsum("jv,bvd->bjd", self.j_regressor, shaped)
        rotations = rodrigues(pose)  # (B, 5, 3, 3)
        eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
        features = (rotations[:, 1:] - eye).reshape(batch, -1)
        posed = shaped + (features @ self.posedirs).reshape(batch, -1, 3)
        if eyelids is not None:
            posed = posed + torch.einsum("bk,kvd->bvd", eyelids.clamp(0, 1), self.eyelids)
        chain = []
        for k, parent in enumerate(self.parents):
            offset = joints[:, k] - (joints[:, parent] if parent >= 0 else 0)
            local = torch.cat([rotations[:, k], offset[..., None]], dim=-1)  # (B, 3, 4)
            if parent < 0:
                chain.append(local)
            else:
                up = chain[parent]
                chain.append(torch.cat([up[..., :3] @ local[..., :3], up[..., :3] @ local[..., 3:] + up[..., 3:]], -1))
        world = torch.stack(chain, dim=1)  # (B, 5, 3, 4)
        translation = world[..., 3] - torch.einsum("bkij,bkj->bki", world[..., :3], joints)
        blend_r = torch.einsum("vk,bkij->bvij", self.weights, world[..., :3])
        blend_t = torch.einsum("vk,bki->bvi", self.weights, translation)
        vertices = torch.einsum("bvij,bvj->bvi", blend_r, posed) + blend_t
        return vertices, world[..., 3]
