"""Derive the compact FLAME-format ICT head (`inference/models/ict_head.npz`) from the ICT Face Model.

Reads the ICT FaceKit `FaceXModel` OBJ files (MIT, USC ICT; the archive or its unpacked folder) and
writes one `.npz` that `inference.face_model.load_face_model` reads: metres and FLAME axes (ICT is
in centimetres with FLAME's axes already), quads split into triangles, the 53 ICT expressions under
ARKit names (ICT's `browInnerUp_L/_R` and `cheekPuff_L/_R` halves are summed into ARKit's single
units), a `tongueOut` sculpted here, as many identity components as the size budget allows, FLAME's
five joints with a regressor on expression-rigid vertices, skinning weights fitted to ICT's own jaw
and eye motion, eyelid shapes from `eyeBlink`, UVs (`vt`, `ft`) and a per-triangle part index.
The jaw units become a jaw rotation (fitted to how ICT's shapes move the lower teeth) plus a residual
shape that restores ICT's scan at weight 1; ICT's eyeLook shapes move only the lids, so the eye
bones add the eyeballs' turn. Every problem with
the source ends in one `IctSourceError` naming the file. Run: .venv/bin/python tools/make_ict_head.py
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.head.default_head import ARKIT_TO_PARAMS, EYE_L, EYE_R, JAW  # noqa: E402
from inference.head.face_model import JOINT_NAMES, N_POSE_FEATURES, FaceModel  # noqa: E402
from inference.head.forward import axis_angle, joint_transforms, rodrigues  # noqa: E402
from inference.perception.blendshapes import ARKIT_NAMES  # noqa: E402

ARCHIVE = ROOT.parent / "shared" / "data" / "ict-facekit" / "ict-facekit-FaceXModel.tar.xz"
OUTPUT = ROOT / "inference" / "models" / "ict_head.npz"
CM = 0.01
N_IDENTITY = 50  # what a ~5 MB file holds; the tool prints the variance they keep
GRID = 2.0**-15  # metres (0.03 mm): deltas are rounded to it, so float16 + deflate store them compactly
EYE_TURN_RAD = 0.611  # eyeLook* at weight 1, the angle the project's calibrated open head uses (35 deg)
WEIGHT_STEP = 1 / 64  # skinning weights on a grid: Blender writes one vertex-group call per value

# Vertex and polygon ranges of ICT's sub-meshes (inclusive, from FaceXModel's README).
VERTS = {
    "face": (0, 9408), "head_neck": (9409, 11247), "mouth_socket": (11248, 13293),
    "eye_socket_L": (13294, 13677), "eye_socket_R": (13678, 14061), "gums_tongue": (14062, 17038),
    "teeth_upper": (17039, 19246), "teeth_lower": (19247, 21450),
    "eyeball_L": (21451, 23020), "eyeball_R": (23021, 24590), "sclera_L": (21451, 22220), "sclera_R": (23021, 23790),
}
PART_NAMES = ("skin", "eyes", "iris", "teeth", "mouth", "lashes", "eye_film")
POLYGON_PARTS = (  # ICT polygon ranges -> part; eye_film is the lacrimal fluid, eye blend and occlusion layers
    ((0, 11143), "skin"), ((11144, 13225), "mouth"), ((13226, 14033), "skin"), ((14034, 17005), "mouth"),
    ((17006, 21495), "teeth"), ((21496, 22295), "eyes"), ((22296, 23093), "iris"),
    ((23094, 23893), "eyes"), ((23894, 24691), "iris"), ((24692, 25303), "eye_film"), ((25304, 26383), "lashes"),
)
POSE_UNITS = tuple(n for n in ARKIT_NAMES if ARKIT_TO_PARAMS[n][0] == "pose")  # eyeLook x8, jaw x3
TONGUE_GAP = 0.005  # metres from the lower teeth: nearer is gum, and the tongue's edge stays on the mouth's floor
TONGUE_REACH, TONGUE_LIFT, TONGUE_FLATTEN = 0.026, 0.003, 0.8  # tongueOut: tip forward, lift, thinning


class IctSourceError(Exception):
    """The ICT source (archive or folder) is missing, corrupt or not the FaceXModel layout."""


def ict_name(arkit: str) -> str:
    if arkit in ("jawLeft", "jawRight", "mouthLeft", "mouthRight"):  # whole-face units: ICT keeps ARKit's name
        return arkit
    for side, suffix in (("Left", "_L"), ("Right", "_R")):
        if arkit.endswith(side):
            return arkit[: -len(side)] + suffix
    return arkit


def unpack(archive: Path, into: Path) -> Path:
    try:
        with tarfile.open(archive, "r:xz") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, lzma.LZMAError, EOFError, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise IctSourceError(f"{archive}: is not a readable ICT FaceKit archive ({reason})") from None
    return into


def read_obj(path: Path, full: bool = False) -> tuple[np.ndarray, ...]:
    """Vertices (V, 3) in cm; with `full`, also UVs (T, 2) and polygons as (vertex, uv) index lists."""
    try:
        lines = path.read_text().split("\n")
        verts = np.array(" ".join(ln[2:] for ln in lines if ln.startswith("v ")).split(), dtype=np.float64)
        verts = verts.reshape(-1, 3)
        if not full:
            return (verts,)
        uvs = np.array(" ".join(ln[3:] for ln in lines if ln.startswith("vt ")).split(), dtype=np.float64)
        polys = [[tuple(int(i) - 1 for i in corner.split("/")[:2]) for corner in ln.split()[1:]]
                 for ln in lines if ln.startswith("f ")]
        return verts, uvs.reshape(-1, 2), polys  # type: ignore[return-value]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IctSourceError(f"{path}: is not a readable OBJ mesh ({type(exc).__name__}: {exc})") from None


@dataclass
class Source:
    neutral: np.ndarray  # (V, 3) metres
    uvs: np.ndarray  # (T, 2)
    polys: list  # ICT polygons: lists of (vertex, uv)
    shapes: dict[str, np.ndarray]  # ICT name -> delta (V, 3) metres
    identity: list[np.ndarray]  # deltas (V, 3) metres
    rigid: np.ndarray  # vertices no expression moves (ICT's idx_to_rigid_verts): the skull


def read_source(folder: Path) -> Source:
    model = folder / "FaceXModel" if (folder / "FaceXModel").is_dir() else folder
    if not (model / "generic_neutral_mesh.obj").is_file():
        _missing(model / "generic_neutral_mesh.obj")
    neutral, uvs, polys = read_obj(model / "generic_neutral_mesh.obj", full=True)

    def delta(name: str) -> np.ndarray:
        path = model / f"{name}.obj"
        if not path.is_file():
            _missing(path)
        (verts,) = read_obj(path)
        if verts.shape != neutral.shape:
            raise IctSourceError(f"{path}: has {len(verts)} vertices, the neutral has {len(neutral)}")
        return (verts - neutral) * CM

    names = {ict_name(n) for n in ARKIT_NAMES if n not in ("browInnerUp", "cheekPuff", "tongueOut")}
    names |= {"browInnerUp_L", "browInnerUp_R", "cheekPuff_L", "cheekPuff_R"}
    shapes = {name: delta(name) for name in sorted(names)}
    identity = [delta(f"identity{i:03d}") for i in range(100)]  # all: variance kept is against the whole basis
    return Source(neutral * CM, uvs, polys, shapes, identity, read_rigid(model / "vertex_indices.json"))


def _missing(path: Path) -> NoReturn:
    raise IctSourceError(f"{path}: is missing (not the ICT FaceKit FaceXModel layout)")


def span(name: str) -> np.ndarray:
    low, high = VERTS[name]
    return np.arange(low, high + 1)


def triangulate(polys: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fan-split polygons: triangle vertices (F, 3), their UV indices (F, 3) and source polygon (F,)."""
    tris, uv_tris, owner = [], [], []
    for p, poly in enumerate(polys):
        for k in range(1, len(poly) - 1):
            corners = (poly[0], poly[k], poly[k + 1])
            tris.append([c[0] for c in corners])
            uv_tris.append([c[1] for c in corners])
            owner.append(p)
    return np.array(tris, np.int32), np.array(uv_tris, np.int32), np.array(owner)


def kabsch_about(points: np.ndarray, moved: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The rotation R (3, 3) that best maps points - centre onto moved - centre."""
    a, b = points - centre, moved - centre
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def sphere_centre(points: np.ndarray) -> np.ndarray:
    a = np.c_[2 * points, np.ones(len(points))]
    solution, *_ = np.linalg.lstsq(a, (points**2).sum(1), rcond=None)
    return solution[:3]


def jaw_pivot(neutral: np.ndarray, shapes: dict[str, np.ndarray]) -> np.ndarray:
    """The point the lower teeth turn about in jawOpen/jawLeft/jawRight: least squares over the three
    rigid fits (each gives (I - R) p = t), x fixed to the midline."""
    teeth = span("teeth_lower")
    rows, rhs = [], []
    for unit in ("jawOpen", "jawLeft", "jawRight"):
        x, y = neutral[teeth], neutral[teeth] + shapes[unit][teeth]
        rotation = kabsch_about(x, y, x.mean(0))
        translation = y.mean(0) - rotation @ x.mean(0)
        rows.append(np.eye(3) - rotation)
        rhs.append(translation)
    a, b = np.concatenate(rows)[:, 1:], np.concatenate(rhs)
    yz, *_ = np.linalg.lstsq(a, b, rcond=None)
    return np.array([0.0, *yz])


def regress_point(verts: np.ndarray, pool: np.ndarray, target: np.ndarray, k: int = 12) -> np.ndarray:
    """Regressor row (V,): minimum-norm weights summing to 1 over the k pool vertices nearest the
    target, reproducing it exactly on the template (and following the shape around it)."""
    near = pool[np.argsort(np.linalg.norm(verts[pool] - target, axis=1))[:k]]
    a = np.r_[verts[near].T, np.ones((1, k))]
    w = np.linalg.pinv(a) @ np.r_[target, 1.0]
    row = np.zeros(len(verts))
    row[near] = w
    return row


def ring_centre(verts: np.ndarray, pool: np.ndarray, height: float) -> np.ndarray:
    ring = pool[np.abs(verts[pool, 1] - height) < 0.004]
    centre = verts[ring].mean(0)
    return np.array([0.0, height, centre[2]])


def adjacency_smooth(values: np.ndarray, faces: np.ndarray, movable: np.ndarray, iterations: int) -> np.ndarray:
    n = len(values)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    degree = np.bincount(edges[:, 0], minlength=n).astype(np.float64)
    out = values.copy()
    for _ in range(iterations):
        mean = np.bincount(edges[:, 0], weights=out[edges[:, 1]], minlength=n) / np.maximum(degree, 1)
        out[movable] = mean[movable]
    return out


def components(faces: np.ndarray, verts: np.ndarray) -> list[np.ndarray]:
    """Connected pieces of the sub-mesh on `verts` (union-find over the triangles' edges)."""
    parent = {int(v): int(v) for v in verts}

    def find(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    inside = np.isin(faces, verts).all(1)
    for a, b, c in faces[inside]:
        for u, w in ((a, b), (b, c)):
            ru, rw = find(int(u)), find(int(w))
            if ru != rw:
                parent[ru] = rw
    roots = np.array([find(int(v)) for v in verts])
    return [verts[roots == r] for r in np.unique(roots)]


def build(src: Source, n_identity: int, log=print) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    neutral, n = src.neutral, len(src.neutral)
    faces, ft, owner = triangulate(src.polys)
    poly_part = np.zeros(len(src.polys), np.int8)
    for (low, high), part in POLYGON_PARTS:
        poly_part[low: high + 1] = PART_NAMES.index(part)
    face_parts = poly_part[owner]

    shapes = dict(src.shapes)
    shapes["browInnerUp"] = shapes.pop("browInnerUp_L") + shapes.pop("browInnerUp_R")
    shapes["cheekPuff"] = shapes.pop("cheekPuff_L") + shapes.pop("cheekPuff_R")
    arkit = {name: shapes[ict_name(name)] for name in ARKIT_NAMES if name != "tongueOut"}

    # How far jawOpen moves each vertex along the lower teeth's rigid turn: 0 or 1 on the gums and
    # tongue (ICT moves them rigidly), in between on the skin, which then gets smoothed.
    pivot = jaw_pivot(neutral, arkit)
    teeth_lower = span("teeth_lower")
    open_rotation = kabsch_about(neutral[teeth_lower], neutral[teeth_lower] + arkit["jawOpen"][teeth_lower], pivot)
    rigid_open = (neutral - pivot) @ open_rotation.T + pivot - neutral
    follow = np.einsum("vi,vi->v", arkit["jawOpen"], rigid_open) / np.maximum((rigid_open**2).sum(1), 1e-12)
    gums_tongue = span("gums_tongue")
    carried = np.concatenate([teeth_lower, gums_tongue[follow[gums_tongue] > 0.5]])
    # The tongue: the largest piece of what the jaw carries there, once the gum around the teeth is cut away.
    gap = cKDTree(neutral[teeth_lower]).query(neutral[carried])[0]
    tongue = max(components(faces, carried[gap > TONGUE_GAP]), key=len)
    tongue_gap = cKDTree(neutral[teeth_lower]).query(neutral[tongue])[0]

    soft = np.concatenate([span("face"), span("head_neck"), span("mouth_socket")])
    w_jaw = np.zeros(n)
    w_jaw[soft] = np.clip(follow[soft], 0.0, 1.0)
    w_jaw[np.linalg.norm(arkit["jawOpen"], axis=1) < 1e-4] = 0.0  # far from the jaw: noise, not motion
    w_jaw[carried] = 1.0
    w_jaw = adjacency_smooth(w_jaw, faces, soft, 6)
    w_jaw = np.clip(np.round(w_jaw / WEIGHT_STEP) * WEIGHT_STEP, 0.0, 1.0)
    log(f"jaw carries {len(teeth_lower)} lower-teeth and {len(carried) - len(teeth_lower)} gum and tongue "
        f"vertices (tongue {len(tongue)}), and {int((w_jaw[soft] > 0).sum())} skin vertices in part")

    eye_centres = {side: sphere_centre(neutral[span(f"sclera_{side}")]) for side in "LR"}
    still = np.abs(np.stack(list(arkit.values()))).max(axis=(0, 2)) < 1e-7
    skull = src.rigid[still[src.rigid]]  # ICT's rigid set, less what any expression moves at all
    skin = np.concatenate([span("face"), span("head_neck")])
    neck = ring_centre(neutral, skin, neutral[teeth_lower, 1].min() - 0.03)  # under the chin: only neck
    root = ring_centre(neutral, skin, neutral[:, 1].min() + 0.04)
    joints = {"root": root, "neck": neck, "jaw": pivot, "eye.L": eye_centres["L"], "eye.R": eye_centres["R"]}
    regressor = np.stack([
        regress_point(neutral, skull, root), regress_point(neutral, skull, neck), regress_point(neutral, skull, pivot),
        regress_point(neutral, span("eyeball_L"), eye_centres["L"], k=64),
        regress_point(neutral, span("eyeball_R"), eye_centres["R"], k=64),
    ])
    w_neck = np.clip((neutral[:, 1] - root[1]) / (neck[1] - root[1]), 0.0, 1.0)
    w_neck = np.round(w_neck * w_neck * (3 - 2 * w_neck) / WEIGHT_STEP) * WEIGHT_STEP
    weights = np.zeros((n, 5))
    weights[:, 0] = 1 - w_neck
    weights[:, 1] = w_neck * (1 - w_jaw)
    weights[:, 2] = w_neck * w_jaw
    for side, k in (("L", EYE_L), ("R", EYE_R)):
        weights[span(f"eyeball_{side}")] = 0.0
        weights[span(f"eyeball_{side}"), k] = 1.0
    log("joints (cm): " + ", ".join(f"{j} {np.round(p / CM, 2).tolist()}" for j, p in joints.items()))

    # tongueOut: the tongue flattens toward its top (so it slides over the lower incisors) and
    # stretches forward, the tip most, the root and the rim on the mouth's floor not at all.
    tongue_out = np.zeros((n, 3))
    z, top = neutral[tongue, 2], neutral[tongue, 1].max()
    reach = np.clip((z - z.min()) / np.ptp(z), 0.0, 1.0) ** 1.5
    reach *= np.clip((tongue_gap - TONGUE_GAP) / 0.002, 0.0, 1.0)
    tongue_out[tongue, 2] = reach * TONGUE_REACH
    tongue_out[tongue, 1] = reach * (TONGUE_FLATTEN * (top - neutral[tongue, 1]) + TONGUE_LIFT)
    arkit["tongueOut"] = tongue_out

    expression_names = tuple(n for n in ARKIT_NAMES if ARKIT_TO_PARAMS[n][0] != "eyelid")
    kintree = np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)

    # ICT's eyeLook shapes move only the lids: the eye bones add the eyeball's turn. The jaw units
    # become a rotation fitted to the lower teeth plus the residual that, skinned by that rotation,
    # lands exactly on ICT's scan at weight 1.
    rig = FaceModel(v_template=neutral, faces=faces, shapedirs=np.zeros((n, 3, 0)), exprdirs=np.zeros((n, 3, 0)),
                    posedirs=np.zeros((n, 3, N_POSE_FEATURES)), j_regressor=regressor, weights=weights)
    arkit_pose = np.zeros((len(ARKIT_NAMES), 5, 3))
    for unit in POSE_UNITS:
        _, joint, axis, sign = ARKIT_TO_PARAMS[unit]
        pose = np.zeros((5, 3))
        if joint != JAW:
            moved = np.abs(arkit[unit][span(f"eyeball_{'L' if joint == EYE_L else 'R'}")]).max()
            if moved > 1e-6:
                raise IctSourceError(f"{ict_name(unit)}.obj moves the eyeball ({moved / CM * 10:.2f} mm): "
                                     "this tool expects ICT's lid-only eyeLook shapes")
            pose[joint, axis] = sign * EYE_TURN_RAD
            arkit_pose[ARKIT_NAMES.index(unit)] = pose
            continue
        rotation = kabsch_about(neutral[teeth_lower], neutral[teeth_lower] + arkit[unit][teeth_lower], pivot)
        pose[joint] = axis_angle(rotation)
        arkit_pose[ARKIT_NAMES.index(unit)] = pose
        target = neutral + arkit[unit]
        transforms = _skinning_transforms(rig, pose)
        local = np.einsum("vij,vj->vi", np.linalg.inv(transforms[:, :3, :3]), target - transforms[:, :3, 3])
        arkit[unit] = local - neutral
        log(f"  {unit:17s} {np.degrees(np.linalg.norm(pose[joint])):5.1f} deg about {JOINT_NAMES[joint]}; "
            f"residual on the lower teeth {np.abs(arkit[unit][teeth_lower]).max() / CM * 10:.2f} mm")

    exprdirs = np.stack([arkit[name] for name in expression_names], axis=2)
    arkit_expression = np.zeros((len(ARKIT_NAMES), len(expression_names)))
    arkit_eyelids = np.zeros((len(ARKIT_NAMES), 2))
    for i, name in enumerate(ARKIT_NAMES):
        if ARKIT_TO_PARAMS[name][0] == "eyelid":
            arkit_eyelids[i, ARKIT_TO_PARAMS[name][1]] = 1.0
        else:
            arkit_expression[i, expression_names.index(name)] = 1.0

    identity = np.stack(src.identity, axis=2)
    variance = (identity**2).sum(axis=(0, 1))
    log(f"identity: {n_identity} of {identity.shape[2]} components keep "
        f"{100 * variance[:n_identity].sum() / variance.sum():.1f}% of the basis' variance")
    shapedirs = np.concatenate([identity[:, :, :n_identity], exprdirs], axis=2)
    stored = compact(shapedirs)
    log(f"deltas on a {GRID * 1000:.3f} mm grid as float16: max error {np.abs(stored - shapedirs).max() * 1000:.4f} mm")
    return {
        "name": np.array("ICT head"),
        "v_template": neutral.astype(np.float32),
        "f": faces,
        "shapedirs": stored,
        "n_shape": np.array(n_identity),
        "shape_names": np.array([f"identity{i:03d}" for i in range(n_identity)]),
        "expression_names": np.array(expression_names),
        "posedirs": np.zeros((n, 3, N_POSE_FEATURES), np.float16),
        "J_regressor": regressor,
        "weights": weights.astype(np.float32),  # multiples of 1/64: exact
        "kintree_table": kintree,
        "l_eyelid": compact(arkit["eyeBlinkLeft"]),
        "r_eyelid": compact(arkit["eyeBlinkRight"]),
        "eyelid_names": np.array(["eyeBlinkLeft", "eyeBlinkRight"]),
        "arkit_names": np.array(ARKIT_NAMES),
        "arkit_expression": arkit_expression.astype(np.float32),
        "arkit_pose": arkit_pose,
        "arkit_eyelids": arkit_eyelids.astype(np.float32),
        "vt": src.uvs.astype(np.float32),
        "ft": ft,
        "face_parts": face_parts,
        "part_names": np.array(PART_NAMES),
    }


def compact(deltas: np.ndarray) -> np.ndarray:
    return (np.round(deltas / GRID) * GRID).astype(np.float16)


def _skinning_transforms(model: FaceModel, pose: np.ndarray) -> np.ndarray:
    """Per-vertex blended 4x4 skinning transforms of the template under `pose` (forward.py's maths)."""
    _, skinning = joint_transforms(model.parents, rodrigues(pose), model.rest_joints())
    return np.einsum("vk,kij->vij", model.weights, skinning)


def write_atomically(arrays: dict[str, np.ndarray], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.stem, suffix=".npz.tmp", dir=path.parent)
    try:
        # np.savez stamps each member with the clock; fixed stamps make the file's sha256 reproducible.
        with os.fdopen(handle, "wb") as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
            for key, value in arrays.items():
                member = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                member.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(member, "w", force_zip64=True) as target:
                    np.lib.format.write_array(target, np.asanyarray(value), allow_pickle=False)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the file ships to every user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ARCHIVE, help="the ICT archive (.tar.xz) or its unpacked folder")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--identity", type=int, default=N_IDENTITY, help="identity components to keep (<= 100)")
    args = parser.parse_args(argv)
    try:
        if not args.source.exists():
            raise IctSourceError(f"{args.source}: does not exist")
        with tempfile.TemporaryDirectory(prefix="ict-") as scratch:
            folder = args.source if args.source.is_dir() else unpack(args.source, Path(scratch))
            src = read_source(folder)
        arrays = build(src, args.identity)
    except IctSourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    write_atomically(arrays, args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB)")
    return 0


def read_rigid(path: Path) -> np.ndarray:
    try:
        return np.array([int(i) for i in json.loads(path.read_text())["idx_to_rigid_verts"]], dtype=np.int64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IctSourceError(f"{path}: has no readable 'idx_to_rigid_verts' list ({exc})") from None


if __name__ == "__main__":
    raise SystemExit(main())
