"""Render the images of docs/USAGE.md through the add-on itself, headless, with Workbench.

Adds the default (ICT) head, and renders it three-quarter, smooth-shaded: neutral, then the expression
Reconstruct reads from the bundled astronaut photo (public domain, shown beside it), then the
expression read from a held-out photo of the expressions-in-the-wild set (`--photo`; photographs of
that set cannot be redistributed, so only the head is shown) -> `docs/usage_reconstruct.png`. Rerun
it as is when the encoder changes.
Development tool: it imports bpy, which only fields_addon/ does at run time. Needs Mesa EGL on a
machine without a GPU.

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
# A held-out person of training/real_split.json with a clear expression (not redistributed: head only).
WILD = ROOT.parent / "shared" / "data" / "expressions-in-the-wild" / "images" / "Dawn_Staley_0001.jpg"
OUTPUT = ROOT / "docs" / "usage_reconstruct.png"
SIZE = 320


def label(tile: np.ndarray, text: str) -> np.ndarray:
    strip = np.full((34, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Render docs/usage_reconstruct.png through the add-on.")
    parser.add_argument("--photo", type=Path, default=WILD, help="second photo; only the head is shown")
    args = parser.parse_args(argv)
    enable_checkout(bpy)
    bpy.ops.fields.add_head()
    head = bpy.context.active_object
    settings = bpy.context.scene.fields
    photo = cv2.resize(cv2.imread(str(PHOTO)), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    tiles = [label(photo, "photo (public domain)")]
    with tempfile.TemporaryDirectory() as folder:
        tiles.append(label(cv2.imread(str(render(head, Path(folder) / "neutral.png", SIZE))), "neutral"))
        for name, source in (("astronaut", PHOTO), ("held-out photo", args.photo)):
            settings.filepath = str(source)
            if bpy.ops.fields.reconstruct_photo() != {"FINISHED"}:
                return 1
            path = render(head, Path(folder) / f"{name}.png", SIZE)
            tiles.append(label(cv2.imread(str(path)), f"{name}: {settings.result_emotion}"))
    cv2.imwrite(str(OUTPUT), np.concatenate(tiles, axis=1), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
