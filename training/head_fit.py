"""Landmark geometry of a head driven by ARKit units, and how well it meets a real face's landmarks.

A head is reached only through `LandmarkHead`: the 478 MediaPipe landmarks (metres) for 52 ARKit
weights and an identity vector, plus their linearisation (neutral, per-unit and per-identity-
component landmark changes). Landmarks sit on the mesh through a `LandmarkEmbedding` (triangle +
barycentric weights; a vertex id is the degenerate triangle), so the mask head (vertex i is
landmark i) and a full head such as ICT's plug in alike. `region_residuals` aligns a face's
observed landmarks onto the head by a similarity (Umeyama, all 478 points) and reports the mean
3D distance in millimetres over MediaPipe's lips, eyes and brows; `fit_photo` is the per-photo
least-squares reference (identity and bounded units solved together), `drive_photo` solves only
identity for units a reader gave. Both run the product's fit (`inference.head.shape_fit`, also behind
"Match face shape"), which alternates alignment and a bounded linear solve, then judge the exact
(not linearised) head. Must not import bpy.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np

from inference.head.default_head import ARKIT_TO_PARAMS, HEAD_FILE, N_LANDMARKS, ArkitMapping, load_default_head
from inference.head.face_model import FaceModel
from inference.head.shape_fit import (  # noqa: F401  (re-exported: this module's public API)
    IDENTITY_BOUND,
    IDENTITY_RIDGE,
    LEFT_BROW,
    LEFT_EYE,
    LIPS,
    REGIONS,
    RIGHT_BROW,
    RIGHT_EYE,
    LandmarkEmbedding,
    align,
    fit_landmarks,
    region_residuals,
    similarity,
)
from inference.perception.blendshapes import ARKIT_NAMES

N_UNITS = len(ARKIT_NAMES)
FD_STEP = 1e-3


class LandmarkHead(Protocol):
    name: str
    key: str  # changes whenever the head's geometry does (e.g. its file's sha256): keys cached fits
    neutral: np.ndarray  # (478, 3) metres
    unit_basis: np.ndarray  # (52, 478, 3): landmark change per ARKit unit at weight 1 (linearised)
    identity_basis: np.ndarray  # (S, 478, 3): landmark change per identity coefficient

    def landmarks(self, weights: np.ndarray, identity: np.ndarray | None = None) -> np.ndarray: ...

    def jacobian(self, weights: np.ndarray, identity: np.ndarray) -> np.ndarray:
        """(52, 478, 3) landmark change per unit at `weights` (`unit_basis` for a linear head)."""
        ...


class FlameArkitHead:
    """A FLAME-format head with a stored ARKit table (the open head), read through an embedding."""

    def __init__(self, model: FaceModel, mapping: ArkitMapping, embedding: LandmarkEmbedding, name: str = "",
                 key: str = "") -> None:
        self.model, self.mapping, self.embedding = model, mapping, embedding
        self.rotation_units = [u for u, n in enumerate(ARKIT_NAMES) if ARKIT_TO_PARAMS[n][0] == "pose"]
        self.name = name or model.name
        self.key = key or self.name
        self.neutral = self.landmarks(np.zeros(N_UNITS))
        self.unit_basis = np.stack([self.landmarks(np.eye(N_UNITS)[u]) - self.neutral for u in range(N_UNITS)])
        self.identity_basis = embedding.apply(np.moveaxis(model.shapedirs, 2, 0))

    def jacobian(self, weights: np.ndarray, identity: np.ndarray) -> np.ndarray:
        """Shape keys and eyelids are linear; joint rotations (and their pose correctives) are
        differentiated numerically at `weights`, one-sided into [0, 1]."""
        out = self.unit_basis.copy()
        here = self.landmarks(weights, identity)
        for u in self.rotation_units:
            step = -FD_STEP if weights[u] + FD_STEP > 1.0 else FD_STEP
            moved = np.array(weights, dtype=np.float64)
            moved[u] += step
            out[u] = (self.landmarks(moved, identity) - here) / step
        return out

    def landmarks(self, weights: np.ndarray, identity: np.ndarray | None = None) -> np.ndarray:
        from inference.head.forward import forward

        params = self.mapping.to_params(np.asarray(weights, dtype=np.float64))
        out = forward(self.model, shape=identity, expression=params.expression, pose=params.pose,
                      eyelids=params.eyelids)
        return self.embedding.apply(out.vertices)


def open_head() -> FlameArkitHead:
    """The shipped open head: vertex i is MediaPipe landmark i."""
    model, mapping = load_default_head()
    key = hashlib.sha256(HEAD_FILE.read_bytes()).hexdigest()
    return FlameArkitHead(model, mapping, LandmarkEmbedding.vertex_ids(np.arange(N_LANDMARKS)), "FIELDS open head", key)


def _fit(head: LandmarkHead, observed: np.ndarray, weights: np.ndarray | None, rounds: int = 6,
         tolerance_m: float = 1e-5) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Gauss-Newton on units (in [0, 1], re-linearised where they are not linear, e.g. jaw and eye
    rotations), identity and a similarity: the product's one fit (`inference.head.shape_fit`)."""
    units, identity, current = fit_landmarks(head.landmarks, head.identity_basis, observed, weights,
                                             n_units=N_UNITS, jacobian=head.jacobian, rounds=rounds,
                                             tolerance_m=tolerance_m)
    return units, identity, region_residuals(observed, current)


def fit_photo(head: LandmarkHead, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Units in [0, 1], identity, and region residuals (mm) of the head's best fit to one face."""
    return _fit(head, observed, None)


def drive_photo(head: LandmarkHead, observed: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Region residuals (mm) of the head driven by `weights`, identity solved for this face."""
    return _fit(head, observed, np.clip(np.asarray(weights, dtype=np.float64), 0.0, 1.0))[2]
