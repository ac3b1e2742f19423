"""The add-on's main job, headless in real Blender, from a checkout.

Builds the CPU extension zip for this platform, installs it into a fresh Blender user folder
(out/blender-user, so the developer's own Blender is untouched), enables it, runs "Add Head" on the
FLAME file given with --flame (or the open default head when none is given), reconstructs the
bundled public-domain photo (or --photo) onto it with the panel's operator, keys the emotion
intensity, saves out/demo.blend, renders out/demo.png with Workbench and prints the emotion read.
A FLAME head also needs --embedding (FLAME's mediapipe_landmark_embedding.npz) to be retargeted.

    .venv/bin/python tools/demo.py [--flame generic_model.pkl --embedding mediapipe_landmark_embedding.npz]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flame", type=Path, help="FLAME model file (generic_model.pkl, flame2023.pkl or .npz)")
    parser.add_argument("--embedding", type=Path, help="FLAME's mediapipe_landmark_embedding.npz (for --flame)")
    parser.add_argument("--photo", type=Path, default=ROOT / "inference" / "samples" / "astronaut.jpg")
    parser.add_argument("--size", type=int, default=512, help="render size in pixels")
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
    preferences = bpy.context.preferences.addons["bl_ext.user_default.fields"].preferences
    preferences.flame_path = str(args.flame.resolve()) if args.flame else ""
    preferences.embedding_path = str(args.embedding.resolve()) if args.embedding else ""
    settings = bpy.context.scene.fields
    settings.filepath = str(args.photo.resolve())
    start = time.perf_counter()
    try:
        bpy.ops.fields.add_head()
        added = time.perf_counter() - start
        bpy.ops.fields.reconstruct_photo()  # the panel's Reconstruct button
        bpy.ops.fields.key_intensity()  # the panel's Key Intensity button, at the current frame
    except RuntimeError as error:  # the operator's report: a broken file, no face, ...
        print(f"demo: {str(error).removeprefix('Error: ').strip()}", file=sys.stderr)
        return 1
    head = bpy.context.active_object
    blend = OUT / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))  # Blender writes a temporary file, then renames
    png = render(head, OUT / "demo.png", args.size)
    keys = head.data.shape_keys.key_blocks
    print(f"installed {zip_path.name}; added '{head.name}' in {added:.2f} s: {len(head.data.vertices)} vertices, "
          f"{len(keys) - 1} shape keys, rig '{head.parent.name}' with {len(head.parent.data.bones)} bones")
    print(f"read {args.photo.name}: {settings.result_emotion} ({settings.result_confidence:.0%}), intensity "
          f"{settings.result_intensity:.2f}, applied {settings.result_route} on {settings.result_providers} in "
          f"{settings.result_seconds:.2f} s (first call: sessions created)")
    print(f"saved {blend.relative_to(ROOT)} and {png.relative_to(ROOT)}")
    return 0


def render(head: Any, path: Path, size: int, yaw_deg: float = 35.0) -> Path:
    """A three-quarter Workbench render of the head's face, smooth-shaded, each part in its own
    colour (headless: Mesa EGL where there is no GPU)."""
    import bpy
    import numpy as np
    from mathutils import Vector

    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.image_settings.file_format = "PNG"
    scene.render.film_transparent = False
    if scene.world is None:  # Workbench renders the world colour as background; an empty scene has none
        scene.world = bpy.data.worlds.new("Demo world")
    scene.world.color = (0.9, 0.9, 0.9)
    shading = scene.display.shading
    shading.light, shading.show_cavity = "STUDIO", False
    shading.color_type = "MATERIAL" if head.data.materials else "SINGLE"
    shading.single_color = (0.80, 0.62, 0.52)  # a head without parts; Add Head colours each part's material
    # Frame the face: between the eyes when the rig has eye bones, else the middle of the mesh.
    rig = head.parent
    if rig is not None and "eye.L" in rig.pose.bones:
        eyes = [rig.matrix_world @ rig.data.bones[b].head_local for b in ("eye.L", "eye.R")]
        centre = np.array((eyes[0] + eyes[1]) / 2) - np.array([0.0, 0.0, 0.025])
        distance = 0.6
    else:
        corners = np.array([head.matrix_world @ Vector(c) for c in head.bound_box])
        centre, distance = (corners.min(axis=0) + corners.max(axis=0)) / 2, 0.55
    camera = bpy.data.objects.get("Demo camera")
    if camera is None:
        camera = bpy.data.objects.new("Demo camera", bpy.data.cameras.new("Demo camera"))
    camera.data.lens = 85
    if camera.name not in scene.collection.objects:
        scene.collection.objects.link(camera)
    scene.camera = camera
    # The face looks down Blender's -Y; the camera turns about the face by `yaw_deg` to the subject's left.
    yaw = math.radians(yaw_deg)
    camera.location = (centre[0] + distance * math.sin(yaw), centre[1] - distance * math.cos(yaw), centre[2])
    camera.rotation_euler = (math.pi / 2, 0.0, yaw)
    scene.render.filepath = str(path)
    try:
        bpy.ops.render.render(write_still=True)
    except RuntimeError as error:  # no OpenGL: Blender as a module renders through EGL
        raise SystemExit(f"demo: the Workbench render failed ({str(error).strip()}); headless machines need "
                         "Mesa's EGL: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri") from None
    return path


if __name__ == "__main__":
    raise SystemExit(main())
