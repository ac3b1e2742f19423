"""Install the built extension zip into a fresh Blender, as an artist would, and report as JSON.

Run in its own process (`python install_check.py ZIP FLAME_FILE`) because Blender reads its user
folder once per process and the test session already has the checkout linked as `fields`."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="fields-install-")

import bpy  # noqa: E402, I001  (first: it puts Blender's own modules on sys.path)
import addon_utils  # noqa: E402

MODULE = "bl_ext.user_default.fields"


def registered() -> dict[str, bool]:
    return {
        "panel": hasattr(bpy.types, "FIELDS_PT_reconstruct"),
        "operator": hasattr(bpy.types, "FIELDS_OT_add_head"),
        "preferences": MODULE in bpy.context.preferences.addons,
    }


def main(zip_path: str, flame_path: str) -> dict:
    report: dict = {"before": registered()}
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=False)
    installed = Path(bpy.utils.user_resource("EXTENSIONS")) / "user_default" / "fields"
    report["installed_files"] = sorted(p.name for p in installed.iterdir()) if installed.exists() else []
    start = time.perf_counter()
    bpy.ops.preferences.addon_enable(module=MODULE)  # the first enable also unpacks the bundled wheels
    report["first_enable_seconds"] = time.perf_counter() - start
    report["enabled"] = registered()
    report["heavy_modules_after_enable"] = sorted(m for m in ("onnxruntime", "cv2") if m in sys.modules)
    # What every later Blender start-up pays: import and register, the wheels already in place.
    addon_utils.disable(MODULE)
    for name in [name for name in sys.modules if name.startswith(MODULE)]:
        del sys.modules[name]
    start = time.perf_counter()
    addon_utils.enable(MODULE, default_set=True, refresh_handled=True)
    report["enable_seconds"] = time.perf_counter() - start
    # The bundled wheel, not the test environment's copy, must import inside Blender.
    site = Path(bpy.utils.user_resource("EXTENSIONS")) / ".local" / "lib" / "python3.11" / "site-packages"
    sys.path.insert(0, str(site))
    import onnxruntime

    report["onnxruntime_from"] = str(Path(onnxruntime.__file__).relative_to(site))
    report["onnxruntime_providers"] = onnxruntime.get_available_providers()
    import cv2

    report["cv2_from"] = str(Path(cv2.__file__).relative_to(site))
    result = bpy.ops.fields.add_head(filepath=flame_path)
    report["add_head"] = sorted(result)
    obj = bpy.context.active_object
    report["head"] = {"name": obj.name, "shape_keys": len(obj.data.shape_keys.key_blocks), "rig": obj.parent.name}
    bpy.ops.extensions.package_uninstall(repo_index=_repo_index("user_default"), pkg_id="fields")
    report["after_uninstall"] = registered()
    report["left_on_disk"] = installed.exists()
    return report


def _repo_index(module: str) -> int:
    repos = bpy.context.preferences.extensions.repos
    return next(i for i, repo in enumerate(repos) if repo.module == module)


if __name__ == "__main__":
    print("FIELDS-INSTALL-REPORT " + json.dumps(main(sys.argv[1], sys.argv[2])))
