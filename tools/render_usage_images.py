"""Render the images of docs/USAGE.md through the add-on itself, headless, with Workbench.

Adds the default (ICT) head, and renders it three-quarter, smooth-shaded: neutral, then the expression
Reconstruct reads from the bundled astronaut photo (public domain, shown beside it), then the
expression read from a held-out photo of the expressions-in-the-wild set (`--photo`; photographs of
that set cannot be redistributed, so only the head is shown) -> `docs/usage_reconstruct.png`. Rerun
it as is when the encoder changes. `--interchange` renders `docs/usage_interchange.png` instead: a
Live Link Face CSV written from a clip of the astronaut (generated, public domain) and keyed back
through Apply to Sequence, and the same clip standing in for a webcam in Live Capture.
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


def text_tile(lines: list[str], size: int) -> np.ndarray:
    tile = np.full((size, size, 3), 250, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(tile, line, (6, 22 + 19 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (30, 30, 30), 1, cv2.LINE_AA)
    return tile


def interchange(size: int = 256) -> int:
    """docs/usage_interchange.png: CSV in (a take keyed on the head), and live capture."""
    import importlib

    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from checkout_blender import MODULE
    from sequence_fixtures import moving_frame, write_video

    from inference.expression.encoder import ExpressionEncoder
    from inference.sequence.frames import open_source
    from inference.sequence.livelink import write_result
    from inference.sequence.pipeline import SequencePipeline

    enable_checkout(bpy)
    bpy.ops.fields.add_head(identity_keys=False)
    head = bpy.context.active_object
    settings = bpy.context.scene.fields
    bpy.context.scene.render.fps = 25
    with tempfile.TemporaryDirectory() as folder:
        clip = write_video(Path(folder) / "astronaut.avi", (moving_frame(i, 24) for i in range(24)), fps=25.0)
        raw = SequencePipeline(encoder=ExpressionEncoder()).run(open_source(clip))
        take = write_result(Path(folder) / "take.csv", raw.processed(), timecode_fps=60)
        lines = take.read_text().splitlines()
        cells = [line.split(",") for line in lines[:7]]
        rows = [["Timecode", "JawOpen", "SmileL"]] + [[c[0], c[19][:6], c[25][:6]] for c in cells[1:]]
        excerpt = ["take.csv, 63 columns:"] + [f"{a:<15} {b:>6} {c:>6}" for a, b, c in rows] + ["... 24 rows"]
        settings.seq_source, settings.seq_csv_path = "CSV", str(take)
        if bpy.ops.fields.apply_sequence() != {"FINISHED"}:
            return 1
        bpy.context.scene.frame_set(12)
        keyed = render(head, Path(folder) / "csv.png", size)
        tiles = [label(text_tile(excerpt, size), "Live Link Face CSV"),
                 label(cv2.imread(str(keyed)), "keyed from it")]
        head.animation_data_clear()
        live = importlib.import_module(MODULE + ".fields_addon.live")
        session = live.LiveSession(bpy.context, camera=str(clip), pace=False)
        while session.capture.running:
            session.tick(bpy.context)
        session.tick(bpy.context)
        number = session.capture.latest().number
        session.stop(bpy.context, keep=False)
        frame = cv2.resize(moving_frame(number, 24), (size * 4 // 3, size))[:, size // 6:size // 6 + size]
        tiles += [label(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), "camera (stand-in)"),
                  label(cv2.imread(str(render(head, Path(folder) / "live.png", size))), "Live Capture")]
    output = ROOT / "docs" / "usage_interchange.png"
    cv2.imwrite(str(output), np.concatenate(tiles, axis=1), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {output.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Render docs/usage_reconstruct.png through the add-on.")
    parser.add_argument("--photo", type=Path, default=WILD, help="second photo; only the head is shown")
    parser.add_argument("--interchange", action="store_true", help="render docs/usage_interchange.png instead")
    args = parser.parse_args(argv)
    if args.interchange:
        return interchange()
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
