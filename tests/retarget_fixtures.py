"""Test fixtures for retargeting: re-parameterised copies of a FLAME-format model, and generated
`mediapipe_landmark_embedding.npz` files (FLAME's own cannot be in the repository).

`embed_on_surface` finds, for each query point, the closest point on a mesh as (face, barycentric
coordinates); `open_head_embedding` places the open head's MediaPipe landmarks on another head's
face by fitting the landmark cloud into the target's frontal extent and projecting it onto the
surface, which is what FLAME's file encodes for a real FLAME head.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inference.head.face_model import FaceModel
from inference.perception.blendshapes import LANDMARK_SUBSET


def embed_on_surface(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(face index (N,), barycentric (N, 3)) of a nearest surface point to each of `points`: each
    point's projection onto every triangle's plane, its barycentric coordinates clamped into the
    triangle (close to, not exactly, the nearest point near edges: enough for a fixture)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    e0, e1 = b - a, c - a
    d00, d01, d11 = (e0 * e0).sum(1), (e0 * e1).sum(1), (e1 * e1).sum(1)
    denominator = d00 * d11 - d01 * d01
    face_ids, bary = [], []
    for point in points:
        offset = point - a
        d20, d21 = (offset * e0).sum(1), (offset * e1).sum(1)
        v = np.clip((d11 * d20 - d01 * d21) / denominator, 0.0, 1.0)
        w = np.clip((d00 * d21 - d01 * d20) / denominator, 0.0, 1.0)
        over = np.maximum(v + w, 1.0)
        v, w = v / over, w / over
        distance = np.linalg.norm(a + v[:, None] * e0 + w[:, None] * e1 - point, axis=1)
        best = int(np.argmin(distance))
        face_ids.append(best)
        bary.append([1.0 - v[best] - w[best], v[best], w[best]])
    return np.array(face_ids, dtype=np.uint32), np.array(bary, dtype=np.float64)


def default_embedding_ids(count: int = 105, seed: int = 0) -> np.ndarray:
    """`count` MediaPipe mesh ids below 467 (FLAME's embedding has 105, none on the irises)."""
    candidates = LANDMARK_SUBSET[LANDMARK_SUBSET < 467]
    return np.sort(np.random.default_rng(seed).choice(candidates, count, replace=False)).astype(np.int64)


def open_head_embedding(source_landmarks: np.ndarray, target: FaceModel, ids: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Place MediaPipe landmarks `ids` of the open head (`source_landmarks`, (478, 3)) on the target's
    face: the cloud is centred and scaled into the front 60% of the target's width and height, pushed
    out in front of the surface, then projected onto it."""
    chosen = source_landmarks[ids]
    centre = (chosen.max(0) + chosen.min(0)) / 2
    extent = target.v_template.max(0) - target.v_template.min(0)
    size = chosen.max(0) - chosen.min(0)
    factor = 0.6 * min(extent[0] / size[0], extent[1] / size[1])
    placed = (chosen - centre) * factor
    target_centre = (target.v_template.max(0) + target.v_template.min(0)) / 2
    placed[:, :2] += target_centre[:2]
    # Onto the front of the surface: start from the nearest frontal vertex depth, then project.
    front = target.v_template[target.v_template[:, 2] > target_centre[2]]
    for i, point in enumerate(placed):
        nearest = front[np.argmin(np.linalg.norm(front[:, :2] - point[:2], axis=1))]
        placed[i, 2] = nearest[2]
    return embed_on_surface(target.v_template, target.faces, placed)


def write_embedding(path: Path, face_ids: np.ndarray, bary: np.ndarray, ids: np.ndarray, **override: object) -> Path:
    """An npz laid out as metrical-tracker's mediapipe_landmark_embedding.npz; `override` replaces or adds keys."""
    arrays: dict[str, object] = {"lmk_face_idx": face_ids.astype(np.uint32), "lmk_b_coords": bary.astype(np.float64),
                                 "landmark_indices": ids.astype(np.int64)}
    arrays.update(override)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def bump_basis(vertices: np.ndarray, count: int, seed: int, radius: float = 0.04, amplitude: float = 0.006
               ) -> np.ndarray:
    """`count` local expression-like components (V, 3, count): Gaussian bumps at random vertices moving
    in random directions. The fixture's own expression basis is smooth and of rank 21 at most, which
    cannot hold a mix of 20 components unambiguously; bumps can."""
    rng = np.random.default_rng(seed)
    centres = vertices[rng.choice(len(vertices), count, replace=False)]
    falloff = np.exp(-(np.linalg.norm(vertices[:, None] - centres[None], axis=2) / radius) ** 2)
    return falloff[:, None, :] * rng.normal(0, amplitude, (count, 3)).T[None]


def model_from_arrays(arrays: dict, exprdirs: np.ndarray, n_shape: int = 10, name: str = "fixture") -> FaceModel:
    return FaceModel(
        v_template=np.asarray(arrays["v_template"], dtype=np.float64),
        faces=np.asarray(arrays["f"]).astype(np.int32),
        shapedirs=np.ascontiguousarray(arrays["shapedirs"][:, :, :n_shape]),
        exprdirs=np.ascontiguousarray(exprdirs),
        posedirs=arrays["posedirs"],
        j_regressor=arrays["J_regressor"],
        weights=arrays["weights"],
        eyelids=np.stack([arrays["l_eyelid"], arrays["r_eyelid"]]),
        name=name,
    )


def reparameterised_copy(model: FaceModel, mix: np.ndarray, permutation: np.ndarray) -> FaceModel:
    """The same head with its expression basis mixed (new component j = sum_k old_k mix[k, j]) and its
    vertices reordered: new vertex i is old vertex permutation[i]."""
    inverse = np.argsort(permutation)
    return FaceModel(
        v_template=model.v_template[permutation],
        faces=inverse[model.faces].astype(np.int32),
        shapedirs=model.shapedirs[permutation],
        exprdirs=np.einsum("vdk,kl->vdl", model.exprdirs[permutation], mix),
        posedirs=model.posedirs[permutation],
        j_regressor=model.j_regressor[:, permutation],
        weights=model.weights[permutation],
        eyelids=None if model.eyelids is None else model.eyelids[:, permutation],
        name=model.name + " (re-parameterised)",
    )

