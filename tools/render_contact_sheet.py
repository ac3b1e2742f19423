"""Render the emotion prototypes on the default head with Blender's Workbench engine, headless.

Builds the head through the add-on itself ("Add Head" with no FLAME file set), poses it with each
prototype of `inference.emotions` at intensity 1 (neutral + 7), renders a front and a three-quarter
view of each, and writes one labelled PNG (`docs/emotions_contact_sheet.png`). Run with the
project's Blender-as-a-module environment: `.venv/bin/python tools/render_contact_sheet.py`. On a
machine without a GPU, Workbench needs Mesa's EGL (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri).
This is a development tool; it imports bpy, which only fields_addon/ does at run time.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]
from checkout_blender import enable_checkout, use_throwaway_user_folder  # noqa: E402

use_throwaway_user_folder("fields-render-")

import bpy  # noqa: E402
import cv2  # noqa: E402

from inference.expression.emotions import EMOTIONS, emotion_weights  # noqa: E402
from inference.head.default_head import load_default_head  # noqa: E402
from inference.head.forward import rodrigues  # noqa: E402
from inference.head.rig import FLAME_TO_BLENDER, flame_pose_to_bone_quaternions  # noqa: E402

OUTPUT = ROOT / "docs" / "emotions_contact_sheet.png"
COLOURS = {0: (0.80, 0.62, 0.52), 1: (0.93, 0.93, 0.90), 2: (0.16, 0.10, 0.06), 3: (0.75, 0.35, 0.38),
           4: (0.25, 0.16, 0.10), 5: (0.62, 0.30, 0.30)}
# Painted for legibility only (a viewer reads brows and lips by their colour): MediaPipe's brow and
# lip landmarks, both sides.
BROWS = [70, 63, 105, 66, 107, 46, 53, 52, 65, 55, 300, 293, 334, 296, 336, 276, 283, 282, 295, 285]
LIPS = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375,
        78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 95, 88, 178, 87, 14, 317, 402, 318, 324]
VIEWS = {"front": 0.0, "three-quarter": 35.0}


def build_scene(size: int) -> tuple[bpy.types.Object, bpy.types.Object]:
    enable_checkout(bpy)
    bpy.ops.fields.add_head()
    head = bpy.context.view_layer.objects.active
    model, _ = load_default_head()
    parts = model.extras["vertex_parts"].copy()
    parts[BROWS], parts[LIPS] = 4, 5
    colours = head.data.color_attributes.new("part", "FLOAT_COLOR", "POINT")
    rgba = np.array([COLOURS[int(p)] + (1.0,) for p in parts], dtype=np.float32)
    colours.data.foreach_set("color", rgba.ravel())
    head.data.color_attributes.active_color = colours

    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.film_transparent = False
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "VERTEX"
    shading.show_cavity = True
    shading.show_specular_highlight = False
    scene.world = bpy.data.worlds.new("sheet") if scene.world is None else scene.world
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.data.lens = 85
    scene.collection.objects.link(camera)
    scene.camera = camera
    return head, camera


def aim(camera: bpy.types.Object, target: np.ndarray, yaw_degrees: float, distance: float) -> None:
    yaw = math.radians(yaw_degrees)
    # The face looks down Blender's -Y; swing the camera toward the subject's right (-X) for 3/4.
    camera.location = (target[0] - distance * math.sin(yaw), target[1] - distance * math.cos(yaw), target[2])
    camera.rotation_euler = (math.pi / 2, 0.0, -yaw)


def pose(head: bpy.types.Object, model, mapping, weights: np.ndarray) -> None:
    params = mapping.to_params(weights)
    blocks = head.data.shape_keys.key_blocks
    for name, value in zip(model.expression_names, params.expression, strict=True):
        blocks[name].value = float(value)
    for name, value in zip(model.eyelid_names, params.eyelids, strict=True):
        blocks[name].value = float(value)
    for joint, quaternion in flame_pose_to_bone_quaternions(rodrigues(params.pose)).items():
        head.parent.pose.bones[joint].rotation_quaternion = quaternion
    bpy.context.view_layer.update()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--size", type=int, default=256, help="pixels per rendered view")
    args = parser.parse_args(argv)
    model, mapping = load_default_head()
    head, camera = build_scene(args.size)
    centre = FLAME_TO_BLENDER @ (model.v_template[:468].min(axis=0) + model.v_template[:468].max(axis=0)) / 2
    tiles = []
    with tempfile.TemporaryDirectory() as folder:
        for emotion in EMOTIONS:
            pose(head, model, mapping, emotion_weights(emotion, 1.0))
            column = []
            for view, yaw in VIEWS.items():
                aim(camera, centre, yaw, 0.48)
                path = Path(folder) / f"{emotion}_{view}.png"
                bpy.context.scene.render.filepath = str(path)
                bpy.ops.render.render(write_still=True)
                image = cv2.imread(str(path))
                column.append(image)
            tile = np.concatenate(column, axis=0)
            label = np.full((36, tile.shape[1], 3), 255, np.uint8)
            cv2.putText(label, emotion, (10, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (20, 20, 20), 2, cv2.LINE_AA)
            tiles.append(np.concatenate([label, tile], axis=0))
    sheet = np.concatenate([np.concatenate(tiles[:4], axis=1), np.concatenate(tiles[4:], axis=1)], axis=0)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # Quantised to 64 levels per channel: the flat Workbench shading loses nothing, the PNG shrinks.
    cv2.imwrite(str(args.output), (sheet // 4) * 4, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
