"""The Blender tier: real bpy, headless. The repository is linked into the session's isolated user
folder as the extension `fields`, so Blender imports it exactly as it imports an installed extension
(`bl_ext.user_default.fields`). Each test starts from factory settings with the add-on enabled."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

ROOT = Path(__file__).resolve().parents[2]
MODULE = "bl_ext.user_default.fields"


def _link_extension() -> None:
    repo = Path(os.environ["BLENDER_USER_RESOURCES"]) / "extensions" / "user_default"
    repo.mkdir(parents=True, exist_ok=True)
    link = repo / "fields"
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)


_link_extension()


@pytest.fixture
def blender() -> Iterator:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module=MODULE)
    yield bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)


def scene_state() -> dict[str, list[str]]:
    """Names of every datablock an operator could add, to check a failure left nothing behind."""
    return {
        name: sorted(item.name for item in getattr(bpy.data, name))
        for name in ("objects", "meshes", "armatures", "shape_keys", "actions", "collections", "images")
    }
