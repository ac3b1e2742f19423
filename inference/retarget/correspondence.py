"""Correspondences between two face models: the same N surface points on both.

A `SurfacePoints` set is N points on a model's mesh (three vertex ids and barycentric weights
each, labelled by the MediaPipe landmark they stand for); a `Correspondence` pairs a source and a
target set by label. Points come from the open head's own layout (vertex i = MediaPipe landmark
i), FLAME's `mediapipe_landmark_embedding.npz` (read with `allow_pickle=False`, every problem a
`LandmarkEmbeddingError` naming the file) or a shared vertex order. Pure numpy; must not import bpy.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LandmarkEmbeddingError
from ..head.face_model import FaceModel
from ..perception.landmarks import N_LANDMARKS


@dataclass(frozen=True)
class SurfacePoints:
    """Points on a mesh, each a barycentric combination of three vertices, named by `labels`
    (MediaPipe landmark ids for landmark embeddings, vertex ids for vertex correspondences)."""

    vertices: np.ndarray  # (N, 3) int64 vertex ids (a vertex point repeats its id)
    weights: np.ndarray  # (N, 3) float64 barycentric coordinates
    labels: np.ndarray  # (N,) int64

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.vertices.shape != (n, 3) or self.weights.shape != (n, 3) or n == 0:
            raise ValueError(f"surface points need (N, 3) vertices and weights and N labels, N > 0; got "
                             f"{self.vertices.shape}, {self.weights.shape}, {self.labels.shape}")
        if len(np.unique(self.labels)) != n:
            raise ValueError("surface-point labels must be distinct")

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def at_vertices(cls, ids: Iterable[int] | np.ndarray, labels: Iterable[int] | np.ndarray | None = None
                    ) -> SurfacePoints:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        weights = np.zeros((len(ids), 3))
        weights[:, 0] = 1.0
        return cls(np.repeat(ids[:, None], 3, axis=1), weights,
                   ids.copy() if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1))

    def positions(self, vertices: np.ndarray) -> np.ndarray:
        """The points (N, 3) on a mesh with these vertex positions (V, 3)."""
        return np.einsum("nk,nkd->nd", self.weights, vertices[self.vertices])

    def select(self, labels: np.ndarray) -> SurfacePoints:
        """The points named `labels`, in that order (every label must be present)."""
        order = {int(label): i for i, label in enumerate(self.labels)}
        rows = np.array([order[int(label)] for label in labels], dtype=np.int64)
        return SurfacePoints(self.vertices[rows], self.weights[rows], self.labels[rows])

    def check(self, model: FaceModel, role: str) -> None:
        if self.vertices.min() < 0 or self.vertices.max() >= model.n_verts:
            raise ValueError(f"the {role} points refer to vertices outside 0..{model.n_verts - 1} of "
                             f"'{model.name}'")


def open_head_landmarks(ids: Iterable[int] | np.ndarray | None = None) -> SurfacePoints:
    """MediaPipe landmarks on the open head, where vertex i is landmark i (all 478 by default)."""
    ids = np.arange(N_LANDMARKS) if ids is None else np.asarray(ids, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= N_LANDMARKS):
        raise ValueError(f"MediaPipe landmark ids run from 0 to {N_LANDMARKS - 1}")
    return SurfacePoints.at_vertices(ids)


EMBEDDING_KEYS = ("lmk_face_idx", "lmk_b_coords", "landmark_indices")


def load_mediapipe_embedding(path: str | os.PathLike[str], model: FaceModel) -> SurfacePoints:
    """FLAME's `mediapipe_landmark_embedding.npz` (metrical-tracker, SMIRK) as points on `model`:
    `lmk_face_idx` (N,) faces of `model.faces`, `lmk_b_coords` (N, 3) barycentric coordinates,
    `landmark_indices` (N,) the MediaPipe ids they stand for. Raises LandmarkEmbeddingError."""
    path = Path(path)
    if not path.is_file():
        raise LandmarkEmbeddingError(path, "does not exist" if not path.exists() else "is not a file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise LandmarkEmbeddingError(path, "is a single array, not an .npz archive of named arrays")
        with loaded as archive:
            missing = [key for key in EMBEDDING_KEYS if key not in archive.files]
            if missing:
                raise LandmarkEmbeddingError(path, f"lacks the key(s) {', '.join(missing)} (it holds "
                                                   f"{', '.join(archive.files) or 'nothing'})")
            faces, bary, ids = (archive[key] for key in EMBEDDING_KEYS)
    except ValueError as exc:  # object arrays would need pickle, which is never allowed
        raise LandmarkEmbeddingError(path, f"holds data that cannot be read safely ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise LandmarkEmbeddingError(path, f"is truncated or not an .npz archive ({exc})") from None

    n = len(faces) if faces.ndim == 1 else -1
    if n <= 0 or bary.shape != (n, 3) or ids.shape != (n,):
        raise LandmarkEmbeddingError(path, f"has arrays of shapes lmk_face_idx {faces.shape}, lmk_b_coords "
                                           f"{bary.shape}, landmark_indices {ids.shape}; expected (N,), (N, 3), (N,)")
    if not (np.issubdtype(faces.dtype, np.integer) and np.issubdtype(ids.dtype, np.integer)):
        raise LandmarkEmbeddingError(path, f"has non-integer indices ({faces.dtype}, {ids.dtype})")
    if not np.issubdtype(bary.dtype, np.floating) or not np.all(np.isfinite(bary)):
        raise LandmarkEmbeddingError(path, "has barycentric coordinates that are not finite numbers")
    if not np.allclose(bary.sum(axis=1), 1.0, atol=1e-3):
        raise LandmarkEmbeddingError(path, "has barycentric coordinates whose rows do not sum to 1")
    faces, ids = faces.astype(np.int64), ids.astype(np.int64)
    if faces.min() < 0 or faces.max() >= len(model.faces):
        raise LandmarkEmbeddingError(path, f"refers to faces outside 0..{len(model.faces) - 1} of '{model.name}' "
                                           f"(it was made for another mesh)")
    if ids.min() < 0 or ids.max() >= N_LANDMARKS or len(np.unique(ids)) != n:
        raise LandmarkEmbeddingError(path, "has landmark_indices that are not distinct MediaPipe ids "
                                           f"0..{N_LANDMARKS - 1}")
    return SurfacePoints(model.faces[faces].astype(np.int64), bary.astype(np.float64), ids)


@dataclass(frozen=True)
class Correspondence:
    """The same N surface points on the source model and on the target model, row for row."""

    source: SurfacePoints
    target: SurfacePoints

    def __post_init__(self) -> None:
        if len(self.source) != len(self.target):
            raise ValueError(f"{len(self.source)} source points but {len(self.target)} target points")

    def __len__(self) -> int:
        return len(self.source)

    @classmethod
    def by_label(cls, source: SurfacePoints, target: SurfacePoints) -> Correspondence:
        """Pair the points both sides name alike (e.g. the MediaPipe ids both embed), in the target's order."""
        common = np.array([label for label in target.labels if label in set(source.labels.tolist())], dtype=np.int64)
        if len(common) == 0:
            raise ValueError("the source and target points share no label")
        return cls(source.select(common), target.select(common))

    @classmethod
    def open_head_to_flame(cls, embedding_path: str | os.PathLike[str], target: FaceModel) -> Correspondence:
        """From the open head (landmark i = vertex i) to a FLAME head through its MediaPipe embedding."""
        return cls.by_label(open_head_landmarks(), load_mediapipe_embedding(embedding_path, target))

    @classmethod
    def between_embeddings(cls, source_embedding: str | os.PathLike[str], source: FaceModel,
                           target_embedding: str | os.PathLike[str], target: FaceModel) -> Correspondence:
        """From one head to another, each through its own MediaPipe landmark embedding (the ICT head
        the encoder is trained for, to a FLAME head)."""
        return cls.by_label(load_mediapipe_embedding(source_embedding, source),
                            load_mediapipe_embedding(target_embedding, target))

    @classmethod
    def shared_vertices(cls, source_ids: Iterable[int] | np.ndarray,
                        target_ids: Iterable[int] | np.ndarray | None = None) -> Correspondence:
        """Vertex `source_ids[i]` of the source is vertex `target_ids[i]` of the target (the same ids
        when the two models share their vertex order)."""
        source_ids = np.asarray(source_ids, dtype=np.int64).reshape(-1)
        target_ids = source_ids if target_ids is None else np.asarray(target_ids, dtype=np.int64).reshape(-1)
        return cls(SurfacePoints.at_vertices(source_ids), SurfacePoints.at_vertices(target_ids, labels=source_ids))
