"""Real Blender (the bpy module) with this checkout enabled as the `fields` extension, in a
throw-away user folder, for the development tools that drive Blender (benchmarks, renders).

Call `use_throwaway_user_folder()` before bpy is first imported (Blender reads the folder once),
then `enable_checkout(bpy)`. The developer's own Blender configuration is never touched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODULE = "bl_ext.user_default.fields"


def use_throwaway_user_folder(prefix: str = "fields-tool-") -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["BLENDER_USER_RESOURCES"] = str(folder)
    return folder


def enable_checkout(bpy: Any) -> None:
    """Link the checkout as the extension `fields`, reset to factory settings, enable it."""
    link = Path(os.environ["BLENDER_USER_RESOURCES"]) / "extensions" / "user_default" / "fields"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module=MODULE)
