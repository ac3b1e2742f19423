"""FLAME-format fixtures made by the tests: FLAME itself can never be in the repository.

`make_flame_arrays` builds a small head-like model with FLAME's keys, dtypes and structure (400
blendshape components = 300 identity + 100 expression, 36 pose correctives, a 5x V regressor,
skinning weights, FLAME's kinematic tree with the root's parent stored as uint32 max), and the
writers store it as FLAME 2020 stores it: a Python-2-compatible pickle whose arrays are
`chumpy.ch.Ch` objects and whose regressor is a `scipy.sparse.csc.csc_matrix`, written without
chumpy or old scipy installed by giving stand-in classes those module names while pickling.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT_PARENT = np.uint32(4294967295)


def _sphere(n_lat: int, n_lon: int) -> tuple[np.ndarray, np.ndarray]:
    """A head-sized ellipsoid (metres), FLAME axes: +y up, +z out of the face."""
    lat = np.linspace(-np.pi / 2, np.pi / 2, n_lat)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    ring = np.stack([np.cos(la) * np.sin(lo) * 0.08, np.sin(la) * 0.11, np.cos(la) * np.cos(lo) * 0.10], -1)
    verts = np.concatenate([[[0, -0.11, 0]], ring.reshape(-1, 3), [[0, 0.11, 0]]])
    faces = []
    rows = n_lat - 2
    idx = lambda r, c: 1 + r * n_lon + (c % n_lon)  # noqa: E731
    for c in range(n_lon):
        faces.append([0, idx(0, c + 1), idx(0, c)])
        faces.append([len(verts) - 1, idx(rows - 1, c), idx(rows - 1, c + 1)])
    for r in range(rows - 1):
        for c in range(n_lon):
            faces.append([idx(r, c), idx(r, c + 1), idx(r + 1, c + 1)])
            faces.append([idx(r, c), idx(r + 1, c + 1), idx(r + 1, c)])
    return verts, np.array(faces, dtype=np.uint32)


def make_flame_arrays(seed: int = 0, n_lat: int = 14, n_lon: int = 18, n_components: int = 400) -> dict:
    rng = np.random.default_rng(seed)
    verts, faces = _sphere(n_lat, n_lon)
    n = len(verts)
    # Smooth random fields: random quadratic polynomials of the position, millimetres to centimetres.
    feats = np.concatenate([np.ones((n, 1)), verts / 0.1, (verts / 0.1) ** 2], axis=1)  # (n, 7)

    def smooth(count: int, scale: float) -> np.ndarray:
        # Decreasing variance, like PCA components: unit coefficients move a vertex by mm to cm.
        falloff = 1.0 / (1.0 + np.arange(count) / 5.0)
        return np.einsum("vf,fdk->vdk", feats, rng.normal(0, scale, (7, 3, count))) * falloff

    shapedirs = smooth(n_components, 0.004)
    posedirs = smooth(36, 0.002)
    joints = np.array([[0, -0.06, -0.02], [0, -0.04, -0.02], [0, -0.03, 0.01], [0.03, 0.03, 0.05], [-0.03, 0.03, 0.05]])
    # Each joint regresses from its nearest vertices, like FLAME's sparse regressor.
    regressor = np.zeros((5, n))
    for k, joint in enumerate(joints):
        nearest = np.argsort(np.linalg.norm(verts - joint, axis=1))[:6]
        w = rng.uniform(0.5, 1.5, len(nearest))
        regressor[k, nearest] = w / w.sum()
    # Soft skinning: eyes own the upper front, jaw the lower front, neck the bottom, root the rest.
    logits = -np.linalg.norm(verts[:, None] - joints[None], axis=2) / 0.02
    logits[:, 0] -= 1.0
    weights = np.exp(logits - logits.max(1, keepdims=True))
    weights[weights < 0.02] = 0
    weights /= weights.sum(1, keepdims=True)
    eyelids = np.zeros((2, n, 3))
    for side, joint in enumerate(joints[3:]):
        near = np.linalg.norm(verts - joint, axis=1) < 0.04
        eyelids[side, near, 1] = -0.008 * (1 - np.linalg.norm(verts[near] - joint, axis=1) / 0.04)
    return {
        "v_template": verts,
        "f": faces,
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": np.array([[ROOT_PARENT, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.uint32),
        "J": regressor @ verts,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "l_eyelid": eyelids[0],
        "r_eyelid": eyelids[1],
    }


@contextlib.contextmanager
def _legacy_classes() -> Iterator[tuple[type, type]]:
    """Classes named chumpy.ch.Ch and scipy.sparse.csc.csc_matrix, importable while pickling."""

    class Ch:
        pass

    class csc_matrix:  # noqa: N801 - scipy's name
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    csc_matrix.__module__, csc_matrix.__qualname__ = "scipy.sparse.csc", "csc_matrix"
    fake = {"chumpy": types.ModuleType("chumpy"), "chumpy.ch": types.ModuleType("chumpy.ch"),
            "scipy.sparse.csc": types.ModuleType("scipy.sparse.csc")}
    fake["chumpy.ch"].Ch = Ch  # type: ignore[attr-defined]
    fake["scipy.sparse.csc"].csc_matrix = csc_matrix  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in fake}
    sys.modules.update(fake)
    try:
        yield Ch, csc_matrix
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def chumpy_state(value: np.ndarray) -> dict:
    """The `__dict__` a pickled chumpy leaf carries (chumpy/ch.py: Ch.__getstate__)."""
    value = np.asarray(value)  # float64 as in FLAME's files; float32 kept where a fixture saves space
    return {"x": value if value.dtype == np.float32 else value.astype(np.float64), "_dirty_vars": set(), "_itr": None,
            "_make_dense": False, "_make_sparse": False, "_depends_on_deps": {}, "_status": "new"}


def flame_pickle_bytes(arrays: dict, protocol: int = 2, extra: dict | None = None) -> bytes:
    """Pickle `arrays` as FLAME 2020's generic_model.pkl is stored."""
    arrays = {k: v for k, v in arrays.items() if k not in ("l_eyelid", "r_eyelid")}
    with _legacy_classes() as (Ch, csc_matrix):
        data: dict = {}
        for key, value in arrays.items():
            if key in ("v_template", "shapedirs", "posedirs", "weights", "J"):
                obj = Ch()
                obj.__dict__.update(chumpy_state(value))
                data[key] = obj
            elif key == "J_regressor":
                dense = np.asarray(value)
                cols = [np.flatnonzero(dense[:, c]) for c in range(dense.shape[1])]
                sparse = csc_matrix()
                sparse.__dict__.update({
                    "_shape": dense.shape, "maxprint": 50, "format": "csc", "has_sorted_indices": True,
                    "data": np.concatenate([dense[c_rows, c] for c, c_rows in enumerate(cols)]),
                    "indices": np.concatenate(cols).astype(np.int32),
                    "indptr": np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.int32),
                })
                data[key] = sparse
            else:
                data[key] = value
        data.update(extra or {})
        return pickle.dumps(data, protocol=protocol)


def write_flame_pickle(folder: Path, arrays: dict, name: str = "generic_model.pkl", eyelids: bool = True,
                       protocol: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(flame_pickle_bytes(arrays, protocol=protocol))
    if eyelids:
        np.save(folder / "l_eyelid.npy", arrays["l_eyelid"])
        np.save(folder / "r_eyelid.npy", arrays["r_eyelid"])
    return path


def write_flame_npz(path: Path, arrays: dict, drop: tuple[str, ...] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items() if k not in drop})
    return path


# ------------------------------------------------- a FLAME-format head with a real face shape

ICT_HEAD = Path(__file__).resolve().parent.parent / "inference" / "models" / "ict_head.npz"
FLAME_LIKE_PARTS = ("skin", "eyes")  # what FLAME's mesh has: a skin surface and two eyeballs


def ict_flame_arrays() -> tuple[dict, np.ndarray]:
    """The ICT head (ours, MIT) cut down to what a FLAME mesh holds (skin and eyeballs, no teeth,
    lashes or eye films, no part or UV arrays) with FLAME's 300 + 100 components (ICT's 50 + 50,
    zero-padded; float32 to halve the files) and zero pose correctives: a FLAME-format file with a
    real face shape. Returns the arrays and the ICT vertex id of each kept vertex."""
    with np.load(ICT_HEAD) as ict:
        raw = {key: ict[key] for key in ict.files}
    names = [str(n) for n in raw["part_names"]]
    faces = raw["f"][np.isin(raw["face_parts"], [names.index(p) for p in FLAME_LIKE_PARTS])]
    kept = np.union1d(np.unique(faces), np.flatnonzero(raw["J_regressor"].any(axis=0)))  # eye joints: irises
    new_id = np.full(len(raw["v_template"]), -1, np.int64)
    new_id[kept] = np.arange(len(kept))
    n_shape = int(raw["n_shape"])
    blend = raw["shapedirs"][kept].astype(np.float32)
    shapedirs = np.zeros((len(kept), 3, 400), np.float32)
    shapedirs[:, :, :n_shape] = blend[:, :, :n_shape]
    shapedirs[:, :, 300:300 + blend.shape[2] - n_shape] = blend[:, :, n_shape:]
    regressor = raw["J_regressor"][:, kept]
    v_template = raw["v_template"][kept].astype(np.float64)
    return {
        "v_template": v_template,
        "f": new_id[faces].astype(np.uint32),
        "shapedirs": shapedirs,
        "posedirs": np.zeros((len(kept), 3, 36), np.float32),
        "J_regressor": regressor,
        "weights": raw["weights"][kept].astype(np.float64),
        "kintree_table": np.array([[ROOT_PARENT, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.uint32),
        "J": regressor @ v_template,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "l_eyelid": raw["l_eyelid"][kept].astype(np.float64),
        "r_eyelid": raw["r_eyelid"][kept].astype(np.float64),
    }, kept


def write_flame2023_open(path: Path, arrays: dict, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    """As FLAME 2023 Open is reported (docs: FLAME_FORMAT.md section 7): a modern pickle of plain
    numpy arrays, the regressor a `scipy.sparse._csc.csc_matrix`, no eyelids, and the SUPR metadata."""
    plain = {k: np.asarray(v) for k, v in arrays.items() if k not in ("l_eyelid", "r_eyelid", "bs_style", "bs_type")}
    dense = plain.pop("J_regressor")

    class csc_matrix:  # noqa: N801 - scipy's name
        pass

    csc_matrix.__module__, csc_matrix.__qualname__ = "scipy.sparse._csc", "csc_matrix"
    module = types.ModuleType("scipy.sparse._csc")
    module.csc_matrix = csc_matrix  # type: ignore[attr-defined]
    saved = sys.modules.get(module.__name__)
    sys.modules[module.__name__] = module
    try:
        sparse = csc_matrix()
        cols = [np.flatnonzero(dense[:, c]) for c in range(dense.shape[1])]
        sparse.__dict__.update({
            "_shape": dense.shape, "maxprint": 50, "indices": np.concatenate(cols).astype(np.int32),
            "indptr": np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.int32),
            "data": np.concatenate([dense[c_rows, c] for c, c_rows in enumerate(cols)]),
        })
        plain["J_regressor"] = sparse
        plain["supr_expression_metadata"] = {"expr_source": "SUPR_head", "supr_gender": "male",
                                             "expr_components": "last_100", "n_expr": 100}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(plain, protocol=protocol))
    finally:
        if saved is None:
            sys.modules.pop(module.__name__, None)
        else:
            sys.modules[module.__name__] = saved
    return path
