"""Generate the open default head, `inference/models/fields_head.npz`, from MediaPipe's canonical face.

One command (`.venv/bin/python tools/make_default_head.py`, or `make head`) rebuilds the committed
file from the Apache-2.0 canonical mesh and this code alone: no hand-edited binary. Steps: read the
canonical face (centimetres, MediaPipe axes, which are FLAME's: +x subject's left, +y up, +z out of
the face), open the eye and mouth holes, add eyeballs with iris rings (vertices 468-477 are
MediaPipe's iris landmarks) and a tongue, calibrate the neutral against MediaPipe's blendshape
network, place FLAME's five joints (regressor) and skinning weights, sculpt the ARKit expression
shapes, eyelid shapes and identity basis as smooth biharmonic deformations from landmark handles,
calibrate each unit's amplitude against the network, then write the file atomically in metres.
Development tool: it may use scipy; the add-on never imports it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.files import write_with  # noqa: E402
from inference.head.default_head import (  # noqa: E402
    ARKIT_TO_PARAMS,
    EXPRESSION_UNITS,
    HEAD_FILE,
    N_LANDMARKS,
    project_frontal,
)
from inference.head.face_model import JOINT_NAMES  # noqa: E402
from inference.perception.blendshapes import ARKIT_NAMES, MEDIAPIPE_NAMES, BlendshapeNetwork  # noqa: E402
from inference.perception.geometry import load_canonical_face  # noqa: E402

CM = 0.01  # the canonical mesh is in centimetres; FLAME is in metres

# ---------------------------------------------------------------------------------------------
# MediaPipe landmark groups, written for the subject's LEFT side (+x); the right side is mirrored.
EYE_UPPER = [263, 466, 388, 387, 386, 385, 384, 398, 362]  # outer corner -> inner corner
EYE_LOWER = [263, 249, 390, 373, 374, 380, 381, 382, 362]
BROW_UPPER = [300, 293, 334, 296, 336]  # outer -> inner
BROW_LOWER = [276, 283, 282, 295, 285]
LIP_UPPER_OUTER = [291, 409, 270, 269, 267, 0]  # corner -> middle
LIP_LOWER_OUTER = [291, 375, 321, 405, 314, 17]
LIP_UPPER_INNER = [308, 415, 310, 311, 312, 13]
LIP_LOWER_INNER = [308, 324, 318, 402, 317, 14]
NOSE_WING = [278, 294, 327, 460, 279, 331, 358, 344]
CHEEK = [280, 330, 266, 425, 411, 352, 346, 347, 329, 348, 349, 350, 357]
CHIN = [152, 175, 199, 200, 18, 428, 262, 396, 369, 400, 377]
FOREHEAD_INNER = [9, 151, 108, 337, 336, 296, 299, 69]
JOINT_SOURCES = {"jaw": [93, 323, 234, 454], "neck": [58, 288, 132, 361], "root": [58, 288, 172, 397]}

EYE_RADIUS = 1.2  # cm, a real eyeball is about 24 mm across
IRIS_RING = 16  # vertices around each iris disc; 4 of them are MediaPipe's contour landmarks


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


# ---------------------------------------------------------------------------------------------
# Mesh assembly


@dataclass
class Head:
    verts: np.ndarray  # (V, 3) cm
    faces: np.ndarray  # (F, 3)
    n_face: int  # 468 canonical vertices
    eyes: dict[str, np.ndarray]  # "L"/"R" -> vertex ids of eyeball + iris (rigid, eye joint)
    eye_centres: dict[str, np.ndarray]
    tongue: np.ndarray  # vertex ids (rigid with the jaw)
    mirror: np.ndarray  # (V,) index of each vertex's mirror image


def mirror_ids(ids: list[int], mirror: np.ndarray) -> list[int]:
    return [int(mirror[i]) for i in ids]


def canonical_mirror(verts: np.ndarray) -> np.ndarray:
    flipped = verts * [-1, 1, 1]
    dist = np.linalg.norm(verts[:, None] - flipped[None], axis=2)
    mirror = dist.argmin(axis=1)
    assert dist.min(axis=1).max() < 1e-4, "the canonical face is expected to be exactly symmetric"
    return mirror


def open_holes(faces: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Drop the triangles that close the eyes and the mouth: the lids and lips must part."""
    holes = []
    for ring in (EYE_UPPER + EYE_LOWER, LIP_UPPER_INNER + LIP_LOWER_INNER):
        holes.append(set(ring) | set(mirror_ids(ring, mirror)))
    keep = [not any(set(tri) <= hole for hole in holes) for tri in faces.tolist()]
    return faces[np.array(keep)]


def uv_sphere(centre: np.ndarray, radius: float, n_lat: int = 8, n_lon: int = 14) -> tuple[np.ndarray, np.ndarray]:
    """Sphere with its poles on the z axis (the gaze); latitudes are symmetric so the vertex mean is
    the centre, which is how the eye joint is regressed."""
    lat = np.linspace(0, np.pi, n_lat + 2)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    ring = np.stack([np.sin(la) * np.cos(lo), np.sin(la) * np.sin(lo), np.cos(la)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 0, 1]], ring, [[0, 0, -1]]]) * radius + centre
    idx = lambda r, c: 1 + r * n_lon + (c % n_lon)  # noqa: E731
    faces = []
    for c in range(n_lon):
        faces.append([0, idx(0, c), idx(0, c + 1)])
        faces.append([len(verts) - 1, idx(n_lat - 1, c + 1), idx(n_lat - 1, c)])
    for r in range(n_lat - 1):
        for c in range(n_lon):
            faces.append([idx(r, c), idx(r + 1, c), idx(r + 1, c + 1)])
            faces.append([idx(r, c), idx(r + 1, c + 1), idx(r, c + 1)])
    return verts, np.array(faces)


def iris_disc(centre: np.ndarray, radius: float, iris_radius: float) -> np.ndarray:
    """Centre then IRIS_RING points of an iris disc just in front of the eyeball. Ring entries 0, 4,
    8, 12 are MediaPipe's contour landmarks in its order for both eyes: image right (+x), top, image
    left, bottom. (The referee prefers this to the mirrored order: the neutral head's gaze bias drops
    from 0.18 to 0.14 with it.)"""
    depth = np.sqrt(radius**2 - iris_radius**2) + 0.04
    angles = np.arange(IRIS_RING) * 2 * np.pi / IRIS_RING
    ring = np.stack([np.cos(angles) * iris_radius, np.sin(angles) * iris_radius, np.full(IRIS_RING, depth)], -1)
    return np.concatenate([[[0, 0, radius + 0.06]], ring]) + centre


def ellipsoid(centre: np.ndarray, radii: np.ndarray, n_lat: int = 6, n_lon: int = 12) -> tuple[np.ndarray, np.ndarray]:
    verts, faces = uv_sphere(np.zeros(3), 1.0, n_lat, n_lon)
    return verts * radii + centre, faces


@dataclass(frozen=True)
class Calibration:
    """Neutral calibration: how far the canonical face is changed so the referee reads neutral."""

    upper_lid: float = 0.15  # cm, upper eyelid raised at its middle
    lower_lid: float = 0.10  # cm, lower eyelid lowered at its middle
    lip_close: float = 1.0  # fraction of the canonical 5.5 mm lip gap closed
    brow_raise: float = 0.1  # cm
    iris_height: float = 0.0  # cm, iris centre above the eye opening's middle
    iris_radius: float = 0.55  # cm


def build_head(canonical: np.ndarray, triangles: np.ndarray, neutral_offsets: np.ndarray, cal: Calibration) -> Head:
    """Assemble the head around a (calibrated) canonical face: eyeballs, irises, tongue."""
    face = canonical + neutral_offsets
    mirror468 = canonical_mirror(canonical)
    faces = [open_holes(triangles, mirror468)]
    verts = [face]
    # Iris landmarks first (468-472 right eye, 473-477 left eye), then the rest of each disc.
    eye_parts: dict[str, list[np.ndarray]] = {}
    centres = {}
    for side, _sign in (("R", -1.0), ("L", 1.0)):
        upper = EYE_UPPER if side == "L" else mirror_ids(EYE_UPPER, mirror468)
        lower = EYE_LOWER if side == "L" else mirror_ids(EYE_LOWER, mirror468)
        contour = face[upper + lower]
        centre = np.array(
            [
                (face[upper[0], 0] + face[upper[-1], 0]) / 2,
                (contour[:, 1].max() + contour[:, 1].min()) / 2 + cal.iris_height,
                contour[:, 2].max() + 0.12 - EYE_RADIUS,
            ]
        )
        centres[side] = centre
        disc = iris_disc(centre, EYE_RADIUS, cal.iris_radius)
        eye_parts[side] = [disc]
    base = len(face)
    landmark_rows = []
    for side in ("R", "L"):
        disc = eye_parts[side][0]
        landmark_rows.append(disc[[0, 1, 1 + IRIS_RING // 4, 1 + IRIS_RING // 2, 1 + 3 * IRIS_RING // 4]])
    verts += landmark_rows
    n = base + 10
    eyes: dict[str, list[int]] = {"R": list(range(base, base + 5)), "L": list(range(base + 5, base + 10))}
    ring_ids: dict[str, list[int]] = {}
    for side in ("R", "L"):
        disc = eye_parts[side][0]
        others = [k for k in range(1, IRIS_RING + 1) if (k - 1) % (IRIS_RING // 4) != 0]
        verts.append(disc[others])
        ring = []
        landmark_base = eyes[side][0]
        for k in range(1, IRIS_RING + 1):
            if (k - 1) % (IRIS_RING // 4) == 0:
                ring.append(landmark_base + 1 + (k - 1) // (IRIS_RING // 4))
            else:
                ring.append(n + others.index(k))
        ring_ids[side] = ring
        eyes[side] += list(range(n, n + len(others)))
        n += len(others)
    for side in ("R", "L"):
        centre_id, ring = eyes[side][0], ring_ids[side]
        for k in range(IRIS_RING):
            a, b = ring[k], ring[(k + 1) % IRIS_RING]
            faces.append(np.array([[centre_id, a, b]]))
    for side in ("R", "L"):
        sphere, sphere_faces = uv_sphere(centres[side], EYE_RADIUS)
        verts.append(sphere)
        faces.append(sphere_faces + n)
        eyes[side] += list(range(n, n + len(sphere)))
        n += len(sphere)
    # The tongue rests behind the closed lips, on the jaw.
    lips = face[LIP_LOWER_INNER]
    tongue_centre = np.array([0.0, lips[:, 1].min() - 0.75, lips[:, 2].max() - 2.9])
    tongue, tongue_faces = ellipsoid(tongue_centre, np.array([1.7, 0.45, 2.0]))
    verts.append(tongue)
    faces.append(tongue_faces + n)
    tongue_ids = np.arange(n, n + len(tongue))
    n += len(tongue)

    all_verts = np.concatenate(verts)
    all_faces = np.concatenate(faces).astype(np.int64)
    fix_winding(all_verts, all_faces, range(len(faces[0]), len(faces[0]) + 2 * IRIS_RING))
    flipped = all_verts * [-1, 1, 1]
    dist = np.linalg.norm(all_verts[:, None] - flipped[None], axis=2)
    mirror = dist.argmin(axis=1)
    assert dist.min(axis=1).max() < 1e-6, "the head must be exactly symmetric"
    return Head(all_verts, all_faces, len(face), {s: np.array(v) for s, v in eyes.items()}, centres, tongue_ids, mirror)


def fix_winding(verts: np.ndarray, faces: np.ndarray, rows: range) -> None:
    """Make the iris fans face +z (out of the face)."""
    for r in rows:
        a, b, c = verts[faces[r]]
        if np.cross(b - a, c - a)[2] < 0:
            faces[r] = faces[r][[0, 2, 1]]


# ---------------------------------------------------------------------------------------------
# Smooth deformations of the face surface


class Sculptor:
    """Biharmonic deformation of the face mesh (vertices 0..467): handle vertices get prescribed
    displacements, vertices farther than `radius` (geodesic, along the opened surface, so the lips
    and eyelids do not drag each other) stay put, and the rest minimise the bi-Laplacian energy:
    smooth, wide falloff like skin over muscle."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray, pinned: list[int]) -> None:
        n = len(verts)
        faces = faces[(faces < n).all(axis=1)]
        rows, cols, vals = [], [], []
        area = np.zeros(n)
        for a, b, c in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
            i, j, k = faces[:, a], faces[:, b], faces[:, c]
            u, v = verts[i] - verts[k], verts[j] - verts[k]
            cot = np.einsum("ij,ij->i", u, v) / np.maximum(np.linalg.norm(np.cross(u, v), axis=1), 1e-12)
            cot = np.clip(cot, 0.05, 10.0) / 2  # clamped: the canonical mesh has a few slivers
            rows += [i, j]
            cols += [j, i]
            vals += [cot, cot]
        tri_area = (
            np.linalg.norm(
                np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]]), axis=1
            )
            / 2
        )
        for col in range(3):
            np.add.at(area, faces[:, col], tri_area / 3)
        weights = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        weights = weights.toarray()
        laplacian = np.diag(weights.sum(axis=1)) - weights
        self.energy = laplacian.T @ np.diag(1.0 / np.maximum(area, 1e-6)) @ laplacian
        edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        lengths = np.linalg.norm(verts[edges[:, 0]] - verts[edges[:, 1]], axis=1)
        self.graph = coo_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
        self.graph = self.graph.maximum(self.graph.T)
        self.pinned = list(pinned)
        self.n = n

    def solve(self, handles: dict[int, np.ndarray], radius: float) -> np.ndarray:
        ids = np.array(sorted(handles))
        values = np.array([handles[i] for i in ids], dtype=np.float64)
        distance = dijkstra(self.graph, indices=ids, min_only=True)
        fixed = np.zeros(self.n, dtype=bool)
        fixed[distance > radius] = True
        fixed[self.pinned] = True
        known = np.zeros((self.n, 3))
        fixed[ids] = True
        known[ids] = values
        free = ~fixed
        field = known.copy()
        if free.any():
            field[free] = -np.linalg.solve(
                self.energy[np.ix_(free, free)], self.energy[np.ix_(free, fixed)] @ known[fixed]
            )
        return field


def handle_set(*groups: tuple[list[int], object]) -> dict[int, np.ndarray]:
    """Merge (ids, displacement) groups; a displacement is one vector or one vector per id."""
    out: dict[int, np.ndarray] = {}
    for ids, disp in groups:
        disp = np.asarray(disp, dtype=np.float64)
        rows = np.broadcast_to(disp, (len(ids), 3)) if disp.ndim == 1 else disp
        for i, row in zip(ids, rows, strict=True):
            out[int(i)] = row.copy()
    return out


def profile(n: int) -> np.ndarray:
    """0 at both ends of a contour, 1 in the middle (eyelids)."""
    return np.sin(np.linspace(0, np.pi, n))


def lip_profile(corner: float, middle: float) -> np.ndarray:
    """Weights along a half lip contour from the corner (index 0) to the middle (index 5)."""
    return np.linspace(corner, middle, 6)


def mirror_field(field: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    return field[mirror] * [-1, 1, 1]


def symmetrise(field: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    return (field + mirror_field(field, mirror)) / 2


# ---------------------------------------------------------------------------------------------
# Neutral calibration: the raw canonical face reads as looking down with lowered brows, because
# its eyes are narrower than real ones and its lips 5.5 mm apart.


def both(ids: list[int], mirror: np.ndarray) -> list[int]:
    return list(ids) + mirror_ids(ids, mirror)


def neutral_basis(sculptor: Sculptor, face: np.ndarray, mirror: np.ndarray) -> dict[str, np.ndarray]:
    up = np.array([0.0, 1.0, 0.0])
    lid = profile(len(EYE_UPPER))[:, None] * up
    basis = {
        "upper_lid": sculptor.solve(handle_set((both(EYE_UPPER, mirror), np.vstack([lid, lid]))), 1.4),
        "lower_lid": sculptor.solve(handle_set((both(EYE_LOWER, mirror), -np.vstack([lid, lid]))), 1.4),
        "brow_raise": sculptor.solve(handle_set((both(BROW_UPPER + BROW_LOWER, mirror), up)), 2.5),
    }
    upper, lower = both(LIP_UPPER_INNER[1:], mirror), both(LIP_LOWER_INNER[1:], mirror)
    gap = face[upper, 1] - face[lower, 1]
    corners = both(LIP_UPPER_INNER[:1] + LIP_UPPER_OUTER[:1], mirror)
    basis["lip_close"] = sculptor.solve(
        handle_set((upper, -gap[:, None] / 2 * up), (lower, gap[:, None] / 2 * up), (corners, np.zeros(3))), 1.6
    )
    return basis


def eye_centre(face: np.ndarray, mirror: np.ndarray, side: str, cal: Calibration) -> np.ndarray:
    upper = EYE_UPPER if side == "L" else mirror_ids(EYE_UPPER, mirror)
    lower = EYE_LOWER if side == "L" else mirror_ids(EYE_LOWER, mirror)
    contour = face[upper + lower]
    return np.array(
        [
            (face[upper[0], 0] + face[upper[-1], 0]) / 2,
            (contour[:, 1].max() + contour[:, 1].min()) / 2 + cal.iris_height,
            contour[:, 2].max() + 0.12 - EYE_RADIUS,
        ]
    )


def neutral_face(canonical: np.ndarray, basis: dict[str, np.ndarray], cal: Calibration) -> np.ndarray:
    return canonical + sum(getattr(cal, key) * field for key, field in basis.items())


def neutral_landmarks(face: np.ndarray, mirror: np.ndarray, cal: Calibration) -> np.ndarray:
    points = [face]
    for side, _sign in (("R", -1.0), ("L", 1.0)):
        disc = iris_disc(eye_centre(face, mirror, side, cal), EYE_RADIUS, cal.iris_radius)
        points.append(disc[[0, 1, 1 + IRIS_RING // 4, 1 + IRIS_RING // 2, 1 + 3 * IRIS_RING // 4]])
    return np.concatenate(points) * CM


def calibrate_neutral(
    network: BlendshapeNetwork, canonical: np.ndarray, basis: dict[str, np.ndarray], mirror: np.ndarray
) -> Calibration:
    keys = ("upper_lid", "lower_lid", "lip_close", "brow_raise", "iris_height", "iris_radius")
    bounds = {
        "upper_lid": (0.0, 0.45),
        "lower_lid": (-0.1, 0.2),
        "lip_close": (0.0, 1.0),
        "brow_raise": (0.0, 0.4),
        "iris_height": (-0.15, 0.15),
        "iris_radius": (0.45, 0.7),
    }

    def make(x: np.ndarray) -> Calibration:
        return Calibration(**{k: float(np.clip(v, *bounds[k])) for k, v in zip(keys, x, strict=True)})

    def cost(x: np.ndarray) -> float:
        cal = make(x)
        scores = network.scores(project_frontal(neutral_landmarks(neutral_face(canonical, basis, cal), mirror, cal)))[
            1:
        ]
        # A soft maximum (log-sum-exp at 0.02): every unit near the top is pushed down together.
        return float(0.02 * np.log(np.exp(scores / 0.02).sum()))

    best = None
    for start in (
        Calibration(),
        Calibration(0.3, 0.0, 0.8, 0.2, 0.05, 0.6),
        Calibration(0.2, 0.05, 1.0, 0.3, -0.05, 0.5),
    ):
        x0 = np.array([getattr(start, k) for k in keys])
        result = minimize(
            cost,
            x0,
            method="Powell",
            bounds=[bounds[k] for k in keys],
            options={"maxiter": 3000, "xtol": 1e-3, "ftol": 1e-5},
        )
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    return make(best.x)


# ---------------------------------------------------------------------------------------------
# Joints and skinning


def jaw_weights(sculptor: Sculptor, face: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Harmonic blend between the skull (upper lip, nose, everything above the cheekbones) and the
    mandible (lower lip, chin, lower jaw line); with the mouth opened the lips do not share weight."""
    n = len(face)
    one = set(both(LIP_LOWER_INNER[1:] + LIP_LOWER_OUTER[1:], mirror)) | set(np.flatnonzero(face[:, 1] < -6.3))
    zero = set(both(LIP_UPPER_INNER[1:] + LIP_UPPER_OUTER[1:], mirror)) | set(np.flatnonzero(face[:, 1] > -1.2))
    laplacian = -(sculptor.graph > 0).astype(float).toarray()
    np.fill_diagonal(laplacian, -laplacian.sum(axis=1))
    fixed = np.zeros(n, dtype=bool)
    value = np.zeros(n)
    fixed[list(one)] = True
    value[list(one)] = 1.0
    fixed[list(zero)] = True
    free = ~fixed
    value[free] = np.linalg.solve(laplacian[np.ix_(free, free)], -laplacian[np.ix_(free, fixed)] @ value[fixed])
    return smoothstep(value)


def regressor_and_weights(head: Head, w_jaw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(head.verts)
    regressor = np.zeros((5, n))
    for joint, ids in JOINT_SOURCES.items():
        k = JOINT_NAMES.index(joint)
        if joint == "jaw":  # about a centimetre below the tragus line, in front of the ear: the TMJ
            regressor[k, ids[:2]] = 0.375
            regressor[k, ids[2:]] = 0.125
        else:
            regressor[k, ids] = 1.0 / len(ids)
    weights = np.zeros((n, 5))
    weights[: head.n_face, JOINT_NAMES.index("neck")] = 1 - w_jaw
    weights[: head.n_face, JOINT_NAMES.index("jaw")] = w_jaw
    weights[head.tongue, JOINT_NAMES.index("jaw")] = 1.0
    for side, joint in (("L", "eye.L"), ("R", "eye.R")):
        k = JOINT_NAMES.index(joint)
        weights[head.eyes[side], k] = 1.0
        sphere = head.eyes[side][5 + IRIS_RING - 4 :]  # the eyeball sphere, whose mean is its centre
        regressor[k, sphere] = 1.0 / len(sphere)
    return regressor, weights


# ---------------------------------------------------------------------------------------------
# ARKit expression shapes (FACS muscle actions), authored for the subject's left and mirrored.


def lips(ids: list[int], weights: np.ndarray, disp: object) -> tuple[list[int], np.ndarray]:
    return ids, weights[:, None] * np.asarray(disp, dtype=np.float64)


def left_units(face: np.ndarray, mirror: np.ndarray) -> dict[str, tuple[dict[int, np.ndarray], float]]:
    """Handles (cm at weight 1, FLAME axes) and falloff radius of each left-side unit."""
    lid = profile(len(EYE_UPPER))[:, None]
    taper = lip_profile(1.0, 0.0)  # strongest at the corner, nothing at the middle
    half = lip_profile(0.4, 1.0)  # a half lip, whole at the middle (shared with the other side)
    inner_brow, mid_brow, outer_brow = [336, 285, 296, 295], [334, 282], [300, 276, 293, 283]
    lower_gap = face[LIP_LOWER_OUTER, 1] - face[LIP_LOWER_INNER, 1]
    units = {
        # AU7 lid tightener: lower lid up and straightened, upper lid a little down.
        "eyeSquintLeft": (handle_set((EYE_LOWER, lid * [0, 0.28, 0.05]), (EYE_UPPER, lid * [0, -0.07, 0])), 1.3),
        # AU5 upper lid raiser.
        "eyeWideLeft": (handle_set((EYE_UPPER, lid * [0, 0.28, 0.02]), (EYE_LOWER, lid * [0, -0.04, 0])), 1.6),
        # AU4 brow lowerer: inner brow down and toward the midline most.
        "browDownLeft": (
            handle_set(
                (inner_brow, [-0.22, -0.5, 0.05]),
                (mid_brow, [-0.1, -0.38, 0.03]),
                (outer_brow, [0, -0.25, 0]),
                (EYE_UPPER, lid * [0, -0.06, 0]),
            ),
            2.6,
        ),
        # AU2 outer brow raiser.
        "browOuterUpLeft": (
            handle_set((outer_brow, [0.02, 0.6, 0]), (mid_brow, [0, 0.32, 0]), (inner_brow, [0, 0.04, 0])),
            3.0,
        ),
        # AU6 cheek raiser: infraorbital cheek up and out, lower lid pushed up.
        "cheekSquintLeft": (handle_set((CHEEK, [0.05, 0.38, 0.12]), (EYE_LOWER, lid * [0, 0.12, 0.03])), 2.4),
        # AU9 nose wrinkler: nose wing and the upper lip beside it up, inner brow a little down.
        "noseSneerLeft": (
            handle_set((NOSE_WING, [0.04, 0.35, 0.02]), ([270, 269, 409], [0, 0.14, 0]), ([285, 336], [0, -0.1, 0])),
            2.0,
        ),
        # AU12 lip corner puller: corners up, out and back along the zygomaticus, cheek up.
        "mouthSmileLeft": (
            handle_set(
                lips(LIP_UPPER_OUTER, taper, [0.55, 0.6, -0.3]),
                lips(LIP_UPPER_INNER, taper, [0.55, 0.6, -0.3]),
                lips(LIP_LOWER_OUTER, taper, [0.55, 0.6, -0.3]),
                lips(LIP_LOWER_INNER, taper, [0.55, 0.6, -0.3]),
                ([425, 411, 427], [0.1, 0.3, 0.12]),
            ),
            3.2,
        ),
        # AU15 lip corner depressor.
        "mouthFrownLeft": (
            handle_set(
                lips(LIP_UPPER_OUTER, taper, [0.05, -0.5, 0]),
                lips(LIP_UPPER_INNER, taper, [0.05, -0.5, 0]),
                lips(LIP_LOWER_OUTER, taper, [0.05, -0.5, 0]),
                lips(LIP_LOWER_INNER, taper, [0.05, -0.5, 0]),
            ),
            2.8,
        ),
        # AU14 dimpler: corners tighten and move back.
        "mouthDimpleLeft": (
            handle_set(
                lips(LIP_UPPER_OUTER, taper, [0.35, 0.04, -0.45]),
                lips(LIP_UPPER_INNER, taper, [0.35, 0.04, -0.45]),
                lips(LIP_LOWER_OUTER, taper, [0.35, 0.04, -0.45]),
                lips(LIP_LOWER_INNER, taper, [0.35, 0.04, -0.45]),
            ),
            2.4,
        ),
        # AU20 lip stretcher: corners straight out, lips flatten.
        "mouthStretchLeft": (
            handle_set(
                lips(LIP_UPPER_OUTER, taper, [0.65, -0.18, -0.15]),
                lips(LIP_UPPER_INNER, taper, [0.65, -0.18, -0.15]),
                lips(LIP_LOWER_OUTER, taper, [0.65, -0.25, -0.15]),
                lips(LIP_LOWER_INNER, taper, [0.65, -0.25, -0.15]),
            ),
            3.0,
        ),
        # AU24 lip presser: the red of both lips thins as they press together (this half).
        "mouthPressLeft": (
            handle_set(
                lips(LIP_UPPER_OUTER[1:], half[1:], [0, -0.13, -0.05]),
                lips(LIP_LOWER_OUTER[1:], half[1:], [0, 0.2, -0.05]),
                (LIP_UPPER_INNER + LIP_LOWER_INNER[1:], [0, 0, 0]),
            ),
            1.4,
        ),
        # AU16 lower lip depressor (this half): lower lip down and out, the teeth would show.
        "mouthLowerDownLeft": (
            handle_set(
                lips(LIP_LOWER_OUTER[1:], half[1:], [0.08, -0.45, 0.05]),
                lips(LIP_LOWER_INNER[1:], half[1:], [0.08, -0.45, 0.05]),
                ([291, 308], [0, 0, 0]),
            ),
            2.4,
        ),
        # AU10 upper lip raiser (this half).
        "mouthUpperUpLeft": (
            handle_set(
                lips(LIP_UPPER_OUTER[1:], half[1:], [0.03, 0.4, 0.05]),
                lips(LIP_UPPER_INNER[1:], half[1:], [0.03, 0.4, 0.05]),
                ([291, 308], [0, 0, 0]),
            ),
            2.4,
        ),
        # Both lips slide toward the subject's left (no FACS unit).
        "mouthLeft": (
            handle_set(
                (both(LIP_UPPER_OUTER + LIP_LOWER_OUTER + LIP_UPPER_INNER + LIP_LOWER_INNER, mirror), [0.6, 0, 0])
            ),
            3.0,
        ),
    }
    del lower_gap
    return units


def midline_units(face: np.ndarray, mirror: np.ndarray) -> dict[str, tuple[dict[int, np.ndarray], float]]:
    """Handles of the units that act on both sides at once (symmetrised afterwards)."""
    up_out = face[LIP_UPPER_OUTER] - face[LIP_UPPER_INNER]
    low_out = face[LIP_LOWER_OUTER] - face[LIP_LOWER_INNER]
    inner_brow, mid_brow = [336, 285, 296, 295], [334, 282]
    medial = lip_profile(1.0, 0.0)[:, None] * [-1, 0, 0]  # corners toward the midline
    forward = np.array([0, 0, 1.0])
    everything = LIP_UPPER_OUTER + LIP_LOWER_OUTER + LIP_UPPER_INNER + LIP_LOWER_INNER
    units = {
        # AU1 inner brow raiser (bilateral only).
        "browInnerUp": (handle_set((inner_brow, [0, 0.65, 0]), (mid_brow, [0, 0.3, 0]), ([9, 151], [0, 0.3, 0])), 3.0),
        # AU28 lip suck: the red of the lower lip rolls in behind its inner line.
        "mouthRollLower": (
            handle_set(
                (LIP_LOWER_OUTER[1:], -low_out[1:] * 0.8 + [0, 0, -0.25]), (LIP_LOWER_INNER[1:], [0, 0.02, -0.2])
            ),
            1.5,
        ),
        "mouthRollUpper": (
            handle_set(
                (LIP_UPPER_OUTER[1:], -up_out[1:] * 0.8 + [0, 0, -0.25]), (LIP_UPPER_INNER[1:], [0, -0.02, -0.2])
            ),
            1.5,
        ),
        # AU17 chin raiser: chin boss and lower lip up and forward, pushing the upper lip up.
        "mouthShrugLower": (
            handle_set(
                (CHIN, [0, 0.35, 0.15]),
                (LIP_LOWER_OUTER[1:], [0, 0.28, 0.2]),
                (LIP_LOWER_INNER[1:], [0, 0.22, 0.15]),
                (LIP_UPPER_INNER[1:], [0, 0.12, 0.05]),
                (LIP_UPPER_OUTER[1:], [0, 0.1, 0.05]),
            ),
            3.0,
        ),
        # AU17's effect on the upper lip: upper lip pushed up and out.
        "mouthShrugUpper": (
            handle_set(
                (LIP_UPPER_OUTER[1:], [0, 0.22, 0.2]),
                (LIP_UPPER_INNER[1:], [0, 0.2, 0.18]),
                (LIP_LOWER_INNER[1:], [0, 0.12, 0.08]),
                (LIP_LOWER_OUTER[1:], [0, 0.1, 0.08]),
            ),
            2.4,
        ),
        # AU8 lips toward each other: the lip part of closing against an open jaw.
        "mouthClose": (
            handle_set(
                (LIP_UPPER_INNER[1:], [0, -0.3, 0]),
                (LIP_UPPER_OUTER[1:], [0, -0.25, 0]),
                (LIP_LOWER_INNER[1:], [0, 0.55, 0.05]),
                (LIP_LOWER_OUTER[1:], [0, 0.5, 0.05]),
            ),
            2.0,
        ),
        # AU22 lip funneler: corners in, lips out and parted into an O.
        "mouthFunnel": (
            handle_set(
                (LIP_UPPER_OUTER, medial * 0.55 + [0, 0, 0.55]),
                (LIP_LOWER_OUTER, medial * 0.55 + [0, 0, 0.55]),
                (LIP_UPPER_INNER, medial * 0.55 + [0, 0.22, 0.45]),
                (LIP_LOWER_INNER, medial * 0.55 + [0, -0.3, 0.45]),
            ),
            2.6,
        ),
        # AU18 lip pucker: corners far in, closed lips pushed forward.
        "mouthPucker": (
            handle_set(
                (LIP_UPPER_OUTER, medial * 0.8 + [0, 0, 0.7]),
                (LIP_LOWER_OUTER, medial * 0.8 + [0, 0, 0.7]),
                (LIP_UPPER_INNER, medial * 0.8 + [0, -0.05, 0.6]),
                (LIP_LOWER_INNER, medial * 0.8 + [0, 0.05, 0.6]),
            ),
            2.6,
        ),
        # AU34 puff: handled as a bulge below, but the lips close and press a little.
        "cheekPuff": (handle_set((everything, forward * 0.15)), 1.5),
    }
    return units


def bulge(face: np.ndarray, normals: np.ndarray, centre: np.ndarray, radius: float, amount: float) -> np.ndarray:
    distance = np.linalg.norm(face - centre, axis=1)
    return normals * (amount * smoothstep(1 - distance / radius))[:, None]


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    normals = np.zeros_like(verts)
    tri = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    for col in range(3):
        np.add.at(normals, faces[:, col], tri)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def eyelid_field(sculptor: Sculptor, face: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """AU45 blink of the left eye: the lids meet a fifth of the way up the opening, the upper lid
    sliding over the eyeball rather than through it."""
    meet = face[EYE_LOWER] + 0.2 * (face[EYE_UPPER] - face[EYE_LOWER])
    for row in meet[1:-1]:
        offset = row - centre
        reach = EYE_RADIUS + 0.1
        if np.linalg.norm(offset) < reach:
            row[2] = centre[2] + np.sqrt(max(reach**2 - offset[0] ** 2 - offset[1] ** 2, 0.0))
    return sculptor.solve(handle_set((EYE_UPPER, meet - face[EYE_UPPER]), (EYE_LOWER, meet - face[EYE_LOWER])), 1.4)


def lid_follow_field(sculptor: Sculptor) -> np.ndarray:
    """Pose corrective per unit of sin(pitch) of the left eye: the lids follow the gaze (FACS AU63/64)."""
    lid = profile(len(EYE_UPPER))[:, None]
    return sculptor.solve(
        handle_set((EYE_UPPER, lid * [0, -0.6 * EYE_RADIUS, 0]), (EYE_LOWER, lid * [0, -0.25 * EYE_RADIUS, 0])), 1.4
    )


def identity_fields(head: Head, sculptor: Sculptor) -> dict[str, np.ndarray]:
    """Identity basis, each at +1 = the wide end of its documented range [-1, 1] (cm)."""
    p = head.verts
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    face = p[: head.n_face]
    near = lambda centre, radius: smoothstep(1 - np.linalg.norm(p - centre, axis=1) / radius)  # noqa: E731
    nose_tip, nose_base, chin = face[4], face[2], face[152] + [0, 0.8, 0]
    fields = {
        "face_width": np.stack([0.07 * x, 0 * y, 0 * z], 1),
        "face_length": np.stack([0 * x, 0.09 * np.minimum(y - 2.0, 0), 0 * z], 1),
        "jaw_width": np.stack([0.12 * x * smoothstep((-3.0 - y) / 4.0), 0 * y, 0 * z], 1),
        "nose_length": near(nose_tip, 2.6)[:, None] * [0, -0.15, 0.45],
        "nose_width": np.stack([0.2 * x * near(nose_base, 2.2), 0 * y, 0 * z], 1),
        "eye_spacing": np.stack(
            [
                0.3 * np.sign(x) * np.maximum(near(head.eye_centres["L"], 2.6), near(head.eye_centres["R"], 2.6)),
                0 * y,
                0 * z,
            ],
            1,
        ),
        "brow_ridge": (near(face[9] + [0, 0.6, 0], 3.5) + near(face[334], 2.5) + near(face[105], 2.5))[:, None]
        * [0, 0.08, 0.25],
        "chin_projection": near(chin, 3.0)[:, None] * [0, -0.2, 0.5],
    }
    lip = np.zeros_like(p)
    lip[: head.n_face] = sculptor.solve(
        handle_set(
            (both(LIP_UPPER_OUTER[1:], head.mirror), [0, 0.13, 0.05]),
            (both(LIP_LOWER_OUTER[1:], head.mirror), [0, -0.16, 0.05]),
            (both(LIP_UPPER_INNER + LIP_LOWER_INNER, head.mirror), [0, 0, 0]),
        ),
        1.3,
    )
    fields["lip_thickness"] = lip
    for name, field in fields.items():  # eyeballs and tongue move rigidly with the face around them
        for part in (head.eyes["L"], head.eyes["R"], head.tongue):
            field[part] = field[part].mean(axis=0)
        fields[name] = symmetrise(field, head.mirror)
    return fields


# ---------------------------------------------------------------------------------------------
# Amplitude calibration against the referee, then the file


def unit_objective(increase: np.ndarray, target: int) -> float:
    """Reward the intended unit's rise (up to 0.85) and a lead over every other unit (up to 0.1)."""
    others = np.delete(increase, target)
    return float(min(increase[target], 0.85) + min(increase[target] - others.max(), 0.1))


def calibrate_scale(network: BlendshapeNetwork, landmark_fn, unit: str, grid: np.ndarray, keep_all: bool = False):
    """Pick the amplitude from `grid` that serves `unit_objective` best; landmark_fn(a) -> (478, 3) m."""
    neutral = network.scores(project_frontal(landmark_fn(0.0)))[1:]
    target = MEDIAPIPE_NAMES.index(unit) - 1
    # Ties (the objective saturates) go to the smallest amplitude: the gentlest shape that reads.
    results = [
        (round(unit_objective(network.scores(project_frontal(landmark_fn(a)))[1:] - neutral, target), 2), -a)
        for a in grid
    ]
    if keep_all:
        return [(score, -negative) for score, negative in results]
    best = max(results)
    return -best[1], best[0]


def blob_basis(sculptor: Sculptor, centres: list[int], radius: float) -> np.ndarray:
    """Smooth in-plane bumps (x and y) around `centres`, geodesic on the opened face, (K, 468, 3)."""
    distance = dijkstra(sculptor.graph, indices=np.array(centres))
    bumps = smoothstep(1 - distance / radius)
    basis = np.zeros((2 * len(centres), sculptor.n, 3))
    basis[0::2, :, 0] = bumps
    basis[1::2, :, 1] = bumps
    return basis


def refine(
    network: BlendshapeNetwork, template: np.ndarray, field: np.ndarray, basis: np.ndarray, unit: str, start: float
) -> tuple[float, np.ndarray, float]:
    """Fit a unit against the referee: its amplitude and small smooth in-plane corrections (at most
    3 mm per bump, penalised) that make the network read the intended unit. Landmarks only; the
    caller applies the result to the whole mesh."""
    neutral = network.scores(project_frontal(template))[1:]
    target = MEDIAPIPE_NAMES.index(unit) - 1
    k = len(basis)
    flat = np.concatenate([basis, np.zeros((k, N_LANDMARKS - basis.shape[1], 3))], axis=1) * CM

    def objective(x: np.ndarray) -> float:
        points = template + x[0] * field[:N_LANDMARKS] * CM + np.tensordot(x[1:], flat, axes=1)
        increase = network.scores(project_frontal(points))[1:] - neutral
        return -unit_objective(increase, target) + 0.5 * float(np.mean(x[1:] ** 2)) / 0.3**2 * 0.1

    x0 = np.concatenate([[start], np.zeros(k)])
    bounds = [(0.5, 3.0)] + [(-0.3, 0.3)] * k
    result = minimize(
        objective, x0, method="Powell", bounds=bounds, options={"maxiter": 4000, "xtol": 1e-3, "ftol": 1e-4}
    )
    return float(result.x[0]), result.x[1:], -float(result.fun)


def build(network: BlendshapeNetwork, verbose: bool = True) -> dict[str, np.ndarray]:
    from inference.head.face_model import FaceModel
    from inference.head.forward import forward

    log = print if verbose else (lambda *a, **k: None)
    canonical_face = load_canonical_face()
    canonical = canonical_face.vertices
    mirror468 = canonical_mirror(canonical)
    sculptor0 = Sculptor(canonical, open_holes(canonical_face.triangles, mirror468), [])
    basis = neutral_basis(sculptor0, canonical, mirror468)
    cal = calibrate_neutral(network, canonical, basis, mirror468)
    log(f"neutral calibration: {cal}")
    face = neutral_face(canonical, basis, cal)
    # Lid margins sit just outside the eyeball so the lids never cut into it.
    for side in ("L", "R"):
        centre = eye_centre(face, mirror468, side, cal)
        ids = EYE_UPPER + EYE_LOWER if side == "L" else mirror_ids(EYE_UPPER + EYE_LOWER, mirror468)
        for i in ids:
            offset = face[i] - centre
            reach = EYE_RADIUS + 0.05
            if np.linalg.norm(offset) < reach:
                face[i, 2] = centre[2] + np.sqrt(max(reach**2 - offset[0] ** 2 - offset[1] ** 2, 0.0))
    head = build_head(canonical, canonical_face.triangles, face - canonical, cal)
    n = len(head.verts)
    pinned = sorted({i for ids in JOINT_SOURCES.values() for i in ids})
    sculptor = Sculptor(face, head.faces, pinned)
    w_jaw = jaw_weights(sculptor, face, mirror468)
    regressor, weights = regressor_and_weights(head, w_jaw)
    full = lambda field: np.concatenate([field, np.zeros((n - head.n_face, 3))])  # noqa: E731

    # Nominal expression fields (cm), authored on the left and mirrored.
    fields: dict[str, np.ndarray] = {}
    handles_of: dict[str, list[int]] = {}
    left_names = set()
    for name, (handles, radius) in left_units(face, mirror468).items():
        handles_of[name] = list(handles)
        left_names.add(name)
        field = full(sculptor.solve(handles, radius))
        fields[name] = field
        fields[name.replace("Left", "Right")] = mirror_field(field, head.mirror)
    for name, (handles, radius) in midline_units(face, mirror468).items():
        handles_of[name] = list(handles)
        fields[name] = symmetrise(full(sculptor.solve(handles, radius)), head.mirror)
    normals = vertex_normals(face, head.faces[(head.faces < head.n_face).all(axis=1)])
    puff = np.zeros((head.n_face, 3))
    for centre_id in (425, mirror468[425]):
        puff += bulge(face, normals, face[centre_id] + [0, -0.6, 0], 3.2, 0.65)
    puff[pinned] = 0
    fields["cheekPuff"] = symmetrise(fields["cheekPuff"] + full(puff), head.mirror)
    jaw_forward = np.zeros((n, 3))
    jaw_forward[: head.n_face, 2] = 0.5 * w_jaw
    jaw_forward[head.tongue, 2] = 0.5
    jaw_forward[pinned] = 0
    fields["jawForward"] = jaw_forward
    tongue = head.verts[head.tongue]
    reach = smoothstep((tongue[:, 2] - tongue[:, 2].min()) / np.ptp(tongue[:, 2]))
    tongue_out = np.zeros((n, 3))
    tongue_out[head.tongue] = reach[:, None] * [0, -0.5, 2.6]
    tongue_out += full(
        sculptor.solve(
            handle_set(
                (both(LIP_LOWER_INNER[1:] + LIP_LOWER_OUTER[1:], mirror468), [0, -0.35, 0.05]),
                (both(LIP_UPPER_INNER[1:], mirror468), [0, 0.1, 0]),
            ),
            2.0,
        )
    )
    fields["tongueOut"] = symmetrise(tongue_out, head.mirror)
    assert set(fields) == set(EXPRESSION_UNITS), set(EXPRESSION_UNITS) ^ set(fields)

    eyelid_l = full(eyelid_field(sculptor, face, head.eye_centres["L"]))
    eyelids = {"L": eyelid_l, "R": mirror_field(eyelid_l, head.mirror)}
    follow_l = full(lid_follow_field(sculptor))
    posedirs = np.zeros((n, 3, 36))
    # (R - I)[2, 1] = sin(pitch) of eye.L is pose feature 9*2 + 3*2 + 1; of eye.R, 9*3 + 7.
    posedirs[:, :, 25] = follow_l * CM
    posedirs[:, :, 34] = mirror_field(follow_l, head.mirror) * CM

    def model_with(expr: dict[str, np.ndarray], eyelid_pair: tuple[np.ndarray, np.ndarray]) -> FaceModel:
        names = tuple(expr)
        return FaceModel(
            v_template=head.verts * CM,
            faces=head.faces.astype(np.int32),
            shapedirs=np.zeros((n, 3, 0)),
            exprdirs=np.stack([expr[k] for k in names], 2) * CM,
            posedirs=posedirs,
            j_regressor=regressor,
            weights=weights,
            eyelids=np.stack(eyelid_pair) * CM,
            expression_names=names,
        )

    # Amplitudes: one scale per unit (the left one's for its mirror image), one angle per joint unit.
    scales: dict[str, float] = {}
    grid = np.round(np.arange(0.5, 3.01, 0.1), 2)
    template = head.verts[:N_LANDMARKS] * CM
    for name in EXPRESSION_UNITS:
        if name.endswith("Right") or name in ("tongueOut", "jawForward", "mouthClose") or name not in MEDIAPIPE_NAMES:
            continue  # not scored, or invisible in a frontal view, or only defined against jawOpen
        field = fields[name][:N_LANDMARKS] * CM
        scales[name], score = calibrate_scale(network, lambda a, f=field: template + a * f, name, grid)
        log(f"  {name:20s} scale {scales[name]:.2f}  objective {score:.2f}")
        best_score = score
        if score < 0.9 and name in handles_of:
            centres = sorted(handles_of[name])
            centres = centres[:: max(1, len(centres) // 10)]
            basis = blob_basis(sculptor, centres, 1.5)
            if name not in left_names:
                basis = np.stack([symmetrise(b, mirror468) for b in basis])
            scale, coefficients, refined = refine(network, template, fields[name], basis, name, scales[name])
            if refined > max(score, 0.05):
                correction = np.tensordot(coefficients, basis, axes=1) / scale
                correction[pinned] = 0
                fields[name] = fields[name] + full(correction)
                if name in left_names:
                    fields[name.replace("Left", "Right")] = mirror_field(fields[name], head.mirror)
                scales[name] = scale
                log(f"  {name:20s} refined: scale {scale:.2f}  objective {refined:.2f}")
                best_score = refined
        if best_score <= 0.05:
            scales[name] = 1.0  # the network cannot see it at any amplitude: keep the authored one
            log(f"  {name:20s} unreadable by the referee: nominal amplitude kept")
    scales["tongueOut"] = scales["jawForward"] = 1.0  # 2.6 cm out; 5 mm forward (AU29's range)
    scales["mouthClose"] = 1.0  # replaced below, once the jaw's angle is known
    for name in list(scales):
        if name.endswith("Left"):
            scales[name.replace("Left", "Right")] = scales[name]
    blink_field = eyelids["L"][:N_LANDMARKS] * CM
    blink_scale, score = calibrate_scale(
        network, lambda a: template + a * blink_field, "eyeBlinkLeft", np.round(np.arange(0.8, 1.21, 0.05), 2)
    )
    log(f"  eyeBlinkLeft         scale {blink_scale:.2f}  objective {score:.2f}")
    for side in eyelids:
        eyelids[side] = eyelids[side] * blink_scale
    model = model_with({k: fields[k] * scales[k] for k in EXPRESSION_UNITS}, (eyelids["L"], eyelids["R"]))

    angles: dict[str, float] = {}
    joint_grids = {
        "jawOpen": np.radians(np.arange(6, 31, 2)),
        "jawLeft": np.radians(np.arange(2, 13, 1)),
        "eyeLookDownLeft": np.radians(np.arange(8, 36, 3)),
        "eyeLookUpLeft": np.radians(np.arange(8, 36, 3)),
        "eyeLookInLeft": np.radians(np.arange(8, 36, 3)),
        "eyeLookOutLeft": np.radians(np.arange(8, 36, 3)),
    }
    for name, angle_grid in joint_grids.items():
        _, joint, axis, sign = ARKIT_TO_PARAMS[name]

        def posed(a: float, joint: int = joint, axis: int = axis, sign: int = sign) -> np.ndarray:
            pose = np.zeros((5, 3))
            pose[joint, axis] = sign * a
            return forward(model, pose=pose).vertices[:N_LANDMARKS]

        twin = name.replace("Left", "Right")
        _, twin_joint, twin_axis, twin_sign = ARKIT_TO_PARAMS[twin]

        def twin_posed(a: float, joint: int = twin_joint, axis: int = twin_axis, sign: int = twin_sign) -> np.ndarray:
            pose = np.zeros((5, 3))
            pose[joint, axis] = sign * a
            return forward(model, pose=pose).vertices[:N_LANDMARKS]

        # One angle for both sides (the geometry is an exact mirror): the one that serves the worse side.
        per_side = [
            (calibrate_scale(network, fn, unit, angle_grid, keep_all=True))
            for fn, unit in ((posed, name), (twin_posed, twin))
        ]
        results = [(min(a, b), -angle) for (a, angle), (b, _) in zip(per_side[0], per_side[1], strict=True)]
        score, negative = max(results)
        angles[name] = -negative
        log(f"  {name:20s} angle {np.degrees(angles[name]):.0f} deg  objective {score:.2f} (worse side)")
    angles["jawRight"] = angles["jawLeft"]
    # mouthClose is defined with jawOpen: at jawOpen = mouthClose = 1 the lips meet again.
    pose = np.zeros((5, 3))
    pose[JOINT_NAMES.index("jaw"), 0] = angles["jawOpen"]
    opened = forward(model, pose=pose).vertices / CM
    gap = (opened[13, 1] - opened[14, 1]) - (template[13, 1] - template[14, 1]) / CM
    close = fields["mouthClose"]
    model = model_with(
        {
            k: fields[k] * (gap / (close[14, 1] - close[13, 1]) if k == "mouthClose" else scales[k])
            for k in EXPRESSION_UNITS
        },
        (eyelids["L"], eyelids["R"]),
    )
    closing = gap / (close[14, 1] - close[13, 1])
    log(f"  mouthClose           scale {closing:.2f} (closes jawOpen's {gap * 10:.1f} mm lip gap)")
    for direction in ("Down", "Up", "In", "Out"):
        angles[f"eyeLook{direction}Right"] = angles[f"eyeLook{direction}Left"]

    arkit_expression = np.zeros((len(ARKIT_NAMES), len(EXPRESSION_UNITS)))
    arkit_pose = np.zeros((len(ARKIT_NAMES), 5, 3))
    arkit_eyelids = np.zeros((len(ARKIT_NAMES), 2))
    for i, name in enumerate(ARKIT_NAMES):
        target = ARKIT_TO_PARAMS[name]
        if target[0] == "expression":
            arkit_expression[i, EXPRESSION_UNITS.index(target[1])] = 1.0
        elif target[0] == "eyelid":
            arkit_eyelids[i, target[1]] = 1.0
        else:
            _, joint, axis, sign = target
            arkit_pose[i, joint, axis] = sign * angles[name]

    identity = identity_fields(head, sculptor)
    shape_names = tuple(identity)
    shapedirs = np.concatenate([np.stack([identity[k] for k in shape_names], 2), model.exprdirs / CM], axis=2) * CM
    parts = np.zeros(n, dtype=np.int8)
    for side in ("L", "R"):
        parts[head.eyes[side]] = 1
        parts[head.eyes[side][: 5 + IRIS_RING - 4]] = 2  # the iris landmarks, then the rest of the disc
    parts[head.tongue] = 3
    kintree = np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)
    return {
        "name": np.array("FIELDS open head"),
        "v_template": (head.verts * CM).astype(np.float32),
        "f": head.faces.astype(np.int32),
        "shapedirs": shapedirs.astype(np.float32),
        "n_shape": np.array(len(shape_names)),
        "shape_names": np.array(shape_names),
        "expression_names": np.array(EXPRESSION_UNITS),
        "posedirs": posedirs.astype(np.float32),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": kintree,
        "l_eyelid": (eyelids["L"] * CM).astype(np.float32),
        "r_eyelid": (eyelids["R"] * CM).astype(np.float32),
        "eyelid_names": np.array(["eyeBlinkLeft", "eyeBlinkRight"]),
        "arkit_names": np.array(ARKIT_NAMES),
        "arkit_expression": arkit_expression.astype(np.float32),
        "arkit_pose": arkit_pose,
        "arkit_eyelids": arkit_eyelids.astype(np.float32),
        "mirror": head.mirror.astype(np.int32),
        "vertex_parts": parts,  # 0 skin, 1 eyeball, 2 iris, 3 tongue: for renderers' colours
        "neutral_calibration": np.array([getattr(cal, k) for k in Calibration.__dataclass_fields__]),
    }


def write_atomically(arrays: dict[str, np.ndarray], path: Path) -> None:
    def save(temporary: Path) -> None:
        with temporary.open("wb") as stream:
            np.savez_compressed(stream, **arrays)

    write_with(path, save)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=HEAD_FILE, help="where to write the head (.npz)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    arrays = build(BlendshapeNetwork(), verbose=not args.quiet)
    write_atomically(arrays, args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
