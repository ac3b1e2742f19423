"""The FLAME loader: real FLAME-format files made by the tests, loaded without chumpy, and every
kind of bad file refused with a message naming it (issue 2)."""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from flame_fixtures import chumpy_state, flame_pickle_bytes, write_flame_npz, write_flame_pickle

from inference.errors import FaceModelError
from inference.head.face_model import PARENTS, load_face_model


def test_chumpy_is_not_installed() -> None:
    # The loader's promise is to work without chumpy; make sure the tests can't lean on it.
    assert importlib.util.find_spec("chumpy") is None


def test_loads_flame2020_pickle(flame_pickle: Path, flame_arrays: dict) -> None:
    model = load_face_model(flame_pickle)
    np.testing.assert_array_equal(model.v_template, flame_arrays["v_template"])
    np.testing.assert_array_equal(model.shapedirs, flame_arrays["shapedirs"][:, :, :300])
    np.testing.assert_array_equal(model.exprdirs, flame_arrays["shapedirs"][:, :, 300:])
    np.testing.assert_array_equal(model.j_regressor, flame_arrays["J_regressor"])
    np.testing.assert_array_equal(model.weights, flame_arrays["weights"])
    np.testing.assert_array_equal(model.faces, flame_arrays["f"].astype(np.int32))
    np.testing.assert_array_equal(model.parents, PARENTS)
    assert model.eyelids is not None
    np.testing.assert_array_equal(model.eyelids[0], flame_arrays["l_eyelid"])
    assert (model.n_shape, model.n_expr) == (300, 100)
    assert model.expression_names[:2] == ("exp_000", "exp_001")
    assert "chumpy" not in sys.modules and "chumpy.ch" not in sys.modules


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_loads_every_python2_protocol(tmp_path: Path, flame_arrays: dict, protocol: int) -> None:
    path = write_flame_pickle(tmp_path, flame_arrays, protocol=protocol, eyelids=False)
    model = load_face_model(path)
    np.testing.assert_array_equal(model.posedirs, flame_arrays["posedirs"])
    assert model.eyelids is None


def test_loads_npz_with_names_and_split(tmp_path: Path, flame_arrays: dict) -> None:
    arrays = dict(flame_arrays, n_shape=np.array(390), expression_names=np.array([f"unit{i}" for i in range(10)]))
    model = load_face_model(write_flame_npz(tmp_path / "head.npz", arrays))
    assert (model.n_shape, model.n_expr) == (390, 10)
    assert model.expression_names[-1] == "unit9"
    assert model.eyelids is not None


def test_rejects_code_execution(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    with pytest.raises(FaceModelError, match=r"evil\.pkl' was refused: it asks for '__builtin__\.getattr'"):
        load_face_model(path)
    assert not marker.exists()


def test_rejects_os_system_by_name(tmp_path: Path) -> None:
    path = tmp_path / "system.pkl"
    path.write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    with pytest.raises(FaceModelError, match=r"asks for 'os\.system'"):
        load_face_model(path)


def test_other_chumpy_classes_are_inert(tmp_path: Path, flame_arrays: dict) -> None:
    class Select:
        pass

    Select.__module__, Select.__qualname__ = "chumpy.reordering", "Select"
    sys.modules["chumpy.reordering"] = type(sys)("chumpy.reordering")
    sys.modules["chumpy.reordering"].Select = Select  # type: ignore[attr-defined]
    try:
        select = Select()
        select.__dict__.update(chumpy_state(np.zeros((5, 3))))
        # In 'J' (recomputed anyway) it is harmless; in a key we need it is an error.
        ok = tmp_path / "ok" / "generic_model.pkl"
        ok.parent.mkdir()
        ok.write_bytes(flame_pickle_bytes(flame_arrays, extra={"J": select}))
        assert load_face_model(ok).n_verts == len(flame_arrays["v_template"])
        bad = tmp_path / "bad.pkl"
        bad.write_bytes(flame_pickle_bytes(flame_arrays, extra={"weights": select}))
    finally:
        del sys.modules["chumpy.reordering"]
    with pytest.raises(FaceModelError, match=r"'weights' is a chumpy expression \(chumpy\.reordering\.Select\)"):
        load_face_model(bad)


def _pickled(tmp_path: Path, name: str, arrays: dict, **changes: object) -> Path:
    path = tmp_path / name
    data = {k: v for k, v in arrays.items() if k not in changes or changes[k] is not None}
    data.update({k: v for k, v in changes.items() if v is not None})
    path.write_bytes(flame_pickle_bytes(data))
    return path


BAD_PICKLES = {
    "missing key": ({"weights": None}, r"missing key\(s\) weights"),
    "wrong shapedirs": ({"shapedirs": np.zeros((3, 3, 400))}, r"'shapedirs' has shape \(3, 3, 400\)"),
    "wrong posedirs": ({"posedirs": np.zeros((218, 3, 35))}, r"'posedirs' has shape"),
    "too few components": ({"shapedirs": np.zeros((218, 3, 200))}, r"fewer than its 300 identity"),
    "faces out of range": ({"f": np.array([[0, 1, 9999]], dtype=np.uint32)}, r"'f' refers to vertices outside"),
    "float faces": ({"f": np.zeros((2, 3))}, r"'f' has shape \(2, 3\) and type float64"),
    "nan": ({"v_template": np.full((218, 3), np.nan)}, r"'v_template' contains NaN"),
    "weights not normalised": ({"weights": np.ones((218, 5))}, r"rows of 'weights' do not sum to 1"),
    "wrong tree": ({"kintree_table": np.array([[9, 0, 0, 1, 1], [0, 1, 2, 3, 4]])}, r"not FLAME's joint tree"),
    "string faces": ({"f": "abc"}, r"'f' has shape \(\), expected 2 dimensions"),
}


@pytest.mark.parametrize("case", sorted(BAD_PICKLES))
def test_bad_contents_name_the_file_and_problem(tmp_path: Path, flame_arrays: dict, case: str) -> None:
    changes, message = BAD_PICKLES[case]
    path = _pickled(tmp_path, "broken_model.pkl", flame_arrays, **changes)
    with pytest.raises(FaceModelError, match=message) as info:
        load_face_model(path)
    assert str(path) in str(info.value)


def test_bad_files(tmp_path: Path, flame_arrays: dict, flame_pickle: Path) -> None:
    cases: dict[Path, str] = {tmp_path / "nowhere.pkl": "does not exist", tmp_path: "is not a file"}
    empty = tmp_path / "empty.pkl"
    empty.touch()
    cases[empty] = "is empty"
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(flame_pickle.read_bytes()[:5000])
    cases[truncated] = "is truncated or not a FLAME pickle"
    text = tmp_path / "notes.pkl"
    text.write_text("this is not a model\n")
    cases[text] = "is truncated or not a FLAME pickle"
    wrong_type = tmp_path / "list.pkl"
    wrong_type.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    cases[wrong_type] = "holds a list, not a dict"
    persistent = tmp_path / "persistent.pkl"
    persistent.write_bytes(b"Pfoo\n.")
    cases[persistent] = "persistent ids"
    npz_missing = write_flame_npz(tmp_path / "partial.npz", flame_arrays, drop=("posedirs", "f"))
    cases[npz_missing] = r"missing key\(s\) f, posedirs"
    npz_object = tmp_path / "objects.npz"
    np.savez(npz_object, v_template=np.array([{"a": 1}], dtype=object))
    cases[npz_object] = "cannot be read safely"
    npz_truncated = tmp_path / "cut.npz"
    npz_truncated.write_bytes(write_flame_npz(tmp_path / "full.npz", flame_arrays).read_bytes()[:-2000])
    cases[npz_truncated] = "truncated or not an .npz"
    one_eyelid = write_flame_npz(tmp_path / "one_eyelid.npz", flame_arrays, drop=("r_eyelid",))
    cases[one_eyelid] = "only one of 'l_eyelid' and 'r_eyelid'"
    for path, message in cases.items():
        with pytest.raises(FaceModelError, match=message) as info:
            load_face_model(path)
        assert str(path) in str(info.value), path


def test_bad_eyelid_file_is_named(tmp_path: Path, flame_arrays: dict) -> None:
    path = write_flame_pickle(tmp_path, flame_arrays)
    (tmp_path / "r_eyelid.npy").write_bytes(b"garbage")
    with pytest.raises(FaceModelError, match=r"r_eyelid\.npy' is not a readable eyelid array"):
        load_face_model(path)


@pytest.mark.parametrize(("extra", "message"), [
    ({"vt": np.zeros((4, 2))}, "UVs need both 'vt' and 'ft'"),
    ({"vt": np.zeros((4, 2)), "ft": "faces+4"}, r"'ft' refers to UVs outside 0\.\.3"),
    ({"face_parts": "zeros", "part_names": np.array(["skin", "skin"])}, "distinct 'part_names'"),
    ({"face_parts": "twos", "part_names": np.array(["skin", "eyes"])}, "parts outside the 2"),
])
def test_bad_uvs_and_parts_name_the_file(tmp_path: Path, flame_arrays: dict, extra: dict, message: str) -> None:
    """Issue 11: a head file's UVs and part index are checked on load, like every other array."""
    n_faces = len(flame_arrays["f"])
    given = {"faces+4": np.asarray(flame_arrays["f"]) + 4, "zeros": np.zeros(n_faces, np.int8),
             "twos": np.full(n_faces, 2, np.int8)}
    extra = {k: given[v] if isinstance(v, str) else v for k, v in extra.items()}
    path = write_flame_npz(tmp_path / "head.npz", dict(flame_arrays, **extra))
    with pytest.raises(FaceModelError, match=message) as info:
        load_face_model(path)
    assert str(path) in str(info.value)


def test_uvs_and_parts_load(tmp_path: Path, flame_arrays: dict) -> None:
    from inference.head.face_model import face_uvs

    faces = np.asarray(flame_arrays["f"])
    vt = np.random.default_rng(0).uniform(size=(faces.max() + 1, 2))
    parts = np.arange(len(faces)) % 2
    path = write_flame_npz(tmp_path / "head.npz", dict(flame_arrays, vt=vt, ft=faces, face_parts=parts,
                                                       part_names=np.array(["skin", "eyes"])))
    uvs = face_uvs(load_face_model(path))
    assert uvs is not None
    np.testing.assert_array_equal(uvs, vt[faces])
