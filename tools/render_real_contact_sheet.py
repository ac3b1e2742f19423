"""Render real held-out faces beside the ICT head reconstructed from them, headless, through the add-on.

For each face: the add-on's own "Reconstruct from photo" (perception, the shipped encoder, the plan
onto the ICT head built by "Add Head") on the image, then a Workbench render of the head from the
front. Two sheets:

* `docs/real_contact_sheet.png` (committed): frames of the held-out talking clips (MIT, LivePortrait's
  driving clips) beside their reconstructions, and the reconstructions of held-out photos of
  `expressions-in-the-wild` labelled with their class and what was read, WITHOUT the photos: the
  data's README forbids redistributing those images.
* `--private` (default `/tmp/fields_real_contact_sheet_private.png`, never committed): the same with
  the held-out photos beside their heads, for the person checking the model to look at.

Photos: one per class, the first held-out photo of that class in sha256(name) order. Run with the
project's Blender-as-a-module environment: `.venv/bin/python tools/render_real_contact_sheet.py`.
This is a development tool; it imports bpy, which only fields_addon/ does at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]
from checkout_blender import enable_checkout, use_throwaway_user_folder  # noqa: E402

use_throwaway_user_folder("fields-real-sheet-")

import bpy  # noqa: E402
import cv2  # noqa: E402
from embed_ict_landmarks import aim, face_centre, setup_scene  # noqa: E402

from training.model import EMOTIONS  # noqa: E402
from training.real_data import CLIPS, PHOTOS, data_root, load_clips, load_photos  # noqa: E402
from training.real_split import load_split  # noqa: E402

OUTPUT = ROOT / "docs" / "real_contact_sheet.png"
PRIVATE = Path("/tmp/fields_real_contact_sheet_private.png")
FRAMES_PER_CLIP = 4


def reconstruct(path: Path) -> str:
    settings = bpy.context.scene.fields
    settings.filepath = str(path)
    if bpy.ops.fields.reconstruct_photo() != {"FINISHED"}:
        raise RuntimeError(f"Reconstruct failed on {path}")
    return f"{settings.result_emotion} {settings.result_intensity:.2f}"


def render(camera: bpy.types.Object, target: np.ndarray, folder: Path, name: str, size: int) -> np.ndarray:
    aim(camera, target, 0.0, 0.0)
    path = folder / f"{name}.png"
    bpy.context.scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    image = cv2.imread(str(path))
    return cv2.resize(image[image.shape[0] // 8: image.shape[0] * 7 // 8, image.shape[1] // 8: image.shape[1] * 7 // 8],
                      (size, size))


def face_crop(image: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """A square around the face's landmarks, 1.6 face widths wide."""
    centre = landmarks[:, :2].mean(0)
    half = 0.8 * float(np.ptp(landmarks[:, :2], axis=0).max())
    x0, y0 = int(max(centre[0] - half, 0)), int(max(centre[1] - half, 0))
    crop = image[y0: int(centre[1] + half), x0: int(centre[0] + half)]
    return cv2.resize(crop, (size, size))


def labelled(tile: np.ndarray, text: str) -> np.ndarray:
    band = np.full((28, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text[:34], (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([band, tile], axis=0)


def grid(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    blank = np.full_like(tiles[0], 255)
    tiles = tiles + [blank] * (-len(tiles) % columns)
    return np.concatenate([np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--private", type=Path, default=PRIVATE)
    parser.add_argument("--size", type=int, default=200, help="pixels per tile")
    args = parser.parse_args(argv)
    enable_checkout(bpy)
    _, camera, model = setup_scene()
    # The part materials' colours (Add Head's), not the embedding's paint: lashes and tear film hidden.
    bpy.context.scene.display.shading.color_type = "MATERIAL"
    target = face_centre(model)
    split = load_split()
    photos = load_photos()
    held = [i for i, person in enumerate(photos.people) if split.is_held_out(person)]
    chosen = []
    for label in range(len(EMOTIONS)):
        rows = sorted((i for i in held if photos.emotion[i] == label),
                      key=lambda i: hashlib.sha256(photos.names[i].encode()).hexdigest())
        chosen += rows[:1]
    public, private = [], []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for clip in load_clips(names=list(split.held_out_clips)):
            video = cv2.VideoCapture(str(data_root() / CLIPS / f"{clip.name}.mp4"))
            found = np.flatnonzero(clip.found)
            for row in found[np.linspace(0, len(found) - 1, FRAMES_PER_CLIP).astype(int)]:
                video.set(cv2.CAP_PROP_POS_FRAMES, int(clip.frames[row]))
                ok, frame = video.read()
                if not ok:
                    continue
                path = folder / f"{clip.name}_{row}.png"
                cv2.imwrite(str(path), frame)
                read = reconstruct(path)
                head = render(camera, target, folder, f"head_{clip.name}_{row}", args.size)
                pair = np.concatenate([face_crop(frame, clip.landmarks[row], args.size), head], axis=1)
                public.append(labelled(pair, f"clip {clip.name} f{int(clip.frames[row])}: {read}"))
            video.release()
        private += public
        for i in chosen:
            path = data_root() / PHOTOS / "images" / photos.names[i]
            read = reconstruct(path)
            head = render(camera, target, folder, f"photo_{i}", args.size)
            image = cv2.imread(str(path))
            text = f"{EMOTIONS[photos.emotion[i]]} -> {read}"
            public.append(labelled(np.concatenate([np.full_like(head, 235), head], axis=1), f"photo {text}"))
            private.append(labelled(np.concatenate([face_crop(image, photos.landmarks[i], args.size), head], axis=1),
                                    text))
    for sheet, path in ((grid(public, 4), args.output), (grid(private, 4), args.private)):
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
