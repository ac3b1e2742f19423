"""Shared test set-up. The Blender tier needs an isolated user folder before bpy is first imported,
so it is set here, at collection time, for the whole session."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
# Blender reads this once, when bpy is imported: every Blender test shares one throw-away folder,
# so nothing touches the developer's own Blender configuration.
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="fields-blender-user-"))

from flame_fixtures import make_flame_arrays, write_flame_npz, write_flame_pickle  # noqa: E402


@pytest.fixture(scope="session")
def flame_arrays() -> dict:
    return make_flame_arrays()


@pytest.fixture(scope="session")
def flame_pickle(tmp_path_factory: pytest.TempPathFactory, flame_arrays: dict) -> Path:
    """A FLAME 2020-style generic_model.pkl (chumpy arrays, old scipy sparse) with eyelids beside it."""
    return write_flame_pickle(tmp_path_factory.mktemp("flame"), flame_arrays)


@pytest.fixture(scope="session")
def flame_npz(tmp_path_factory: pytest.TempPathFactory, flame_arrays: dict) -> Path:
    return write_flame_npz(tmp_path_factory.mktemp("flame_npz") / "model.npz", flame_arrays)
