"""Render the pictures of docs/USAGE.md section 7 (artist controls) through the add-on, headless.

Three small PNGs in docs/, each made by the add-on's own operators on the shipped ICT head:
`usage_calibration.png` (a face read at rest without and with its neutral set),
`usage_head_pose.png` (a render of the head turned by a known yaw, read back onto a fresh head's
neck), and `usage_strength.png` (the astronaut's smile with mouth strength 1 and 0.5).
Development tool: imports bpy; needs Mesa EGL without a GPU.

    .venv/bin/python tools/render_artist_images.py
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))
from checkout_blender import enable_checkout, use_throwaway_user_folder  # noqa: E402

use_throwaway_user_folder("fields-artist-")

import bpy  # noqa: E402
from demo import render  # noqa: E402

PHOTO = ROOT / "inference" / "samples" / "astronaut.jpg"
DOCS = ROOT / "docs"
SIZE = 256


def label(tile: np.ndarray, text: str) -> np.ndarray:
    strip = np.full((28, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)


def tile(path: Path, text: str, crop: float = 1.0) -> np.ndarray:
    image = cv2.imread(str(path))
    h, w = image.shape[:2]
    ch, cw = int(h * crop), int(w * crop)
    image = image[(h - ch) // 2:(h + ch) // 2, (w - cw) // 2:(w + cw) // 2]
    return label(cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA), text)


def write(name: str, tiles: list[np.ndarray]) -> None:
    out = DOCS / name
    cv2.imwrite(str(out), np.concatenate(tiles, axis=1), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out.relative_to(ROOT)}")


def fresh_head() -> object:
    for obj in list(bpy.data.objects):
        if obj.name != "Demo camera":
            bpy.data.objects.remove(obj)
    bpy.ops.fields.add_head(identity_keys=False)
    return bpy.context.active_object


def turned_photo(head: object, yaw_deg: float, path: Path, size: int = 512) -> Path:
    """A front render of `head` turned by `yaw_deg` about the middle of its face, with the camera of
    tests/blender/test_head_pose.py (MediaPipe's 63 degree field of view, 50 cm away)."""
    from mathutils import Euler, Matrix

    rig = head.parent  # type: ignore[attr-defined]
    scene = bpy.context.scene
    render(head, path, size)  # the same Workbench look as the other pictures; then the front camera
    eyes = [np.array(rig.data.bones[b].head_local) for b in ("eye.L", "eye.R")]
    centre = (eyes[0] + eyes[1]) / 2 - np.array([0.0, 0.0, 0.035])
    camera = scene.camera
    camera.data.sensor_fit, camera.data.angle_y = "VERTICAL", math.radians(63.0)
    camera.location = tuple(centre + np.array([0.0, -0.5, 0.0]))
    camera.rotation_euler = (math.pi / 2, 0.0, 0.0)
    pivot = Matrix.Translation(tuple(centre))
    rig.matrix_world = pivot @ Euler((0.0, 0.0, math.radians(yaw_deg))).to_matrix().to_4x4() @ pivot.inverted()
    bpy.ops.render.render(write_still=True)
    rig.matrix_world = Matrix.Identity(4)
    camera.data.sensor_fit, camera.data.lens = "AUTO", 85
    return path


def main() -> int:
    enable_checkout(bpy)
    settings = bpy.context.scene.fields
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        # Calibration: the astronaut read as is, and with her own photo as the neutral.
        head = fresh_head()
        settings.filepath = str(PHOTO)
        bpy.ops.fields.reconstruct_photo()
        plain = render(head, tmp / "plain.png", SIZE, yaw_deg=20)
        bpy.ops.fields.set_neutral()
        bpy.ops.fields.reconstruct_photo()
        calibrated = render(head, tmp / "calibrated.png", SIZE, yaw_deg=20)
        photo = cv2.resize(cv2.imread(str(PHOTO)), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        write("usage_calibration.png", [label(photo, "photo, also set as neutral"), tile(plain, "uncalibrated"),
                                        tile(calibrated, "calibrated: reads rest")])
        # Head pose: a render turned 20 degrees, read onto a fresh head (neutral: the rest render).
        head = fresh_head()
        rest = turned_photo(head, 0.0, tmp / "rest.png")
        turned = turned_photo(head, 20.0, tmp / "turned.png")
        settings.filepath = str(rest)
        bpy.ops.fields.set_neutral()
        settings.filepath, settings.head_pose_photo = str(turned), True
        bpy.ops.fields.reconstruct_photo()
        keyed = render(head, tmp / "keyed.png", SIZE, yaw_deg=0)
        settings.head_pose_photo = False
        write("usage_head_pose.png", [tile(turned, "photo: head turned 20 deg", crop=0.5),
                                      tile(keyed, "Reconstruct, Head pose on")])
        # Region strength: mouth 1 vs 0.5.
        head = fresh_head()
        settings.filepath = str(PHOTO)
        bpy.ops.fields.reconstruct_photo()
        full = render(head, tmp / "mouth1.png", SIZE, yaw_deg=20)
        head["fields_strength_mouth"] = 0.5  # type: ignore[index]
        head.update_tag()  # type: ignore[attr-defined]
        half = render(head, tmp / "mouth05.png", SIZE, yaw_deg=20)
        write("usage_strength.png", [tile(full, "Mouth strength 1"), tile(half, "Mouth strength 0.5")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
