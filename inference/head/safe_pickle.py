"""Load FLAME-style pickles without chumpy and without running arbitrary pickle code.

FLAME 2020/2023 model files are Python-2 pickles holding numpy arrays, `chumpy.ch.Ch` arrays and
a `scipy.sparse` CSC matrix. A plain `pickle.load` would import and call whatever the file names,
so this module allows only the globals such files contain (an allowlist enforced in `find_class`,
which also sees protocol-0 files that `pickletools` cannot scan), maps chumpy's array class to a
stub keeping its value `x`, and rebuilds sparse matrices from their pickled state with numpy alone
(Blender ships no scipy). Anything else is refused by name.
"""

from __future__ import annotations

import copyreg
import importlib
import io
import pickle
from types import ModuleType
from typing import Any

import numpy as np


def _numpy_core(name: str) -> ModuleType:
    """numpy >= 2 keeps its pickle helpers in numpy._core, numpy 1.x (Blender's) in numpy.core."""
    try:
        return importlib.import_module(f"numpy._core.{name}")
    except ImportError:
        return importlib.import_module(f"numpy.core.{name}")


_multiarray, _numeric = _numpy_core("multiarray"), _numpy_core("numeric")


class ChumpyArray:
    """Stands in for `chumpy.ch.Ch`: the pickled state is its `__dict__`, whose `x` is the value."""

    def value(self) -> np.ndarray:
        if "x" not in self.__dict__:
            raise ValueError("a chumpy array without its value 'x'")
        return np.asarray(self.__dict__["x"])


class OpaqueChumpy:
    """Any other chumpy class (e.g. `chumpy.reordering.Select`): kept inert, never evaluated."""

    qualname = "chumpy"


class SparseMatrix:
    """Stands in for scipy's csc/csr matrix; densified from `data`, `indices`, `indptr`, shape."""

    fmt = "csc"

    def dense(self) -> np.ndarray:
        state = self.__dict__
        shape: Any = state.get("_shape", state.get("shape"))
        try:
            data = np.asarray(state["data"], dtype=np.float64)
            indices = np.asarray(state["indices"], dtype=np.int64)
            indptr = np.asarray(state["indptr"], dtype=np.int64)
            rows, cols = (int(shape[0]), int(shape[1]))
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"a sparse matrix with incomplete state ({exc})") from None
        major, minor = (cols, rows) if self.fmt == "csc" else (rows, cols)
        if len(indptr) != major + 1 or indptr[-1] != len(data) or len(indices) != len(data):
            raise ValueError("a sparse matrix whose index arrays do not match its shape")
        if len(indices) and (indices.min() < 0 or indices.max() >= minor):
            raise ValueError("a sparse matrix with indices out of range")
        out = np.zeros((major, minor))
        starts = np.repeat(np.arange(major), np.diff(indptr))
        np.add.at(out, (starts, indices), data)
        return out.T.copy() if self.fmt == "csc" else out


class CsrMatrix(SparseMatrix):
    fmt = "csr"


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
    ("copyreg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
    ("_codecs", "encode"): __import__("codecs").encode,
    ("chumpy.ch", "Ch"): ChumpyArray,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(_mod, "scalar")] = _multiarray.scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_mod, "_frombuffer")] = _numeric._frombuffer
for _mod in ("scipy.sparse.csc", "scipy.sparse._csc"):
    _ALLOWED[(_mod, "csc_matrix")] = SparseMatrix
for _mod in ("scipy.sparse.csr", "scipy.sparse._csr"):
    _ALLOWED[(_mod, "csr_matrix")] = CsrMatrix


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for a global outside the allowlist."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        if module.split(".")[0] == "chumpy":
            return type(name, (OpaqueChumpy,), {"qualname": f"{module}.{name}"})
        raise UnsafePickleError(f"it asks for '{module}.{name}', which a FLAME file never contains")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("it uses persistent ids, which a FLAME file never contains")


def load(data: bytes) -> Any:
    """Unpickle `data` (Python-2 pickles decode as latin1) under the allowlist."""
    return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def to_array(value: Any) -> np.ndarray:
    """A plain ndarray from anything the allowlist can produce (ndarray, chumpy stub, sparse stub)."""
    if isinstance(value, ChumpyArray):
        return value.value()
    if isinstance(value, SparseMatrix):
        return value.dense()
    if isinstance(value, OpaqueChumpy):
        raise ValueError(f"a chumpy expression ({value.qualname}) instead of an array")
    return np.asarray(value)
