"""The add-on's main job, headless in real Blender, from a checkout.

Builds the CPU extension zip for this platform, installs it into a fresh Blender user folder
(out/blender-user, so the developer's own Blender is untouched), enables it, runs "Add Head" on the
FLAME file given with --flame (or the add-on's default when none is given), and saves
out/demo.blend.

    .venv/bin/python tools/demo.py --flame /path/to/generic_model.pkl
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flame", type=Path, help="FLAME model file (generic_model.pkl, flame2023.pkl or .npz)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "tools"))
    import build_extension

    (zip_path,) = build_extension.build("cpu", [build_extension.current_platform()], OUT / "dist", ROOT / "wheels")
    user = OUT / "blender-user"
    shutil.rmtree(user, ignore_errors=True)
    os.environ["BLENDER_USER_RESOURCES"] = str(user)
    import bpy  # after the user folder is set: Blender reads it once

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default", enable_on_install=True)
    start = time.perf_counter()
    try:
        bpy.ops.fields.add_head(filepath=str(args.flame.resolve()) if args.flame else "")
    except RuntimeError as error:  # the operator's report, e.g. a missing or broken FLAME file
        print(f"demo: {str(error).removeprefix('Error: ').strip()}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    head = bpy.context.active_object
    blend = OUT / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))  # Blender writes a temporary file, then renames
    keys = head.data.shape_keys.key_blocks
    print(f"installed {zip_path.name}; added '{head.name}' in {seconds:.2f} s: {len(head.data.vertices)} vertices, "
          f"{len(keys) - 1} shape keys, rig '{head.parent.name}' with {len(head.parent.data.bones)} bones")
    print(f"saved {blend.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
