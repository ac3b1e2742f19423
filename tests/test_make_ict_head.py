"""The ICT head generator's failure paths (issue 11): a corrupt archive or an incomplete folder ends
in one message naming the file, and nothing is written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import make_ict_head  # noqa: E402

ARCHIVE = make_ict_head.ARCHIVE


@pytest.mark.skipif(not ARCHIVE.is_file(), reason="the ICT archive is not in ../shared/data")
def test_a_truncated_archive_is_named_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "ict.tar.xz"
    with open(ARCHIVE, "rb") as source:
        bad.write_bytes(source.read(200_000))
    out = tmp_path / "head.npz"
    assert make_ict_head.main(["--source", str(bad), "--output", str(out)]) == 1
    message = capsys.readouterr().err
    assert str(bad) in message and "not a readable ICT FaceKit archive" in message
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_a_folder_without_the_model_is_named(tmp_path: Path, capsys) -> None:
    (tmp_path / "FaceXModel").mkdir()
    out = tmp_path / "head.npz"
    assert make_ict_head.main(["--source", str(tmp_path), "--output", str(out)]) == 1
    assert "generic_neutral_mesh.obj: is missing" in capsys.readouterr().err and not out.exists()


def test_a_garbled_obj_is_named(tmp_path: Path) -> None:
    obj = tmp_path / "generic_neutral_mesh.obj"
    obj.write_text("v 1 2 three\n")
    with pytest.raises(make_ict_head.IctSourceError, match="generic_neutral_mesh.obj: is not a readable OBJ"):
        make_ict_head.read_obj(obj)
