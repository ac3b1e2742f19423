"""Render the images of docs/USAGE.md through the add-on itself, headless, with Workbench.

Adds the open default head, reconstructs the bundled astronaut photo with the panel's operator, and
renders it at emotion intensity 0, 1 and 1.6 beside the photo (`docs/usage_reconstruct.png`).
Development tool: it imports bpy, which only fields_addon/ does at run time. Needs Mesa EGL on a
machine without a GPU, as tools/render_contact_sheet.py does.

    .venv/bin/python tools/render_usage_images.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from checkout_blender import enable_checkout, use_throwaway_user_folder  # noqa: E402

use_throwaway_user_folder("fields-usage-")

import bpy  # noqa: E402
from demo import render  # noqa: E402

PHOTO = ROOT / "inference" / "samples" / "astronaut.jpg"
OUTPUT = ROOT / "docs" / "usage_reconstruct.png"
SIZE = 320


def label(tile: np.ndarray, text: str) -> np.ndarray:
    strip = np.full((34, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)


def main() -> int:
    enable_checkout(bpy)
    bpy.ops.fields.add_head()
    head = bpy.context.active_object
    settings = bpy.context.scene.fields
    settings.filepath = str(PHOTO)
    bpy.ops.fields.reconstruct_photo()
    photo = cv2.resize(cv2.imread(str(PHOTO)), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    tiles = [label(photo, "photo")]
    with tempfile.TemporaryDirectory() as folder:
        for intensity in (0.0, 1.0, 1.6):
            head["fields_intensity"] = intensity
            head.update_tag()
            path = render(head, Path(folder) / f"{intensity}.png", SIZE)
            text = f"intensity {intensity:g}" + (f": {settings.result_emotion}" if intensity == 1.0 else "")
            tiles.append(label(cv2.imread(str(path)), text))
    # Quantised to 64 levels per channel: flat Workbench shading loses nothing, the PNG shrinks.
    cv2.imwrite(str(OUTPUT), (np.concatenate(tiles, axis=1) // 4) * 4, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
