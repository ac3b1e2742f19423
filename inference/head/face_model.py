"""The face-model layer: FLAME-format model files loaded into one plain numpy structure.

Reads FLAME 2020 `generic_model.pkl`, FLAME 2023 / 2023 Open pickles (through `safe_pickle`, so
without chumpy and without running pickle code) and an `.npz` form with the same keys, plus the
optional eyelid blendshapes (`l_eyelid.npy`, `r_eyelid.npy` beside the model, or keys of the
`.npz`), and for heads that have them, UVs (`vt` with per-corner indices `ft`, FLAME's texture
layout) and a per-triangle part index (`face_parts` into `part_names`). Every problem is raised
as `FaceModelError` naming the file. FLAME itself is never shipped: users bring their own file.
This module must not import bpy.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FaceModelError
from . import safe_pickle

# FLAME's joints in order: parent of each, and the names the Blender rig gives their bones.
JOINT_NAMES = ("root", "neck", "jaw", "eye.L", "eye.R")
PARENTS = np.array([-1, 0, 1, 1, 1])
N_POSE_FEATURES = 9 * (len(JOINT_NAMES) - 1)  # (R - I) of every joint but the root
FLAME_N_SHAPE = 300  # FLAME pickles stack 300 identity then 100 expression components

REQUIRED_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")


@dataclass(frozen=True)
class FaceModel:
    """A FLAME-format face model, in FLAME's units (metres) and axes (+y up, +z out of the face)."""

    v_template: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3) int32
    shapedirs: np.ndarray  # (V, 3, n_shape) identity basis
    exprdirs: np.ndarray  # (V, 3, n_expr) expression basis
    posedirs: np.ndarray  # (V, 3, 36) pose correctives, FLAME's layout
    j_regressor: np.ndarray  # (5, V) dense
    weights: np.ndarray  # (V, 5) skinning weights
    eyelids: np.ndarray | None = None  # (2, V, 3): subject's left, right
    expression_names: tuple[str, ...] = ()
    shape_names: tuple[str, ...] = ()
    eyelid_names: tuple[str, str] = ("eyelid_L", "eyelid_R")  # shape-key names for [left, right]
    name: str = "FLAME"
    source: str = ""
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_verts(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def n_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def n_expr(self) -> int:
        return int(self.exprdirs.shape[2])

    @property
    def parents(self) -> np.ndarray:
        return PARENTS

    def rest_joints(self) -> np.ndarray:
        """Joint positions of the template (no identity, no expression), (5, 3)."""
        return self.j_regressor @ self.v_template

    def size(self) -> float:
        """Diagonal of the template's bounding box: the scale that tolerances are relative to."""
        return float(np.linalg.norm(np.ptp(self.v_template, axis=0)))


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_face_model(path: str | os.PathLike[str]) -> FaceModel:
    """Load a FLAME-format `.pkl` or `.npz` (and eyelids beside it); raise FaceModelError on any problem."""
    path = Path(path)
    if not path.is_file():
        raise FaceModelError(path, "does not exist" if not path.exists() else "is not a file")
    if path.stat().st_size == 0:
        raise FaceModelError(path, "is empty")
    with open(path, "rb") as handle:
        is_zip = handle.read(4) == b"PK\x03\x04"  # .npz is a zip; FLAME pickles start with a pickle opcode
    raw = _read_npz(path) if is_zip else _read_pickle(path)
    try:
        return _build(raw, path)
    except ValueError as exc:
        raise FaceModelError(path, f"is not a valid FLAME model: {exc}") from None


def _read_pickle(path: Path) -> dict[str, object]:
    try:
        data = safe_pickle.load(path.read_bytes())
    except safe_pickle.UnsafePickleError as exc:
        raise FaceModelError(path, f"was refused: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, OverflowError, UnicodeDecodeError) as exc:
        raise FaceModelError(path, f"is truncated or not a FLAME pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise FaceModelError(path, f"is not a FLAME model: it holds a {type(data).__name__}, not a dict of arrays")
    eyelids = _eyelids_beside(path)
    if eyelids:
        data.update(eyelids)
    return data


def _read_npz(path: Path) -> dict[str, object]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as exc:  # object arrays need pickle, which we never allow
        raise FaceModelError(path, f"holds data that cannot be read safely ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise FaceModelError(path, f"is truncated or not an .npz archive ({exc})") from None


def _eyelids_beside(path: Path) -> dict[str, np.ndarray]:
    found = {}
    for key in ("l_eyelid", "r_eyelid"):
        candidate = path.with_name(f"{key}.npy")
        if candidate.is_file():
            try:
                found[key] = np.load(candidate, allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise FaceModelError(candidate, f"is not a readable eyelid array ({exc})") from None
    return found


def _array(raw: dict[str, object], key: str, ndim: int) -> np.ndarray:
    try:
        value = safe_pickle.to_array(raw[key])
    except ValueError as exc:
        raise ValueError(f"'{key}' is {exc}") from None
    if value.dtype == object or value.ndim != ndim:
        raise ValueError(f"'{key}' has shape {value.shape}, expected {ndim} dimensions")
    if not np.issubdtype(value.dtype, np.number):
        raise ValueError(f"'{key}' holds {value.dtype} values, expected numbers")
    return value


def _build(raw: dict[str, object], path: Path) -> FaceModel:
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise ValueError(f"missing key(s) {', '.join(missing)}")
    v_template = _array(raw, "v_template", 2).astype(np.float64)
    n_verts = v_template.shape[0]
    if v_template.shape != (n_verts, 3) or n_verts < 4:
        raise ValueError(f"'v_template' has shape {v_template.shape}, expected (V, 3)")
    faces = _array(raw, "f", 2)
    if faces.shape[1:] != (3,) or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"'f' has shape {faces.shape} and type {faces.dtype}, expected integer (F, 3)")
    if faces.min() < 0 or faces.max() >= n_verts:
        raise ValueError(f"'f' refers to vertices outside 0..{n_verts - 1}")
    blend = _array(raw, "shapedirs", 3).astype(np.float64)
    if blend.shape[:2] != (n_verts, 3):
        raise ValueError(f"'shapedirs' has shape {blend.shape}, expected ({n_verts}, 3, K)")
    n_shape = int(np.asarray(raw["n_shape"])) if "n_shape" in raw else FLAME_N_SHAPE
    if not 0 <= n_shape <= blend.shape[2]:
        raise ValueError(f"'shapedirs' has {blend.shape[2]} components, fewer than its {n_shape} identity ones")
    posedirs = _array(raw, "posedirs", 3).astype(np.float64)
    if posedirs.shape != (n_verts, 3, N_POSE_FEATURES):
        raise ValueError(f"'posedirs' has shape {posedirs.shape}, expected ({n_verts}, 3, {N_POSE_FEATURES})")
    regressor = _array(raw, "J_regressor", 2).astype(np.float64)
    weights = _array(raw, "weights", 2).astype(np.float64)
    n_joints = len(JOINT_NAMES)
    if regressor.shape != (n_joints, n_verts):
        raise ValueError(f"'J_regressor' has shape {regressor.shape}, expected ({n_joints}, {n_verts})")
    if weights.shape != (n_verts, n_joints):
        raise ValueError(f"'weights' has shape {weights.shape}, expected ({n_verts}, {n_joints})")
    kintree = _array(raw, "kintree_table", 2)
    if kintree.shape != (2, n_joints) or not np.array_equal(kintree[0, 1:], PARENTS[1:]):
        raise ValueError(f"'kintree_table' is not FLAME's joint tree {PARENTS[1:].tolist()} (got {kintree.tolist()})")
    for key, value in (("v_template", v_template), ("shapedirs", blend), ("posedirs", posedirs),
                       ("J_regressor", regressor), ("weights", weights)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"'{key}' contains NaN or infinite values")
    for key, value in (("J_regressor", regressor.sum(axis=1)), ("weights", weights.sum(axis=1))):
        if not np.allclose(value, 1.0, atol=1e-3):
            raise ValueError(f"the rows of '{key}' do not sum to 1")

    eyelids = None
    if "l_eyelid" in raw or "r_eyelid" in raw:
        if not ("l_eyelid" in raw and "r_eyelid" in raw):
            raise ValueError("only one of 'l_eyelid' and 'r_eyelid' is present")
        eyelids = np.stack([_array(raw, "l_eyelid", 2), _array(raw, "r_eyelid", 2)]).astype(np.float64)
        if eyelids.shape != (2, n_verts, 3) or not np.all(np.isfinite(eyelids)):
            raise ValueError(f"the eyelid blendshapes have shape {eyelids.shape[1:]}, expected ({n_verts}, 3)")

    eyelid_names = ("eyelid_L", "eyelid_R")
    if "eyelid_names" in raw:
        names = tuple(str(name) for name in np.asarray(raw["eyelid_names"]).ravel())
        if len(names) != 2 or names[0] == names[1] or not all(names):
            raise ValueError(f"'eyelid_names' must hold 2 distinct names (left, right), it holds {list(names)}")
        eyelid_names = (names[0], names[1])

    n_expr = blend.shape[2] - n_shape
    expression_names = _names(raw, "expression_names", n_expr, "exp")
    shape_names = _names(raw, "shape_names", n_shape, "shape")
    name = str(np.asarray(raw["name"])) if "name" in raw else path.stem
    known = set(REQUIRED_KEYS) | {"n_shape", "l_eyelid", "r_eyelid", "eyelid_names", "expression_names",
                                  "shape_names", "name", "J", "bs_style", "bs_type"}
    extras = {}
    for key in raw.keys() - known:
        try:
            extras[key] = safe_pickle.to_array(raw[key])
        except ValueError:
            continue  # unknown extra keys (e.g. FLAME 2023 metadata) are not needed
    _check_surface(extras, len(faces))
    return FaceModel(
        v_template=v_template,
        faces=faces.astype(np.int32),
        shapedirs=np.ascontiguousarray(blend[:, :, :n_shape]),
        exprdirs=np.ascontiguousarray(blend[:, :, n_shape:]),
        posedirs=posedirs,
        j_regressor=regressor,
        weights=weights,
        eyelids=eyelids,
        expression_names=expression_names,
        shape_names=shape_names,
        eyelid_names=eyelid_names,
        name=name,
        source=str(path),
        extras=extras,
    )


def _check_surface(extras: dict[str, np.ndarray], n_faces: int) -> None:
    if ("vt" in extras) != ("ft" in extras):
        raise ValueError("UVs need both 'vt' and 'ft'")
    if "ft" in extras:
        vt, ft = extras["vt"], extras["ft"]
        if vt.ndim != 2 or vt.shape[1] != 2 or ft.shape != (n_faces, 3) or not np.issubdtype(ft.dtype, np.integer):
            raise ValueError(f"'vt' {vt.shape} and 'ft' {ft.shape} are not (T, 2) UVs and ({n_faces}, 3) indices")
        if ft.min() < 0 or ft.max() >= len(vt) or not np.all(np.isfinite(vt)):
            raise ValueError(f"'ft' refers to UVs outside 0..{len(vt) - 1}, or 'vt' is not finite")
    if ("face_parts" in extras) != ("part_names" in extras):
        raise ValueError("parts need both 'face_parts' and 'part_names'")
    if "face_parts" in extras:
        parts, names = extras["face_parts"], extras["part_names"]
        if parts.shape != (n_faces,) or not np.issubdtype(parts.dtype, np.integer) or names.ndim != 1:
            raise ValueError(f"'face_parts' has shape {parts.shape}, expected ({n_faces},) part indices")
        if parts.min() < 0 or parts.max() >= len(names) or len(set(names.tolist())) != len(names):
            raise ValueError(f"'face_parts' refers to parts outside the {len(names)} distinct 'part_names'")


def face_uvs(model: FaceModel) -> np.ndarray | None:
    """Per-corner UVs (F, 3, 2) of the triangles, or None for a head without UVs."""
    return model.extras["vt"][model.extras["ft"]] if "ft" in model.extras else None


def _names(raw: dict[str, object], key: str, count: int, prefix: str) -> tuple[str, ...]:
    if key not in raw:
        return tuple(f"{prefix}_{i:03d}" for i in range(count))
    names = tuple(str(name) for name in np.asarray(raw[key]).ravel())
    if len(names) != count or len(set(names)) != count:
        raise ValueError(f"'{key}' must hold {count} distinct names, it holds {len(names)}")
    return names
