"""Render the pictures of docs/USAGE.md section 7 (artist controls) through the add-on, headless.

Five small PNGs in docs/, each made by the add-on's own operators on the shipped ICT head:
`usage_calibration.png` (a face read at rest without and with its neutral set),
`usage_head_pose.png` (a render of the head turned by a known yaw, read back onto a fresh head's
neck), `usage_strength.png` (the astronaut's smile with mouth strength 1 and 0.5), and
`usage_mapping.png` (the ICT head with its keys renamed to Character Creator 4's Extended names,
driven by name, then with the smile's mapping rows at gain 0.5, beside a few of its rows), and
`usage_confidence.png` (a real talking clip, ../shared/data, with the face covered for half a
second: the face score keyed per frame with Min confidence, and the smile's keys across the gap).
Development tool: imports bpy; needs Mesa EGL without a GPU.

    .venv/bin/python tools/render_artist_images.py [calibration head_pose strength mapping confidence]
"""

from __future__ import annotations

import math
import re
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from checkout_blender import enable_checkout, use_throwaway_user_folder  # noqa: E402

use_throwaway_user_folder("fields-artist-")

import bpy  # noqa: E402
from demo import render  # noqa: E402

from inference.perception.blendshapes import ARKIT_NAMES  # noqa: E402
from inference.retarget.plan import weight_property  # noqa: E402
from inference.sequence.plan import CONFIDENCE_PROPERTY  # noqa: E402

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


def cc4_name(unit: str) -> str:
    """A unit's key name on a CC4 Extended head, where `arkit_key` reads it (mouthSmileLeft -> Mouth_Smile_L)."""
    words = re.findall(r"[A-Z]?[a-z]+", unit[0].upper() + unit[1:])
    return "_".join({"Left": "L", "Right": "R"}.get(word, word) for word in words)


def cc4_head() -> object:
    """A fresh ICT head named as a CC4 Extended head is: each ARKit key renamed to its CC4 name; a
    unit CC4 splits in several keys (browInnerUp: Brow_Raise_Inner_L + _R) split by the face's side
    (+X is its left) and, for four keys, above and below the key's weighted centre, so the keys
    driven together make the ICT shape again. jawOpen becomes the viseme V_Open and tongueOut goes
    (CC4 turns bones for both), and the head loses its face-model tag: to FIELDS it is a foreign rig."""
    from inference.retarget.names import CC4_EXTENDED

    head = fresh_head()
    mesh, blocks = head.data, head.data.shape_keys.key_blocks  # type: ignore[attr-defined]
    basis = np.empty(len(mesh.vertices) * 3, np.float32)
    blocks[0].points.foreach_get("co", basis)
    basis = basis.reshape(-1, 3)
    for unit in list(blocks.keys())[1:]:
        block = blocks[unit]
        names = CC4_EXTENDED.get(unit, (cc4_name(unit),))
        if unit in ("jawOpen", "tongueOut"):
            if unit == "tongueOut":
                head.shape_key_remove(block)  # type: ignore[attr-defined]
            else:
                block.name = "V_Open"
            continue
        if len(names) == 1:
            block.name = names[0]
            continue
        co = np.empty_like(basis.ravel())
        block.points.foreach_get("co", co)
        delta = co.reshape(-1, 3) - basis
        moved = np.linalg.norm(delta, axis=1)
        middle = float((basis[:, 2] * moved).sum() / moved.sum())
        for name in names:
            part = (basis[:, 0] > 0) == name.endswith("_L")
            if "_Up_" in name or "_Down_" in name:
                part &= (basis[:, 2] >= middle) == ("_Up_" in name)
            key = head.shape_key_add(name=name, from_mix=False)  # type: ignore[attr-defined]
            key.points.foreach_set("co", (basis + delta * part[:, None]).astype(np.float32).ravel())
            key.value = 0.0
        head.shape_key_remove(block)  # type: ignore[attr-defined]
    for prop in [k for k in head.keys() if k.startswith("fields_")]:  # type: ignore[attr-defined]
        del head[prop]  # type: ignore[attr-defined]
    return head


SHOWN_ROWS = ("Brow_Drop_L", "Brow_Raise_Inner_L", "Brow_Raise_Inner_R", "Eye_Blink_L", "Eye_L_Look_R",
              "Mouth_Funnel_Up_L", "Mouth_Funnel_Down_R", "Mouth_Smile_L", "Mouth_Smile_R")


def mapping_tile(rows: list[tuple[str, str, float]], unmapped: list[str], size: int) -> np.ndarray:
    """A few of the mapping's rows (unit > key, gain) and the units no row drives."""
    tile = np.full((size, size + 64, 3), 250, np.uint8)
    lines = [f"{len(rows)} rows (From Names), among them:",
             *(f"{u} > {t}  x{g:g}" for u, t, g in rows if t in SHOWN_ROWS), "...",
             f"Unmapped ({len(unmapped)}): {', '.join(unmapped)}"]
    for i, line in enumerate(lines):
        cv2.putText(tile, line, (6, 22 + 19 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (30, 30, 30), 1, cv2.LINE_AA)
    return tile


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


PICTURES = ("calibration", "head_pose", "strength", "mapping", "confidence")
CLIP = ROOT.parent / "shared" / "data" / "talking-clips" / "d13.mp4"  # never copied into the repository
CLIP_FRAMES = (230, 330)  # the broad smile
COVERED = (262, 276)  # a grey patch over the eyes, nose and mouth: the face is lost
MIN_CONFIDENCE = 0.95


def covered_clip(path: Path) -> tuple[Path, np.ndarray]:
    """Frames CLIP_FRAMES of the real clip, those in COVERED with the lower face hidden; and one
    covered frame, for the picture."""
    from sequence_fixtures import write_video

    capture = cv2.VideoCapture(str(CLIP))
    capture.set(cv2.CAP_PROP_POS_FRAMES, CLIP_FRAMES[0])
    frames = []
    for index in range(*CLIP_FRAMES):
        ok, bgr = capture.read()
        assert ok, f"{CLIP} ends before frame {index}"
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if COVERED[0] <= index < COVERED[1]:
            h, w = rgb.shape[:2]
            rgb[int(0.25 * h):int(0.85 * h), int(0.2 * w):int(0.8 * w)] = 128
        frames.append(rgb)
    capture.release()
    sample = cv2.cvtColor(frames[(COVERED[0] + COVERED[1]) // 2 - CLIP_FRAMES[0]], cv2.COLOR_RGB2BGR)
    return write_video(path, frames, fps=30.0), sample


def chart(confidence: dict[int, float], keys: np.ndarray, threshold: float, width: int, height: int) -> np.ndarray:
    """Face score per frame with the threshold (top) and a unit's keys (bottom); gap frames shaded."""
    image = np.full((height, width, 3), 255, np.uint8)
    frames = len(keys)
    x = (np.arange(frames) * (width - 20) / max(frames - 1, 1) + 10).astype(int)
    half = height // 2

    def y(values: np.ndarray, top: int) -> np.ndarray:
        return (top + (half - 24) * (1.0 - np.clip(np.nan_to_num(values), 0.0, 1.0)) + 16).astype(int)

    for f in range(frames):  # frames that became gaps, shaded
        if confidence.get(f + 1, 0.0) < threshold:
            cv2.rectangle(image, (x[f] - 2, 0), (x[f] + 2, height), (225, 225, 250), -1)
    scores = np.array([confidence.get(f + 1, np.nan) for f in range(frames)])
    for values, top, colour in ((scores, 0, (40, 40, 40)), (keys, half, (200, 90, 20))):
        points = np.stack([x, y(values, top)], axis=1)
        for a, b, ok in zip(points[:-1], points[1:], np.isfinite(values[:-1]) & np.isfinite(values[1:]), strict=True):
            if ok:
                cv2.line(image, tuple(map(int, a)), tuple(map(int, b)), colour, 2, cv2.LINE_AA)
    limit = int(y(np.array([threshold]), 0)[0])
    cv2.line(image, (10, limit), (width - 10, limit), (40, 40, 200), 1, cv2.LINE_AA)
    for text, at, colour in ((f"face score per frame (Min confidence {threshold:.2f}, red)", half - 10, (40, 40, 40)),
                             ("mouthSmileLeft keyed: gaps (shaded) filled", half + 14, (200, 90, 20))):
        cv2.putText(image, text, (10, at), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, 1, cv2.LINE_AA)
    return image


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Render the pictures of docs/USAGE.md section 7.")
    # No `choices`: Python 3.11's argparse checks a list default against them as one value.
    parser.add_argument("pictures", nargs="*", metavar="PICTURE", help=f"any of {', '.join(PICTURES)} (default: all)")
    wanted = set(parser.parse_args(argv).pictures or PICTURES)
    if wanted - set(PICTURES):
        parser.error(f"unknown pictures: {', '.join(sorted(wanted - set(PICTURES)))}")
    enable_checkout(bpy)
    settings = bpy.context.scene.fields
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if "calibration" in wanted:
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
        if "head_pose" in wanted:
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
        if "strength" in wanted:
            # Region strength: mouth 1 vs 0.5.
            head = fresh_head()
            settings.filepath = str(PHOTO)
            bpy.ops.fields.reconstruct_photo()
            full = render(head, tmp / "mouth1.png", SIZE, yaw_deg=20)
            head["fields_strength_mouth"] = 0.5  # type: ignore[index]
            head.update_tag()  # type: ignore[attr-defined]
            half = render(head, tmp / "mouth05.png", SIZE, yaw_deg=20)
            write("usage_strength.png", [tile(full, "Mouth strength 1"), tile(half, "Mouth strength 0.5")])
        if "mapping" in wanted:
            # Any rig: a CC4-named head driven by name, then the smile rows of its mapping at gain 0.5.
            head = cc4_head()
            settings.filepath = str(PHOTO)
            bpy.ops.fields.reconstruct_photo()
            assert settings.result_route == "arkit", settings.result_route
            by_name = render(head, tmp / "by_name.png", SIZE, yaw_deg=20)
            bpy.ops.fields.mapping_fill()
            for row in head.fields_mapping:  # type: ignore[attr-defined]
                if row.target.startswith("Mouth_Smile_"):
                    row.gain = 0.5
            bpy.ops.fields.reconstruct_photo()
            assert settings.result_route == "mapping", settings.result_route
            gained = render(head, tmp / "gain05.png", SIZE, yaw_deg=20)
            rows = [(r.unit, r.target, r.gain) for r in head.fields_mapping]  # type: ignore[attr-defined]
            used = {unit for unit, _, _ in rows}
            text = mapping_tile(rows, [u for u in ARKIT_NAMES if u not in used], SIZE)
            write("usage_mapping.png", [tile(by_name, "CC4-named keys, by name"),
                                        tile(gained, "Mouth_Smile_L/R gain 0.5"), label(text, "Mapping rows")])
        if "confidence" in wanted:
            # Confidence: a real clip with the face covered for a moment. The covered frames have no
            # face (no score key); with Min confidence, frames whose score is below it join them as
            # gaps, all filled from their neighbours.
            head = fresh_head()
            clip, sample = covered_clip(tmp / "covered.avi")
            settings.seq_source, settings.seq_filepath, settings.seq_smooth = "VIDEO", str(clip), False
            bpy.context.scene.render.fps = 30
            settings.seq_min_confidence = MIN_CONFIDENCE
            assert bpy.ops.fields.apply_sequence() == {"FINISHED"}
            keys = keyed_curves(head)
            confidence = {int(f): v for f, v in keys[f'["{CONFIDENCE_PROPERTY}"]']}
            assert not any(f - CLIP_FRAMES[0] + 1 in confidence for f in range(*COVERED)), "the covered face was seen"
            smile = curve_values(keys[f'["{weight_property("mouthSmileLeft")}"]'], CLIP_FRAMES[1] - CLIP_FRAMES[0])
            graph = chart(confidence, smile, MIN_CONFIDENCE, 2 * SIZE, SIZE)
            write("usage_confidence.png", [label(cv2.resize(sample, (SIZE, SIZE), interpolation=cv2.INTER_AREA),
                                                 "a covered frame (real clip)"),
                                           label(graph, "Apply to Sequence, keyed")])
            settings.seq_min_confidence = 0.0
    return 0


def keyed_curves(head: object) -> dict[str, list[tuple[float, float]]]:
    """The head's keyed custom properties: data path -> [(frame, value)]."""
    action = head.animation_data.action  # type: ignore[attr-defined]
    return {curve.data_path: [tuple(point.co) for point in curve.keyframe_points] for curve in action.fcurves}


def curve_values(points: list[tuple[float, float]], frames: int) -> np.ndarray:
    """Values at scene frames 1..frames (NaN where not keyed)."""
    out = np.full(frames, np.nan)
    for frame, value in points:
        if 1 <= frame <= frames:
            out[int(frame) - 1] = value
    return out


if __name__ == "__main__":
    raise SystemExit(main())
