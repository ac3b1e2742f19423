"""The head training is for: the ICT head read at MediaPipe's 478 landmarks through our embedding.

Training only ever needs the head at its landmarks, so `landmark_model` cuts the ICT head down to
the vertices under the embedding's triangles (about 1,400 of 26,719) plus five pseudo-vertices that
carry the joints' regression (template and identity basis through `J_regressor`): the FLAME forward
on that cut is exactly the full head's forward at those vertices, at a twentieth of the cost. The
ARKit mapping (`arkit_mapping`) turns 52 units into the head's shape keys, jaw/eye turns and
eyelids. `IctLandmarks` gives the landmarks for units and identity in numpy (synthetic faces) and
in torch (losses), and the linearisation the 2D-consistency loss solves against. Must not import bpy.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from inference.head.default_head import ArkitMapping, arkit_mapping
from inference.head.face_model import FaceModel, load_face_model
from inference.head.forward import forward
from inference.perception.blendshapes import ARKIT_NAMES
from inference.perception.landmarks import N_LANDMARKS
from inference.retarget.correspondence import load_mediapipe_embedding

from .flame_torch import TorchFlame
from .head_fit import FlameArkitHead, LandmarkEmbedding

MODELS = Path(__file__).resolve().parent.parent / "inference" / "models"
ICT_HEAD = MODELS / "ict_head.npz"
ICT_EMBEDDING = MODELS / "ict_head_mediapipe_embedding.npz"
CM = 100.0


def landmark_model(model: FaceModel, triangles: np.ndarray) -> tuple[FaceModel, np.ndarray]:
    """The model restricted to the vertices `triangles` (L, 3) use, and the triangles renumbered."""
    keep, renumbered = np.unique(triangles, return_inverse=True)
    joints = len(model.j_regressor)
    jreg = np.zeros((joints, len(keep) + joints))
    jreg[:, len(keep):] = np.eye(joints)
    weights = np.zeros((len(keep) + joints, model.weights.shape[1]))
    weights[: len(keep)] = model.weights[keep]
    weights[len(keep):, 0] = 1.0  # the pseudo-vertices only carry the joints; they follow the root
    eyelids = None if model.eyelids is None else np.concatenate(
        [model.eyelids[:, keep], np.zeros((2, joints, 3))], axis=1)
    cut = replace(
        model,
        v_template=np.concatenate([model.v_template[keep], model.j_regressor @ model.v_template]),
        faces=np.zeros((0, 3), np.int32),
        shapedirs=np.concatenate([model.shapedirs[keep], np.einsum("jv,vdk->jdk", model.j_regressor, model.shapedirs)]),
        exprdirs=np.concatenate([model.exprdirs[keep], np.einsum("jv,vdk->jdk", model.j_regressor, model.exprdirs)]),
        posedirs=np.concatenate([model.posedirs[keep], np.zeros((joints, 3, model.posedirs.shape[2]))]),
        j_regressor=jreg, weights=weights, eyelids=eyelids, extras={})
    return cut, renumbered.reshape(triangles.shape)


class IctLandmarks:
    """MediaPipe's 478 landmarks (metres, head axes) on the ICT head for 52 units and identity."""

    def __init__(self, head: str | Path = ICT_HEAD, embedding: str | Path = ICT_EMBEDDING) -> None:
        full = load_face_model(head)
        self.mapping: ArkitMapping = arkit_mapping(full)
        points = load_mediapipe_embedding(embedding, full)
        if sorted(points.labels.tolist()) != list(range(N_LANDMARKS)):
            raise ValueError(f"Embedding '{embedding}' does not place all {N_LANDMARKS} MediaPipe landmarks")
        order = np.argsort(points.labels)
        self.model, self.triangles = landmark_model(full, points.vertices[order])
        self.bary = points.weights[order]
        self.name = full.name
        self.n_shape = full.n_shape
        self.sha256 = hashlib.sha256(Path(head).read_bytes() + Path(embedding).read_bytes()).hexdigest()
        self.neutral = self.landmarks(np.zeros(len(ARKIT_NAMES)))
        # Secant bases at weight 1 (the units' working range) and per identity component.
        self.unit_basis = np.stack([self.landmarks(w) - self.neutral for w in np.eye(len(ARKIT_NAMES))])
        self.identity_basis = np.einsum("lkdc,lk->cld", self.model.shapedirs[self.triangles], self.bary)

    def landmarks(self, weights: np.ndarray, shape: np.ndarray | None = None) -> np.ndarray:
        params = self.mapping.to_params(weights)
        out = forward(self.model, shape=shape, expression=params.expression, pose=params.pose, eyelids=params.eyelids)
        return np.einsum("lkd,lk->ld", out.vertices[self.triangles], self.bary)


class TorchIctLandmarks(torch.nn.Module):
    """The torch twin for batches: units (B, 52) and identity (B, S) -> landmarks (B, 478, 3) in cm."""

    expression: torch.Tensor
    pose: torch.Tensor
    eyelids: torch.Tensor
    triangles: torch.Tensor
    bary: torch.Tensor

    def __init__(self, head: IctLandmarks) -> None:
        super().__init__()
        self.flame = TorchFlame(head.model)
        for name, value in (("expression", head.mapping.expression), ("pose", head.mapping.pose),
                            ("eyelids", head.mapping.eyelids), ("bary", head.bary)):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32), persistent=False)
        self.register_buffer("triangles", torch.as_tensor(head.triangles, dtype=torch.long), persistent=False)

    def forward(self, units: torch.Tensor, shape: torch.Tensor | None = None) -> torch.Tensor:
        pose = torch.einsum("bu,ujd->bjd", units, self.pose)
        vertices, _ = self.flame(units @ self.expression, pose, shape, units @ self.eyelids)
        return torch.einsum("blkd,lk->bld", vertices[:, self.triangles], self.bary) * CM


def landmark_head() -> FlameArkitHead:
    """The ICT head as `training.head_fit` measures heads: driven by units, read at the landmarks."""
    head = IctLandmarks()
    return FlameArkitHead(head.model, head.mapping, LandmarkEmbedding(head.triangles, head.bary), head.name,
                          head.sha256)
