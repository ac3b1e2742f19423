"""Our own MediaPipe landmark embedding of any FLAME-format head: the geometry, without Blender.

The method (issue 11): render the neutral head in a few views, find MediaPipe's 478 landmarks on
each render with our perception, cast each landmark's ray onto the mesh, combine the views'
hits robustly and snap the result onto the surface as a triangle and barycentric coordinates,
in the layout of FLAME's `mediapipe_landmark_embedding.npz`. This module holds every bpy-free
part: the views and pinhole cameras (Blender's conventions, so rays and projections agree with
its renders), how the head is painted so the network sees a face (parts if the file has them,
else skin with painted irises on the eyeballs), combining the hits, snapping, the checks that
turn a failed solve into an `EmbeddingError` naming the file, and the cache file's name and
writer. `fields_addon/landmark_embedding.py` renders and ray-casts. Must not import bpy.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FileProblem
from ..files import write_with
from ..head.appearance import IRIS_DEG, PART_COLOURS, PUPIL, PUPIL_DEG, eye_cone
from ..head.face_model import FaceModel
from ..head.rig import FLAME_TO_BLENDER
from ..perception.landmarks import N_LANDMARKS

N_FACE_MESH = 468  # MediaPipe ids 468..477 are the irises
METHOD_VERSION = 1  # part of the cache file's name: a changed method never reads an old cache
VIEWS = ((0.0, 0.0), (-15.0, 0.0), (15.0, 0.0), (0.0, 10.0), (0.0, -10.0))  # (yaw, pitch) degrees
SIZE, LENS_MM, SENSOR_MM, DISTANCE = 512, 85.0, 36.0, 0.75  # square render; a portrait lens at 75 cm
AGREE = 0.003  # metres: a view's hit this close to the median of all views' hits agrees with it
DEPTH_SLACK = 0.05  # metres: a hit this far behind the network's depth went through the face
MIN_VIEWS = 3  # a face must be found in at least this many views
MIN_AGREEING = 2  # ... and each landmark placed alike by at least this many
MAX_UNSETTLED = 0.05  # the solve fails when more landmarks than this fraction are not
COLOURS = {name: rgba[:3] for name, rgba in PART_COLOURS.items()}  # opaque here: hidden layers are not drawn
# An eyeball is a separate piece of mesh within this of an eye joint (metres): FLAME's eyeballs have
# a 12 mm radius, and ICT's eye joints sit up to 5 mm off their centres.
EYE_RADIUS = 0.02
HIDDEN_PARTS = ("eye_film",)  # see-through layers over the eyes: Workbench would paint them opaque
NOT_HIT = ("eye_film", "lashes")  # rays pass through these to the lid or eye behind
LANDMARK_PARTS = ("skin", "eyes", "iris")  # a landmark sits on one of these, never on teeth or lashes


class EmbeddingError(FileProblem):
    """The automatic landmark embedding of a face-model file could not be computed."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(path, f"{problem}, so its MediaPipe landmark embedding cannot be computed (set a "
                               "landmark embedding file in the add-on's preferences instead)", kind="FLAME file")


@dataclass(frozen=True)
class Appearance:
    """How the head is shown to the network and which triangles the rays and landmarks may use."""

    colours: np.ndarray  # (V, 4) RGBA per vertex
    shown: np.ndarray  # triangle ids rendered
    hit: np.ndarray  # triangle ids a ray may stop on
    surface: np.ndarray  # triangle ids a landmark may be snapped onto


def appearance(model: FaceModel) -> Appearance:
    """Parts coloured as named when the file has them (the ICT head); otherwise skin everywhere and
    the eyeballs (separate pieces of mesh around the eye joints, as in FLAME) painted white with an
    iris and pupil, which the landmark network needs to place the eyes."""
    rgba = np.ones((model.n_verts, 4), np.float32)
    rgba[:, :3] = COLOURS["skin"]
    everything = np.arange(len(model.faces))
    if "face_parts" not in model.extras:
        shell = _eyeball_vertices(model)
        rgba[shell, :3] = COLOURS["eyes"]
        _paint_irises(model, shell, rgba)
        return Appearance(rgba, everything, everything, everything)
    names = [str(n) for n in model.extras["part_names"]]
    parts = model.extras["face_parts"]
    for index, name in enumerate(names):
        rgba[model.faces[parts == index].ravel(), :3] = COLOURS.get(name, (0.5, 0.5, 0.5))
    if "eyes" in names:
        _paint_irises(model, np.unique(model.faces[parts == names.index("eyes")]), rgba)

    def without(excluded: tuple[str, ...]) -> np.ndarray:
        return np.flatnonzero(~np.isin(parts, [names.index(p) for p in excluded if p in names]))

    surface = np.flatnonzero(np.isin(parts, [names.index(p) for p in LANDMARK_PARTS if p in names]))
    return Appearance(rgba, without(HIDDEN_PARTS), without(NOT_HIT), surface if len(surface) else everything)


def _paint_irises(model: FaceModel, shell: np.ndarray, rgba: np.ndarray) -> None:
    rgba[eye_cone(model, shell, IRIS_DEG), :3] = COLOURS["iris"]
    rgba[eye_cone(model, shell, PUPIL_DEG), :3] = PUPIL


def _eyeball_vertices(model: FaceModel) -> np.ndarray:
    """Vertices of the connected pieces of mesh lying wholly within EYE_RADIUS of an eye joint."""
    labels = np.arange(model.n_verts)
    faces = model.faces
    while True:  # label propagation with pointer jumping: each piece ends labelled by its lowest vertex
        lowest = labels[faces].min(axis=1)
        updated = labels.copy()
        np.minimum.at(updated, faces.ravel(), np.repeat(lowest, 3))
        updated = updated[updated]
        if np.array_equal(updated, labels):
            break
        labels = updated
    far = np.min([np.linalg.norm(model.v_template - c, axis=1) for c in model.rest_joints()[3:]], axis=0)
    outside = np.zeros(model.n_verts, bool)
    np.logical_or.at(outside, labels, far > EYE_RADIUS)
    used = np.zeros(model.n_verts, bool)
    used[faces.ravel()] = True
    return np.flatnonzero(~outside[labels] & used)


def face_centre(model: FaceModel) -> np.ndarray:
    """Blender-space middle of the face, between the eyes and the chin: where the cameras aim."""
    eyes = model.rest_joints()[3:].mean(axis=0)
    return FLAME_TO_BLENDER @ (eyes + np.array([0.0, -0.035, 0.0]))


def camera_matrix(target: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
    """World matrix (4, 4) of a camera on a sphere around `target`, Blender's camera axes (looking
    down its -Z, +Y up); yaw turns toward the subject's left, pitch looks from above."""
    y, p = math.radians(yaw), math.radians(pitch)
    tilt = math.pi / 2 - p  # Euler XYZ (tilt, 0, y), as Blender composes it: Rz @ Rx
    rx = np.array([[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)], [0, math.sin(tilt), math.cos(tilt)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    matrix = np.eye(4)
    matrix[:3, :3] = rz @ rx
    matrix[:3, 3] = target + DISTANCE * np.array([math.sin(y) * math.cos(p), -math.cos(y) * math.cos(p), math.sin(p)])
    return matrix


def _focal() -> float:
    return LENS_MM / SENSOR_MM * SIZE


def project(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Image pixels (N, 2) of Blender-space points (x right, y down; 0 at the image's edge)."""
    world_to_camera = np.linalg.inv(matrix)
    local = points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    return np.stack([SIZE / 2 + _focal() * local[:, 0] / -local[:, 2],
                     SIZE / 2 - _focal() * local[:, 1] / -local[:, 2]], 1)


def rays(matrix: np.ndarray, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The camera's centre (3,) and unit directions (N, 3) through image pixels (N, 2)."""
    local = np.stack([(pixels[:, 0] - SIZE / 2) / _focal(), -(pixels[:, 1] - SIZE / 2) / _focal(),
                      -np.ones(len(pixels))], 1)
    directions = local @ matrix[:3, :3].T
    return matrix[:3, 3], directions / np.linalg.norm(directions, axis=1, keepdims=True)


def along_rays(origin: np.ndarray, directions: np.ndarray, distances: np.ndarray, depth_px: np.ndarray
               ) -> np.ndarray:
    """One view's hits (N, 3; NaN for a miss) from its rays' first-hit distances (N,; NaN for a
    miss) and the landmarks' depths (N,; MediaPipe's z, in image pixels). A ray through the closed
    lips' seam (FLAME has no teeth behind it) finds the far side of the head: a hit beyond the depth
    the landmark network gives by more than DEPTH_SLACK is replaced by the ray's point at that
    depth, which `snap` then puts on the nearest lip. Only that side: the network's depths are too
    rough to judge a hit in front of them (on the silhouette they are centimetres off)."""
    per_pixel = DISTANCE / _focal()  # metres per image pixel at the face
    offset = np.nanmedian(distances - depth_px * per_pixel)
    expected = offset + depth_px * per_pixel
    settled = np.where(distances > expected + DEPTH_SLACK, expected, distances)  # a miss stays NaN
    return origin + settled[:, None] * directions


def combine(hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Views' hits (n_views, N, 3; NaN where a view found no face or the ray missed) to one point
    each: the mean of the hits within AGREE of their median, robust to a view that misplaced a
    landmark. Returns the points (N, 3; NaN where no view hit) and how many views agreed (N,)."""
    with np.errstate(all="ignore"):
        seen = np.isfinite(hits).all(axis=2)
        median = np.full(hits.shape[1:], np.nan)
        some = seen.any(axis=0)
        median[some] = np.nanmedian(hits[:, some], axis=0)
        close = seen & (np.linalg.norm(hits - median, axis=2) < AGREE)
    agreeing = close.sum(axis=0)
    total = np.where(close[..., None], hits, 0.0).sum(axis=0)
    points = np.where(agreeing[:, None] > 0, total / np.maximum(agreeing, 1)[:, None], median)
    return points, agreeing


def snap(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, candidates: int = 48
         ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest point of the surface to each point: (triangle ids (N,) into `faces`, barycentric
    coordinates (N, 3)). Exact over the `candidates` triangles with the nearest centroids."""
    corners = vertices[faces]  # (F, 3, 3)
    centroids = corners.mean(axis=1)
    k = min(candidates, len(faces))
    near = np.argpartition(((points[:, None] - centroids[None]) ** 2).sum(-1), k - 1, axis=1)[:, :k]
    bary = _closest_barycentric(corners[near], points[:, None, :])  # (N, k, 3)
    found = np.einsum("nkc,nkcd->nkd", bary, corners[near])
    best = np.argmin(((found - points[:, None]) ** 2).sum(-1), axis=1)
    rows = np.arange(len(points))
    return near[rows, best], bary[rows, best]


def _closest_barycentric(tri: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Barycentric coordinates of the closest point of triangles `tri` (..., 3, 3) to `p` (..., 3):
    the plane's projection when inside, else the nearest point of the nearest edge."""
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    best = None
    for (i, j), (u, v) in (((0, 1), (a, b)), ((1, 2), (b, c)), ((2, 0), (c, a))):
        edge = v - u
        t = np.clip(((p - u) * edge).sum(-1) / np.maximum((edge * edge).sum(-1), 1e-30), 0.0, 1.0)
        coords = np.zeros(t.shape + (3,))
        coords[..., i], coords[..., j] = 1.0 - t, t
        distance = (((u + t[..., None] * edge) - p) ** 2).sum(-1)
        best = (coords, distance) if best is None else (np.where((distance < best[1])[..., None], coords, best[0]),
                                                        np.minimum(distance, best[1]))
    assert best is not None
    e0, e1, w = b - a, c - a, p - a
    d00, d01, d11 = (e0 * e0).sum(-1), (e0 * e1).sum(-1), (e1 * e1).sum(-1)
    d20, d21 = (w * e0).sum(-1), (w * e1).sum(-1)
    denominator = d00 * d11 - d01 * d01
    with np.errstate(all="ignore"):
        v = (d11 * d20 - d01 * d21) / denominator
        u = (d00 * d21 - d01 * d20) / denominator
    inside = (denominator > 1e-30) & (v >= 0) & (u >= 0) & (u + v <= 1)
    plane = np.stack([1 - u - v, v, u], axis=-1)
    return np.where(inside[..., None], np.nan_to_num(plane), best[0])


def solve(model: FaceModel, hits: np.ndarray, surface: np.ndarray, path: str | os.PathLike[str]
          ) -> dict[str, np.ndarray]:
    """The embedding (FLAME's `mediapipe_landmark_embedding.npz` keys, all 478 landmarks) from the
    views' hits (n_views, 478, 3, Blender space; NaN rows for a view without a face); raises
    EmbeddingError naming `path` when too few views found the face or the views disagree."""
    found = int(np.isfinite(hits).all(axis=2).any(axis=1).sum())
    if found == 0:
        raise EmbeddingError(path, "has no face shape our face detector recognises: no face was found on "
                                   f"any of {len(hits)} renders of its template")
    if found < MIN_VIEWS:
        raise EmbeddingError(path, f"shows a face on only {found} of {len(hits)} renders of its template "
                                   f"(at least {MIN_VIEWS} are needed)")
    points, agreeing = combine(hits)
    unsettled = int((agreeing < MIN_AGREEING).sum())
    if unsettled > MAX_UNSETTLED * N_LANDMARKS:
        raise EmbeddingError(path, f"gives renders that disagree on where {unsettled} of {N_LANDMARKS} "
                                   "landmarks sit on its template")
    missing = int((~np.isfinite(points).all(axis=1)).sum())
    if missing:
        raise EmbeddingError(path, f"gives renders on which {missing} landmarks hit its template in no view")
    vertices = model.v_template @ FLAME_TO_BLENDER.T
    triangles, coords = snap(vertices, model.faces[surface], points)
    return {"lmk_face_idx": surface[triangles].astype(np.int64), "lmk_b_coords": coords,
            "landmark_indices": np.arange(N_LANDMARKS, dtype=np.int64)}


def check_shape(model: FaceModel, path: str | os.PathLike[str]) -> None:
    """Refuse a template that cannot show a face before anything is rendered."""
    extent = np.ptp(model.v_template, axis=0)
    corners = model.v_template[model.faces]
    area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1).sum() / 2
    if not (np.all(extent > 0.02) and np.all(extent < 2.0)) or area < 1e-3:
        raise EmbeddingError(path, "has no face shape: its template spans "
                                   f"{' x '.join(f'{e * 100:.1f}' for e in extent)} cm with {area * 1e4:.1f} cm² "
                                   "of surface, not a head in metres")


def cache_file(folder: str | os.PathLike[str], sha256: str) -> Path:
    return Path(folder) / f"flame_{sha256}_mediapipe_embedding_v{METHOD_VERSION}.npz"


def write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomically: a reader never sees half an embedding."""
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    write_with(path, save)
